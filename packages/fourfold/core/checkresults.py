"""``python -m fourfold.core.checkresults`` (``make check-results``): every committed number equals a rerun.

For each paper, ``experiments/<paper>/check_results.yaml`` says which fast presets to rerun and which
committed tables they rebuild. This module runs those steps in a scratch folder (``runs/check-results`` by
default, emptied first), then compares every produced table with the committed file of the same path,
number by number: equal where the run is deterministic, else within the tolerance the YAML states next to
the table with its reason. It prints the table, row and column of each difference and exits with 1 if
there is any. Its output holds no timing and no absolute path, so two runs print the same text.

A spec (YAML)::

    steps:                       # run in order, in the scratch folder; "python" is this interpreter
      - [python, -m, fourfold, experiment=scoring/quick, "hydra.run.dir={runs}/scoring/quick/check"]
      - call: fourfold.critical.report:build     # a function called by name in a subprocess;
        args: [{path: "{scratch}/x"}, quick]      # {path: ...} arguments become pathlib.Path
    compare:                     # paths relative to the repository; the rerun's are the same under scratch
      - file: experiments/scoring/results/quick_summary.csv
        ignore_columns: {fit_seconds: wall-clock seconds of each fit}
        tolerance: {abs: 0.0, rel: 1e-9, reason: why the numbers may move}   # omitted: exact

``{scratch}``, ``{runs}`` (``{scratch}/runs``) and ``{repo}`` are substituted in steps. Core imports no
paper: steps are subprocesses (``python -m ...``, or ``call:`` through ``python -c``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PAPERS = ("scoring", "hierarchical", "critical", "faceblur")
SPEC_NAME = "check_results.yaml"
DEFAULT_SCRATCH = Path("runs") / "check-results"
# a number, or inf/nan standing alone (not inside "expected_information")
NUMBER = re.compile(
    r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?<![A-Za-z_])[-+]?(?:inf|nan)(?![A-Za-z_])", re.IGNORECASE
)
NAME = re.compile(r"[A-Za-z_]")  # a cell that starts like a name (tailored, hF_1), not like "13 of 25"
CALL = (
    "import importlib, json, sys; from pathlib import Path; s = json.loads(sys.argv[1]); "
    "module, name = s['call'].split(':'); "
    "getattr(importlib.import_module(module), name)("
    "*[Path(a['path']) if isinstance(a, dict) else a for a in s.get('args', [])])"
)


# --------------------------------------------------------------------------------------------- compare
@dataclass(frozen=True)
class Tolerance:
    """|rerun - committed| <= abs + rel * |committed| counts as equal; (0, 0) is exact equality."""

    abs: float = 0.0
    rel: float = 0.0
    reason: str = ""

    def equal(self, committed: float, rerun: float) -> bool:
        if math.isnan(committed) or math.isnan(rerun):
            return math.isnan(committed) and math.isnan(rerun)
        if committed == rerun:
            return True
        return abs(rerun - committed) <= self.abs + self.rel * abs(committed)


@dataclass
class Comparison:
    """What comparing one file found: how many numbers were compared, and every difference."""

    file: str
    numbers: int = 0
    differences: list[str] = field(default_factory=list)


def numbers_and_text(cell: str) -> tuple[list[float], str]:
    """The numbers in a table cell (``"23 of 25"`` -> [23, 25]) and its text with each number replaced by
    ``#``, so that ``"1.5 ± 0.2"`` and ``"1.6 ± 0.2"`` have the same text and differ in a number."""
    text = str(cell).strip()
    return [float(m) for m in NUMBER.findall(text)], NUMBER.sub("#", text)


def compare_cells(committed: str, rerun: str, tol: Tolerance) -> bool:
    a, text_a = numbers_and_text(committed)
    b, text_b = numbers_and_text(rerun)
    return text_a == text_b and len(a) == len(b) and all(tol.equal(x, y) for x, y in zip(a, b))


