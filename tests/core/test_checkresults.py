"""check-results: numbers in table cells, the comparison of CSV/Markdown/JSON tables (exact, within a
tolerance, ignored columns), steps run in a scratch folder, and an output that repeats exactly."""

import subprocess
import sys
from pathlib import Path

import pytest

from fourfold.core import checkresults as cr

REPO = Path(__file__).resolve().parents[2]


def test_numbers_and_text_of_a_cell():
    assert cr.numbers_and_text("23 of 25") == ([23.0, 25.0], "# of #")
    assert cr.numbers_and_text("1.5e-3 ± 0.2") == ([1.5e-3, 0.2], "# ± #")
    assert cr.numbers_and_text("expected_information")[0] == []  # "inf" inside a word is text
    assert cr.numbers_and_text("nan")[0][0] != cr.numbers_and_text("nan")[0][0]  # NaN, compared as NaN


def test_tolerance_and_cells():
    exact, loose = cr.Tolerance(), cr.Tolerance(abs=0.0, rel=0.01)
    assert cr.compare_cells("1.50 ± 0.2", "1.5 ± 0.20", exact)
    assert not cr.compare_cells("1.5", "1.5000001", exact) and cr.compare_cells("1.5", "1.501", loose)
    assert not cr.compare_cells("tailored", "log", loose)
    assert cr.compare_cells("nan", "nan", exact) and not cr.compare_cells("nan", "0", exact)
    assert not cr.compare_cells("3 of 4", "3 of 4 (1 diverged)", exact)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


MARKDOWN = (
    "# Title\n\n| method | rmse | seconds |\n|---|---|---|\n| tailored | 1.25 | 3.0 |\n| log | 2.5 | 4.0 |\n"
)


def test_compare_markdown_names_table_row_and_column(tmp_path):
    committed = write(tmp_path / "a.md", MARKDOWN)
    rerun = write(tmp_path / "b.md", MARKDOWN.replace("2.5 |", "2.75 |").replace("4.0", "9.0"))
    ignore = {"seconds": "wall-clock time"}
    result = cr.compare_tables(committed, rerun, cr.Tolerance(), ignore, "t.md")
    where = "t.md: table 'Title', row 2 (log), column rmse"
    assert result.differences == [f"{where}: committed '2.5', rerun '2.75'"]
    assert result.numbers == 2  # the two rmse cells (seconds are ignored, the title has no number)
    assert not cr.compare_tables(committed, rerun, cr.Tolerance(rel=0.2), ignore, "t.md").differences


def test_compare_csv_and_json(tmp_path):
    a = write(tmp_path / "a.csv", "dataset,rmse\nks,0.5\nks_mis,1.0\n")
    b = write(tmp_path / "b.csv", "dataset,rmse\nks,0.5\n")
    result = cr.compare_tables(a, b, cr.Tolerance(), {}, "t.csv")
    assert result.differences == ["t.csv: 2 committed rows, 1 in the rerun"]
    ja = write(tmp_path / "a.json", '{"x": {"n": 3, "seconds": 1.0}, "runs": ["a"]}')
    jb = write(tmp_path / "b.json", '{"x": {"n": 4, "seconds": 2.0}, "runs": ["a"]}')
    result = cr.compare_json(ja, jb, cr.Tolerance(), {"seconds": "timing"}, "t.json")
    assert result.differences == ["t.json: key x/n: committed 3, rerun 4"]


SPEC = """
steps:
  - [python, -c, "import pathlib; p = pathlib.Path('experiments/demo/t.md'); p.parent.mkdir(parents=True); p.write_text(open('{repo}/experiments/demo/t.md').read().replace('{old}', '{new}'))"]
compare:
  - file: experiments/demo/t.md
    ignore_columns: {{seconds: wall-clock time}}
"""  # noqa: E501


@pytest.fixture
def demo_paper(monkeypatch):
    monkeypatch.setattr(cr, "PAPERS", (*cr.PAPERS, "demo"))


def test_a_rerun_that_matches_passes_and_prints_the_same_twice(tmp_path, demo_paper, capsys):
    write(tmp_path / "experiments" / "demo" / "t.md", MARKDOWN)
    spec = SPEC.format(old="4.0", new="5.0", repo="{repo}")  # only the ignored seconds change
    write(tmp_path / "experiments" / "demo" / "check_results.yaml", spec)
    outputs = []
    for scratch in ("s1", "s2"):
        code = cr.main(["--repo", str(tmp_path), "--scratch", str(tmp_path / scratch), "--papers", "demo"])
        outputs.append(capsys.readouterr().out)
        assert code == 0
    assert outputs[0] == outputs[1] and "check-results: passed" in outputs[0]
    assert "[demo] 1 files, 2 numbers compared: all equal" in outputs[0]


def test_a_changed_number_fails_and_is_named(tmp_path, demo_paper, capsys):
    write(tmp_path / "experiments" / "demo" / "t.md", MARKDOWN)
    spec = SPEC.format(old="1.25", new="1.3", repo="{repo}")
    write(tmp_path / "experiments" / "demo" / "check_results.yaml", spec)
    code = cr.main(["--repo", str(tmp_path), "--scratch", str(tmp_path / "s"), "--papers", "demo"])
    out = capsys.readouterr().out
    assert code == 1 and "check-results: FAILED" in out
    where = "experiments/demo/t.md: table 'Title', row 1 (tailored), column rmse"
    assert f"DIFFERENT {where}: committed '1.25', rerun '1.3'" in out


def test_a_failing_step_fails_with_its_log(tmp_path, demo_paper, capsys):
    spec = "steps:\n  - [python, -c, 'raise SystemExit(3)']\ncompare: []\n"
    write(tmp_path / "experiments" / "demo" / "check_results.yaml", spec)
    code = cr.main(["--repo", str(tmp_path), "--scratch", str(tmp_path / "s"), "--papers", "demo"])
    assert code == 1 and "step 1 failed (exit 3)" in capsys.readouterr().out


def test_every_paper_has_a_spec_whose_files_are_committed():
    for paper in cr.PAPERS:
        spec = cr.load_spec(REPO, paper)
        for entry in spec["compare"]:
            assert (REPO / entry["file"]).is_file(), entry["file"]


@pytest.mark.slow
def test_make_check_results_passes(tmp_path):
    # about 15 minutes on the 2-core CPU: every paper's fast presets, rerun and compared
    result = subprocess.run(
        [sys.executable, "-m", "fourfold.core.checkresults", "--scratch", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
