"""faceblur's rooms point one way: models <- tool <- data <- evaluation <- the experiment modules at the top.

Every import is counted, including the lazy ones inside functions: a lazy import is still an arrow."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "fourfold" / "faceblur"
# room -> the rooms it may import ("" = the experiment modules at the paper's root: run, report, lit, bench)
ALLOWED = {
    "models": set(),
    "tool": {"models"},
    "data": {"tool", "models"},
    "evaluation": {"data", "tool", "models"},
    "": {"evaluation", "data", "tool", "models", ""},
}


def room_of(module: str) -> str | None:
    """The room of a dotted ``fourfold.faceblur...`` module name; None outside faceblur."""
    parts = module.split(".")
    if parts[:2] != ["fourfold", "faceblur"]:
        return None
    return parts[2] if len(parts) > 2 and parts[2] in ALLOWED else ""


def faceblur_imports(path: Path) -> set[str]:
    """Every ``fourfold.faceblur...`` module ``path`` imports; ``from fourfold.faceblur import run`` counts as
    ``fourfold.faceblur.run`` (an arrow to the root), and a relative import is reported as such."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module != "fourfold.faceblur":  # the bare package: only what it names counts
                names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # a module, or a name inside one
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.add(f"<relative import at line {node.lineno}>")
    return {n for n in names if n.startswith("fourfold.faceblur") or n.startswith("<")}


def arrows_against_the_rooms(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        owner = rel.parts[0] if len(rel.parts) > 1 else ""
        reported = set()
        for name in sorted(faceblur_imports(path)):  # shortest first: a module before the names inside it
            target = room_of(name)
            if target is None:
                bad.append(f"{rel}: {name} (use absolute imports)")
            elif target != owner and target not in ALLOWED[owner] and target not in reported:
                reported.add(target)  # one line per room reached
                bad.append(f"{rel} ({owner or 'root'}) imports {name} ({target or 'root'})")
    return bad


def test_rooms_import_only_rooms_below_them():
    assert (PACKAGE / "tool" / "cli.py").is_file()  # the layout this test guards exists
    assert arrows_against_the_rooms() == []


def test_every_module_sits_in_a_room_or_is_an_experiment_module():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "run", "report", "lit", "bench"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {"tool", "models", "data", "evaluation", "weights", "resources"}


def test_checker_catches_arrows_up_and_into_the_experiment(tmp_path):
    for room in ("tool", "data"):
        (tmp_path / room).mkdir()
    (tmp_path / "tool" / "cli.py").write_text(
        "def f():\n"
        "    from fourfold.faceblur.data.synthetic import make_clip\n"
        "    from fourfold.faceblur import run\n"
    )
    (tmp_path / "data" / "ok.py").write_text(
        "from fourfold.faceblur.tool.blur import MODES\nfrom . import x\n"
    )
    assert arrows_against_the_rooms(tmp_path) == [
        "data/ok.py: <relative import at line 2> (use absolute imports)",
        "tool/cli.py (tool) imports fourfold.faceblur.data.synthetic (data)",
        "tool/cli.py (tool) imports fourfold.faceblur.run (root)",
    ]


def module_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the faceblur modules it imports (lazy imports included), by dotted name."""
    root = package.parent.parent
    modules = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in package.rglob("*.py")
    }
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in faceblur_imports(path):
            while imported not in modules and "." in imported:  # fourfold.faceblur.tool.blur.MODES -> ...blur
                imported = imported.rsplit(".", 1)[0]
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_no_import_circle_between_modules():
    import networkx as nx

    graph = nx.DiGraph([(a, b) for a, targets in module_graph().items() for b in targets])
    assert graph.number_of_edges() > 20  # the scan sees the package's imports
    assert list(nx.simple_cycles(graph)) == []


def test_graph_sees_a_lazy_circle(tmp_path):
    package = tmp_path / "fourfold" / "faceblur"
    (package / "tool").mkdir(parents=True)
    (package / "models").mkdir()
    (package / "tool" / "detectors.py").write_text("from fourfold.faceblur.models import yolo\n")
    (package / "models" / "yolo.py").write_text(
        "def f():\n    from fourfold.faceblur.tool.detectors import D\n"
    )
    graph = module_graph(package)
    assert graph["fourfold.faceblur.tool.detectors"] == {"fourfold.faceblur.models.yolo"}
    assert graph["fourfold.faceblur.models.yolo"] == {"fourfold.faceblur.tool.detectors"}
