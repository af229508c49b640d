"""Papers are siblings: no paper imports another, and core imports no paper."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "fourfold"
PAPERS = ("scoring", "hierarchical", "critical", "faceblur")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(owner: str, package: Path = PACKAGE) -> list[str]:
    others = [p for p in PAPERS if p != owner]
    bad = []
    for path in sorted((package / owner).rglob("*.py")):
        for name in imported_modules(path):
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "fourfold" and parts[1] in others:
                bad.append(f"{path.relative_to(package)} imports {name}")
    return bad


def test_core_imports_no_paper():
    assert forbidden_imports("core") == []


def test_papers_do_not_import_each_other():
    for paper in PAPERS:
        if (PACKAGE / paper).is_dir():
            assert forbidden_imports(paper) == []


def test_checker_catches_a_violation(tmp_path):
    (tmp_path / "scoring").mkdir()
    (tmp_path / "scoring" / "bad.py").write_text("from fourfold.critical import kl\nimport fourfold.core\n")
    assert sorted(forbidden_imports("scoring", tmp_path)) == [
        "scoring/bad.py imports fourfold.critical",
        "scoring/bad.py imports fourfold.critical.kl",
    ]
