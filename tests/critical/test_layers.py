"""The package's import layers: pure math (``losses``, ``kl``, ...) under the Lightning glue (``lit``) under
the stage drivers (``pretrain``, ``rl``) under the task (``run``); no module imports, even lazily inside a
function, a module that imports it back (issue 19, item 7: ``lit`` used to take its losses from
``pretrain`` and ``rl``, which imported ``lit``)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "fourfold" / "critical"


def critical_imports(path: Path) -> set[str]:
    """The ``fourfold.critical`` modules that ``path`` imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if (
                parts[:2] == ["fourfold", "critical"]
                and len(parts) > 2
                and (PACKAGE / f"{parts[2]}.py").is_file()
            ):
                found.add(parts[2])
    found.discard(path.stem)
    return found


def import_graph() -> dict[str, set[str]]:
    return {p.stem: critical_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started (depth-first search)."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_module_of_the_package_imports_itself_back():
    assert cycles(import_graph()) == []


def test_losses_under_lit_under_the_stage_drivers():
    graph = import_graph()
    assert not graph["losses"] & {"lit", "pretrain", "rl", "run"}
    assert "losses" in graph["lit"] and not graph["lit"] & {"pretrain", "rl", "run"}
    assert {"lit", "losses"} <= graph["pretrain"] | graph["rl"]
    assert "lit" in graph["pretrain"] and "lit" in graph["rl"]


def test_losses_import_no_lightning():
    source = (PACKAGE / "losses.py").read_text(encoding="utf-8")
    assert "lightning" not in source


def test_the_checker_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
