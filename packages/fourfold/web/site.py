"""The static results site: ``experiments/site/`` with an index and one page per paper.

Each paper page is that paper's ``experiments/<paper>/README.md`` (claims, verdicts, tables, commands,
runtimes) rendered to HTML, followed by every committed figure, the presets' command lines (command,
measured runtime, hardware) and links to the result files. Figures are referenced by relative paths
(``../<paper>/figures/x.png``), so the site is a few HTML files that open offline from disk and nothing
is copied twice into git. Pages come from Jinja2 templates shipped in ``fourfold/web/templates/site``.

    python -m fourfold.web.site [--root REPO] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

from fourfold.core.files import atomic_write_text
from fourfold.web.rendering import environment

PAPERS = {
    "scoring": "Tailoring Strictly Proper Scoring Rules (causal inference)",
    "hierarchical": "To Each Metric Its Decoding (hierarchical classification)",
    "critical": "Ignore the KL Penalty! (critical tokens in RL fine-tuning)",
    "faceblur": "Two Deep Learning Solutions for Automatic Blurring of Faces in Videos",
}
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif")
RESULT_SUFFIXES = (".csv", ".json", ".md")
PRESET_COMMAND = re.compile(r"^#\s*(python -m fourfold .*?)\s*\((.*)\)\s*$")


@dataclass
class Preset:
    name: str
    command: str
    runtime: str  # the preset's own words: measured runtime and hardware


@dataclass
class PaperPage:
    name: str
    title: str
    body_html: str
    figures: list[str] = field(default_factory=list)  # paths relative to the site folder
    results: list[str] = field(default_factory=list)
    presets: list[Preset] = field(default_factory=list)
    missing_readme: bool = False


def markdown_renderer(link_paths: dict[str, str], base: str = "") -> MarkdownIt:
    """CommonMark plus tables, raw HTML escaped. Relative link and image targets are prefixed with ``base``
    (the Markdown file's folder seen from the site folder); inline code naming an existing file
    (``figures/x.png``) becomes a link to it through ``link_paths``."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    default_code = md.renderer.rules["code_inline"]

    def code_inline(renderer, tokens, idx, options, env):
        html = default_code(tokens, idx, options, env)
        target = link_paths.get(tokens[idx].content.strip())
        return f'<a href="{target}">{html}</a>' if target else html

    def rebase_targets(state):
        for block in state.tokens:
            for token in block.children or ():
                attr = {"link_open": "href", "image": "src"}.get(token.type)
                target = token.attrGet(attr) if attr else None
                if target and base and not re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, re.IGNORECASE):
                    token.attrSet(attr, f"{base}/{target}")

    md.add_render_rule("code_inline", code_inline)
    md.core.ruler.push("rebase_targets", rebase_targets)
    return md


def paper_files(folder: Path, suffixes: tuple[str, ...], kind: str) -> list[Path]:
    """Files under ``folder`` whose parent folder is named ``kind`` (figures, results, tables)."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes and p.parent.name == kind
    )


def read_presets(conf: Path, paper: str) -> list[Preset]:
    """The first ``# python -m fourfold ... (runtime, hardware)`` line of each preset of ``paper``."""
    presets = []
    for path in sorted((conf / "experiment" / paper).glob("*.yaml")):
        for line in path.read_text(encoding="utf-8").splitlines()[:4]:
            match = PRESET_COMMAND.match(line)
            if match:
                presets.append(Preset(path.stem, match.group(1), match.group(2)))
                break
    return presets


def build_paper(root: Path, out: Path, paper: str) -> PaperPage:
    folder = root / "experiments" / paper
    relative = Path(os.path.relpath(folder, out)).as_posix()
    figures = paper_files(folder, FIGURE_SUFFIXES, "figures")
    results = paper_files(folder, RESULT_SUFFIXES, "results") + paper_files(folder, RESULT_SUFFIXES, "tables")
    link_paths = {
        p.relative_to(folder).as_posix(): f"{relative}/{p.relative_to(folder).as_posix()}"
        for p in figures + results
    }
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    body = markdown_renderer(link_paths, relative).render(text)
    return PaperPage(
        name=paper,
        title=PAPERS[paper],
        body_html=body,
        figures=[link_paths[p.relative_to(folder).as_posix()] for p in figures],
        results=[link_paths[p.relative_to(folder).as_posix()] for p in results],
        presets=read_presets(root / "conf", paper),
        missing_readme=not readme.is_file(),
    )


def index_body(root: Path, out: Path) -> str:
    """The top README rendered (its table: paper -> make target -> what it shows -> runtime)."""
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else "# fourfold\n"
    text = re.sub(r"^# .*\n", "", text, count=1)  # the layout prints the title
    return markdown_renderer({}, Path(os.path.relpath(root, out)).as_posix()).render(text)


def build_site(root: str | Path = ".", out: str | Path | None = None) -> list[Path]:
    """Write ``index.html`` and ``<paper>.html`` for every paper under ``out`` (default
    ``<root>/experiments/site``); returns the written paths. Files are written atomically."""
    root = Path(root).resolve()
    out = Path(out).resolve() if out else root / "experiments" / "site"
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    pages = [build_paper(root, out, paper) for paper in PAPERS if (root / "experiments" / paper).is_dir()]
    written = [
        atomic_write_text(
            out / "index.html",
            env.get_template("site/index.html").render(pages=pages, body=index_body(root, out)),
        )
    ]
    page_template = env.get_template("site/paper.html")
    for page in pages:
        written.append(
            atomic_write_text(out / f"{page.name}.html", page_template.render(page=page, pages=pages))
        )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fourfold.web.site", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository root (default: the current folder)")
    parser.add_argument("--out", help="output folder (default: <root>/experiments/site)")
    args = parser.parse_args(argv)
    written = build_site(args.root, args.out)
    size = sum(p.stat().st_size for p in written) / 1024
    print(f"site: {len(written)} pages, {size:.0f} KB in {written[0].parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
