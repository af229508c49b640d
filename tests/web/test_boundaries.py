"""web is the top floor: it imports papers only through their public entry points; no paper imports web."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "fourfold"
PAPERS = ("scoring", "hierarchical", "critical", "faceblur")
# Public entry points web may use: each paper's top-level API, plus modules it names as entry points where
# the top level does not export what a page needs (the reason is given next to each).
ALLOWED = {
    "fourfold.scoring",
    "fourfold.scoring.ipw",  # cross_fitted_outcomes: AIPW's outcome model
    "fourfold.scoring.learners",  # SeparationWarning: the library's warning the scoring page shows
    "fourfold.hierarchical",
    "fourfold.hierarchical.data",  # alexnet_logits: the shipped example
    "fourfold.critical",
    "fourfold.critical.arithmetic",  # prompt and the critical-position locator
    "fourfold.critical.model",  # load_checkpoint (weights_only)
    "fourfold.critical.reference",  # shipped_reference_path: the packaged quick reference checkpoint
    "fourfold.critical.hf",  # load_causal_lm, saved_extra: Hugging Face model dirs on the critical page
    "fourfold.critical.tokens",  # context_length of any causal LM
    "fourfold.faceblur.tool.cli",  # the fourfold-blur tool's functions: read_image, anonymize_path, suffixes
    "fourfold.faceblur.tool.pipeline",  # make_pipeline / anonymize_image: what fourfold-blur runs per image
    "fourfold.faceblur.tool.blur",  # MODES
    "fourfold.faceblur.tool.video",  # anonymize_video, VideoError: what fourfold-blur runs per video
}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_web_imports_papers_only_through_allowed_entry_points():
    bad = []
    for path in (PACKAGE / "web").rglob("*.py"):
        for name in imports(path):
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "fourfold" and parts[1] in PAPERS and name not in ALLOWED:
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert bad == []


def test_no_paper_and_not_core_imports_web():
    for owner in (*PAPERS, "core"):
        for path in (PACKAGE / owner).rglob("*.py"):
            assert not any(n == "fourfold.web" or n.startswith("fourfold.web.") for n in imports(path)), path
