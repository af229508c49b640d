"""The position-scheme scan (issue 19): ``python -m fourfold.critical.scan RUN_DIR... [--out DIR]`` collects
the run folders of ``experiment=critical/positions`` (one per scheme and pre-training seed, each with
references at N = 3, 5, 7 and no (N+1)-digit examples) into one table per measurement:

- ``scan.csv``: the regime measures (``regime.measure``) of every reference and kept snapshot, one row
  each, named by ``positions, size, n_digits, mix_fraction, seed, steps, step``; ``scan_summary`` their
  mean ± SE over pre-training seeds;
- ``table1.csv`` / ``table1_summary``: Table 1 (dJ at the decision commas, over the authors' window and
  at the first errors) per reference, and over seeds next to the paper's values;
- ``generalisation.csv`` / ``generalisation_summary``: greedy accuracy at N, N+1, N+2 (identical and
  varying operands; Tables 4/5) per reference, and over seeds.

A reference measured by several runs (a rerun) keeps the row of the newest run folder.
"""

import argparse
from pathlib import Path

import pandas as pd

from fourfold.critical.regime import SCAN_KEYS

# Table 1 of the paper: dJ at the critical tokens, N -> N+1 (its N = 3, 5, 7 references).
PAPER_TABLE1 = {3: -0.33, 5: -0.21, 7: -0.13}
# What names a reference in table1.csv and generalisation.csv (columns of the run's degrees.csv).
REFERENCE_KEYS = ("positions", "size", "n_digits", "mix_fraction", "seed", "steps", "stop_at")


def result_folders(paths: list[Path]) -> list[Path]:
    """Every ``results`` folder with a ``degrees.csv`` under ``paths``, oldest first."""
    found = {p for path in paths for p in Path(path).rglob("results") if (p / "degrees.csv").is_file()}
    if not found:
        raise FileNotFoundError(f"no results/degrees.csv under {[str(p) for p in paths]}: give run folders")
    return sorted(found, key=lambda p: (p / "degrees.csv").stat().st_mtime)


def _labelled(folder: Path, name: str) -> pd.DataFrame | None:
    """``folder/name`` with each row's reference named (from the run's ``degrees.csv``)."""
    if not (folder / name).is_file():
        return None
    degrees = pd.read_csv(folder / "degrees.csv")
    if "positions" not in degrees:  # runs from before the position schemes: learned
        degrees["positions"] = "learned"
    frame = pd.read_csv(folder / name)
    labels = degrees[["degree", *REFERENCE_KEYS]]
    return frame.merge(labels, on="degree", how="left", validate="many_to_one")


def collect(folders: list[Path]) -> dict[str, pd.DataFrame]:
    """The three tables (module docstring) from ``result_folders``; newer folders win on duplicates."""
    regime = [pd.read_csv(f / "regime.csv") for f in folders if (f / "regime.csv").is_file()]
    tables = {}
    if regime:
        frame = pd.concat(regime, ignore_index=True).drop_duplicates(list(SCAN_KEYS), keep="last")
        frame = frame[[*SCAN_KEYS, *(c for c in frame.columns if c not in SCAN_KEYS)]]
        tables["scan"] = frame.sort_values(list(SCAN_KEYS)).reset_index(drop=True)
    for name, keys in (("table1", ()), ("generalisation", ("mode", "offset"))):
        frames = [t for t in (_labelled(f, f"{name}.csv") for f in folders) if t is not None]
        if frames:
            frame = pd.concat(frames, ignore_index=True).drop_duplicates(
                [*REFERENCE_KEYS, *keys], keep="last"
            )
            tables[name] = frame.sort_values([*REFERENCE_KEYS, *keys]).reset_index(drop=True)
    if not tables:
        raise FileNotFoundError("the run folders hold no regime.csv, table1.csv or generalisation.csv")
    return tables


SUMMARY_VALUES = {
    "scan": ("acc_rl", "acc_one_long", "acc_both_long", "acc_in_distribution", "dJ_decision", "j_decision",
             "dJ_window", "dJ_first_error"),
    "table1": ("delta_decision", "j_decision", "delta_critical", "delta_failure", "n_failures"),
    "generalisation": ("accuracy",),
}  # fmt: skip
SUMMARY_BY = {
    "scan": ("positions", "size", "n_digits", "mix_fraction", "steps", "step"),
    "table1": ("positions", "size", "N", "mix_fraction", "steps"),
    "generalisation": ("positions", "size", "N", "mix_fraction", "steps", "mode", "offset"),
}


def summary(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SE over pre-training seeds (``n`` = seeds); Table 1 gets the paper's value beside it."""
    from fourfold.core.tables import mean_se

    out = mean_se(table, SUMMARY_BY[name], SUMMARY_VALUES[name])
    if name == "table1":
        out["paper_dJ_critical"] = out["N"].map(PAPER_TABLE1)
    return out


def main(argv=None) -> None:
    from fourfold.core.files import atomic_path
    from fourfold.core.tables import write_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run or multirun folders of critical/positions")
    parser.add_argument("--out", type=Path, default=Path("experiments/critical/positions"))
    args = parser.parse_args(argv)
    tables = collect(result_folders(args.runs))
    for name, table in tables.items():
        with atomic_path(args.out / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
        values = SUMMARY_VALUES[name]
        write_table(summary(name, table), args.out / f"{name}_summary", values=values)
        print(f"{args.out / name}.csv: {len(table)} rows; summary in {name}_summary.md")


if __name__ == "__main__":
    main()
