"""The static results site: pages from READMEs, figures linked relatively, nothing external."""

import re
from pathlib import Path

from fourfold.web.site import build_site

README = """# fourfold

| paper | make target |
|---|---|
| scoring | `make scoring` |

![a screenshot](experiments/site/screenshots/x.png) and [the paper](https://example.org/paper).
"""
PAPER_README = """# Scoring

## Claims and verdicts

| claim | verdict |
|---|---|
| tailored beats log-loss | holds <script>alert(1)</script> |

The figure `figures/rmse.png` and the table `results/table.csv`; `figures/missing.png` is not there.
"""


def fake_repo(root: Path) -> Path:
    (root / "README.md").write_text(README)
    paper = root / "experiments" / "scoring"
    (paper / "figures").mkdir(parents=True)
    (paper / "results").mkdir()
    (paper / "README.md").write_text(PAPER_README)
    (paper / "figures" / "rmse.png").write_bytes(b"\x89PNG fake")
    (paper / "results" / "table.csv").write_text("a,b\n1,2\n")
    (root / "experiments" / "critical").mkdir()  # a paper folder without README
    preset = root / "conf" / "experiment" / "scoring" / "quick.yaml"
    preset.parent.mkdir(parents=True)
    preset.write_text(
        "# @package _global_\n# python -m fourfold experiment=scoring/quick  (about 1 min, 2-core CPU)\n"
    )
    return root


def test_site_has_an_index_and_one_page_per_paper_folder(tmp_path):
    written = build_site(fake_repo(tmp_path))
    assert sorted(p.name for p in written) == ["critical.html", "index.html", "scoring.html"]
    index = (tmp_path / "experiments" / "site" / "index.html").read_text()
    assert "<table>" in index and "<code>make scoring</code>" in index
    assert 'href="scoring.html"' in index
    assert '<img src="../../experiments/site/screenshots/x.png"' in index  # rebased from the repo root
    assert 'href="https://example.org/paper"' in index  # a web link stays a link (not an asset)


def test_paper_page_renders_tables_links_figures_and_presets(tmp_path):
    build_site(fake_repo(tmp_path))
    page = (tmp_path / "experiments" / "site" / "scoring.html").read_text()
    assert "<th>claim</th>" in page and "tailored beats log-loss" in page
    assert "<script>alert" not in page  # raw HTML in a README is escaped
    assert '<a href="../scoring/figures/rmse.png"><code>figures/rmse.png</code></a>' in page
    assert '<img src="../scoring/figures/rmse.png"' in page
    assert '<a href="../scoring/results/table.csv">' in page
    assert "<code>figures/missing.png</code>" in page and "../scoring/figures/missing.png" not in page
    assert "python -m fourfold experiment=scoring/quick" in page and "about 1 min, 2-core CPU" in page
    missing = (tmp_path / "experiments" / "site" / "critical.html").read_text()
    assert "README.md is missing" in missing


def local_assets(page: Path) -> list[str]:
    """Every src= of a page (images, scripts), after checking there is no <script> or <link> at all."""
    text = page.read_text()
    assert "<script" not in text and "<link" not in text, page.name
    return re.findall(r'src="([^"]+)"', text)


def test_site_references_nothing_outside_the_disk(tmp_path):
    build_site(fake_repo(tmp_path))
    for page in (tmp_path / "experiments" / "site").glob("*.html"):
        for target in local_assets(page):
            assert not re.match(r"^[a-z]+:|^//", target), f"{page.name} loads {target} from outside"


def test_committed_site_builds_from_this_repository(tmp_path):
    root = Path(__file__).resolve().parents[2]
    written = build_site(root, tmp_path / "site")
    assert len(written) == 5
    assert sum(p.stat().st_size for p in written) < 500_000
    for page in written:  # every image the committed site shows is a file of the repository
        for target in local_assets(page):
            assert (page.parent / target).resolve().is_file(), f"{page.name}: missing {target}"