@dataclass(frozen=True)
class Row:
    """One table row: its cells, the header they sit under, and where it is (the text line above its
    table, e.g. a Markdown heading, and its number in that table, from 1)."""

    cells: list[str]
    header: list[str]
    section: str
    number: int

    def label(self) -> str:
        """The row's name in the report: its section, number and leading text cells (the table's keys)."""
        keys = self.cells[:1]  # the first cell, then the next ones while they read as names (log_clip01)
        for cell in self.cells[1:4]:
            if not NAME.match(cell) or NUMBER.fullmatch(cell):
                break
            keys.append(cell)
        where = f"table {self.section!r}, " if self.section else ""
        return f"{where}row {self.number}" + (f" ({', '.join(keys)})" if keys else "")


def read_rows(path: Path) -> list[Row]:
    """Every row of a CSV file, or of the Markdown tables in a ``.md`` file, as strings; a line of text
    outside a Markdown table is a one-cell row under the header ``["text"]``."""
    if path.suffix == ".csv":
        import csv

        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        return [Row(row, rows[0], "", k) for k, row in enumerate(rows[1:], 1)]
    header, section, rows = None, "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("|"):
            header = None  # the next table line starts a new table
            if line.strip():
                section = line.strip().lstrip("#").strip()
                rows.append(Row([line.strip()], ["text"], "", len(rows) + 1))
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header, number = cells, 0
        elif not all(set(c) <= set("-: ") for c in cells):  # skip the |---| separator
            number += 1
            rows.append(Row(cells, header, section, number))
    return rows


def compare_tables(committed: Path, rerun: Path, tol: Tolerance, ignore: dict[str, str], name: str):
    """Compare two CSV or Markdown tables cell by cell; returns a ``Comparison``."""
    result = Comparison(name)
    rows_a, rows_b = read_rows(committed), read_rows(rerun)
    if len(rows_a) != len(rows_b):
        result.differences.append(f"{name}: {len(rows_a)} committed rows, {len(rows_b)} in the rerun")
    for a, b in zip(rows_a, rows_b):
        if a.header != b.header or len(a.cells) != len(b.cells):
            result.differences.append(
                f"{name}: {a.label()}: committed columns {a.header} ({len(a.cells)} cells), "
                f"rerun {b.header} ({len(b.cells)} cells)"
            )
            continue
        for column, x, y in zip(a.header, a.cells, b.cells):
            if column in ignore:
                continue
            result.numbers += len(numbers_and_text(x)[0])
            if not compare_cells(x, y, tol):
                where = f"{name}: {a.label()}, column {column}"
                result.differences.append(f"{where}: committed {x!r}, rerun {y!r}")
    return result


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for key in sorted(obj):
            yield from _leaves(obj[key], f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for k, item in enumerate(obj):
            yield from _leaves(item, f"{prefix}[{k}]")
    else:
        yield prefix, obj


def compare_json(committed: Path, rerun: Path, tol: Tolerance, ignore: dict[str, str], name: str):
    """Compare two JSON files leaf by leaf (keys named in ``ignore`` are skipped, at any depth)."""
    result = Comparison(name)
    a = dict(_leaves(json.loads(committed.read_text(encoding="utf-8"))))
    b = dict(_leaves(json.loads(rerun.read_text(encoding="utf-8"))))
    for key in sorted(a.keys() | b.keys()):
        if any(part.split("[")[0] in ignore for part in key.split("/")):
            continue
        if key not in a or key not in b:
            result.differences.append(f"{name}: key {key} only in the {'rerun' if key in b else 'committed'}")
            continue
        result.numbers += isinstance(a[key], int | float)
        if not compare_cells(str(a[key]), str(b[key]), tol):
            result.differences.append(f"{name}: key {key}: committed {a[key]!r}, rerun {b[key]!r}")
    return result


def compare_file(entry: dict, repo: Path, scratch: Path) -> Comparison:
    """One ``compare`` entry of a spec: the committed file against the rerun's file of the same path."""
    name = entry["file"]
    tol = Tolerance(**entry.get("tolerance", {}))
    ignore = dict(entry.get("ignore_columns", {}))
    committed, rerun = repo / name, scratch / name
    if not committed.is_file():
        return Comparison(name, 0, [f"{name}: no committed file"])
    if not rerun.is_file():
        return Comparison(name, 0, [f"{name}: the rerun did not write it"])
    compare = compare_json if committed.suffix == ".json" else compare_tables
    return compare(committed, rerun, tol, ignore, name)


# ------------------------------------------------------------------------------------------------- run
def load_spec(repo: Path, paper: str) -> dict:
    """``experiments/<paper>/check_results.yaml`` as a dict, checked for its two keys."""
    import yaml

    path = repo / "experiments" / paper / SPEC_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path.relative_to(repo)} is missing: it says what check-results reruns")
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(spec.get("steps"), list) or not isinstance(spec.get("compare"), list):
        raise ValueError(f"{path.relative_to(repo)} needs a list under 'steps' and one under 'compare'")
    return spec


def step_command(step, values: dict[str, str]) -> list[str]:
    """The argv of one step: a list (``python`` -> this interpreter) or a ``call:`` mapping."""
    if isinstance(step, dict):
        payload = json.dumps(step)
        for key, value in values.items():
            payload = payload.replace("{" + key + "}", json.dumps(value)[1:-1])
        return [sys.executable, "-c", CALL, payload]
    argv = [str(a).format(**values) for a in step]
    return [sys.executable if a == "python" else a for a in argv]


def shown(step) -> str:
    """A step as printed (placeholders kept, so the output does not depend on where scratch is)."""
    if isinstance(step, dict):
        args = " ".join(a["path"] if isinstance(a, dict) else str(a) for a in step.get("args", []))
        return f"call {step['call']} {args}".strip()
    return " ".join(str(a) for a in step)


def run_steps(paper: str, spec: dict, repo: Path, scratch: Path) -> bool:
    """Run a paper's steps in ``scratch``; a step's output goes to ``scratch/logs``. False on a failure."""
    values = {"scratch": str(scratch), "runs": str(scratch / "runs"), "repo": str(repo)}
    logs = scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": "PASSIVE", "MPLBACKEND": "Agg"}
    for k, step in enumerate(spec["steps"], 1):
        print(f"[{paper}] step {k}: {shown(step)}", flush=True)
        log = logs / f"{paper}_step{k}.log"
        with log.open("w", encoding="utf-8") as handle:
            code = subprocess.call(
                step_command(step, values), cwd=scratch, stdout=handle, stderr=subprocess.STDOUT, env=env
            )
        if code:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            print(f"[{paper}] step {k} failed (exit {code}); end of its log:", *tail, sep="\n  ")
            return False
    return True


def check_paper(paper: str, repo: Path, scratch: Path, run: bool = True) -> list[Comparison] | None:
    """Rerun (unless ``run`` is False) and compare one paper; None when a step failed."""
    spec = load_spec(repo, paper)
    if run and not run_steps(paper, spec, repo, scratch):
        return None
    return [compare_file(entry, repo, scratch) for entry in spec["compare"]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", nargs="+", default=list(PAPERS), choices=PAPERS, help="default: all")
    parser.add_argument("--scratch", default=str(DEFAULT_SCRATCH), help="scratch folder (emptied first)")
    parser.add_argument("--compare-only", action="store_true", help="compare what scratch already holds")
    parser.add_argument("--repo", default=".", help="the repository root (default: here)")
    args = parser.parse_args(argv)
    repo, scratch = Path(args.repo).resolve(), Path(args.scratch).resolve()
    if not (repo / "experiments").is_dir():
        parser.error(f"{repo} has no experiments/ folder: run from the repository root or pass --repo")
    if not args.compare_only:
        shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    failed = False
    for paper in args.papers:
        comparisons = check_paper(paper, repo, scratch, run=not args.compare_only)
        if comparisons is None:
            failed = True
            continue
        differences = [d for c in comparisons for d in c.differences]
        numbers = sum(c.numbers for c in comparisons)
        for line in differences:
            print(f"[{paper}] DIFFERENT {line}")
        verdict = f"{len(differences)} differences" if differences else "all equal"
        print(f"[{paper}] {len(comparisons)} files, {numbers} numbers compared: {verdict}", flush=True)
        failed |= bool(differences)
    print("check-results:", "FAILED" if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
