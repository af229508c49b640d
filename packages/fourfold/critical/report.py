"""Rebuild every table and figure under ``experiments/critical/`` (``python -m fourfold.critical.report``).

For each reported preset (``quick`` and ``long``), the newest finished run folder is copied into
``experiments/critical/<preset>/results/`` (small CSVs); tables and figures are then made from those
committed files, so the report can be rebuilt without the run folders.
"""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from fourfold.core.plotting import new_figure, save_figure
from fourfold.core.runs import find_runs
from fourfold.core.tables import mean_se, write_table

OUT = Path(__file__).resolve().parents[3] / "experiments" / "critical"
PRESETS = ("quick", "long")
RESULT_FILES = (
    "degrees",
    "generalisation",
    "table1",
    "table1_positions",
    "weights",
    "rl_curves",
    "degrees_rl_curves",
)


def collect(runs_root: Path, preset: str, out: Path) -> str | None:
    """Copy each result CSV from the newest finished run of ``preset`` that has it (a run of only some
    stages, ``critical.stages=[...]``, updates only those) into ``out/results``; ``source.json`` records
    which run each file came from. Returns the newest run used, or None."""
    runs = [r for r in find_runs(runs_root, paper="critical", preset=preset) if (r.path / "results").is_dir()]
    if not runs:
        return None
    target = out / "results"
    target.mkdir(parents=True, exist_ok=True)
    sources = {}
    for name in RESULT_FILES:
        for run in reversed(runs):
            src = run.path / "results" / f"{name}.csv"
            if src.is_file():
                shutil.copyfile(src, target / f"{name}.csv")
                sources[name] = {"run": str(run.path), "metrics": run.metrics}
                break
    source = {"preset": preset, "files": sources}
    (target / "source.json").write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")
    return str(runs[-1].path)


def _read(out: Path, name: str) -> pd.DataFrame | None:
    path = out / "results" / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else None


def generalisation_table(frame: pd.DataFrame, out: Path) -> None:
    frame = frame.copy()
    frame["cell"] = [f"{100 * a:.1f} ± {100 * s:.1f}" for a, s in zip(frame.accuracy, frame.se)]
    frame["column"] = [f"{m} N+{o}" for m, o in zip(frame["mode"], frame.offset)]
    wide = frame.pivot_table(index=["N", "mix"], columns="column", values="cell", aggfunc="first")
    wide = wide.reset_index()
    write_table(wide, out / "tables" / "generalisation")


def table1(frame: pd.DataFrame, out: Path) -> None:
    shown = frame[["N", "mix", "n", "delta_critical", "delta_critical_se", "delta_other", "delta_other_se",
                   "min_j_critical", "mean_j_all"]]  # fmt: skip
    write_table(shown, out / "tables" / "table1_certainty_gap", values=["delta_critical", "delta_other"])


def table1_positions(frame: pd.DataFrame, out: Path) -> None:
    write_table(frame, out / "tables" / "table1_positions", values=["delta"])


def weights_figure(frame: pd.DataFrame, out: Path) -> None:
    bins = [c for c in frame.columns if c.startswith("bin")]
    edges = np.linspace(0, 1, len(bins) + 1)
    fig, ax = new_figure(width=5.0)
    for row in frame.itertuples():
        counts = np.array([getattr(row, b) for b in bins], dtype=float)
        ax.step(edges[:-1], counts / counts.sum(), where="post", label=f"beta={row.beta:g}")
    ax.set_yscale("log")
    ax.set_xlabel("prioritized weight w = J^beta")
    ax.set_ylabel("share of tokens")
    ax.set_title("KL weights on reference episodes (before RL)")
    ax.legend()
    save_figure(fig, out / "figures" / "weights_histogram.png")
    write_table(frame[["beta", "mean_w", "p10", "median", "share_below_half"]], out / "tables" / "weights")


def _band(ax, frame, x, y, group, label_prefix=""):
    for name, g in frame.groupby(group):
        stats = g.groupby(x)[y].agg(["mean", "std", "count"]).reset_index()
        se = stats["std"].fillna(0) / np.sqrt(stats["count"])
        ax.plot(stats[x], stats["mean"], label=f"{label_prefix}{name}")
        ax.fill_between(stats[x], stats["mean"] - se, stats["mean"] + se, alpha=0.2)


def curve_panels(frame, group: str, panels: list[tuple[str, str]], path: Path, label_prefix="") -> None:
    """One panel per (column, title): mean ± SE over seeds against the RL iteration, a line per group."""
    fig, axes = new_figure(1, len(panels), width=4.0)
    for ax, (col, title) in zip(axes, panels):
        _band(ax, frame, "step", col, group, label_prefix)
        ax.set_xlabel("RL iteration")
        ax.set_title(title)
    axes[0].legend()
    save_figure(fig, path)


def rl_outputs(curves: pd.DataFrame, out: Path) -> None:
    evals = curves[curves.kind == "eval"]
    train = curves[curves.kind == "train"]
    curve_panels(
        evals,
        "condition",
        [
            ("acc_rl", "N+1 accuracy (greedy)"),
            ("acc_comfort", "in-distribution accuracy"),
            ("critical_prob", "p(correct critical token)"),
        ],
        out / "figures" / "rl_curves.png",
    )
    curve_panels(
        train,
        "condition",
        [("success", "training success (sampled)"), ("w_mean", "mean KL weight w")],
        out / "figures" / "rl_training.png",
    )

    last, first = evals.step.max(), evals.step.min()
    rows = []
    for (cond, seed), g in evals.groupby(["condition", "seed"]):
        start, end = g[g.step == first].iloc[0], g[g.step == last].iloc[0]
        own = train[(train.condition == cond) & (train.seed == seed)]
        rows.append(
            {
                "condition": cond,
                "seed": seed,
                "acc_start": start.acc_rl,
                "acc_end": end.acc_rl,
                "comfort_start": start.acc_comfort,
                "comfort_end": end.acc_comfort,
                "critical_p_start": start.critical_prob,
                "critical_p_end": end.critical_prob,
                "w_mean": own.w_mean.mean(),
            }
        )
    values = ["acc_start", "acc_end", "comfort_end", "critical_p_start", "critical_p_end", "w_mean"]
    table = mean_se(pd.DataFrame(rows), ["condition"], values)
    table.insert(1, "iterations", int(last))
    write_table(table, out / "tables" / "rl_final", values=values)


def degrees_outputs(curves: pd.DataFrame, out: Path) -> None:
    evals = curves[curves.kind == "eval"]
    curve_panels(
        evals,
        "N",
        [("acc_rl", "N+2 accuracy (greedy)"), ("acc_comfort", "in-distribution accuracy")],
        out / "figures" / "degrees_rl.png",
        label_prefix="N=",
    )
    last, first = evals.step.max(), evals.step.min()
    rows = []
    for (n, seed), g in evals.groupby(["N", "seed"]):
        rows.append({"N": n, "seed": seed, "acc_start": g[g.step == first].acc_rl.iloc[0],
                     "acc_end": g[g.step == last].acc_rl.iloc[0]})  # fmt: skip
    table = mean_se(pd.DataFrame(rows), ["N"], ["acc_start", "acc_end"])
    table.insert(1, "iterations", int(last))
    write_table(table, out / "tables" / "degrees_rl", values=["acc_start", "acc_end"])


def build(out: Path = OUT) -> list[str]:
    """Make every table and figure from ``out/results``; returns what was made."""
    made = []
    steps = [
        ("generalisation", generalisation_table),
        ("table1", table1),
        ("table1_positions", table1_positions),
        ("weights", weights_figure),
        ("rl_curves", rl_outputs),
        ("degrees_rl_curves", degrees_outputs),
    ]
    for name, make in steps:
        frame = _read(out, name)
        if frame is not None and len(frame):
            make(frame, out)
            made.append(name)
    return made


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help=f"preset(s) to report (default: {PRESETS})")
    parser.add_argument("--runs", default="runs", help="the run folders' root")
    parser.add_argument("--no-collect", action="store_true", help="only rebuild from committed results")
    args = parser.parse_args(argv)
    for preset in args.preset or PRESETS:
        out = OUT / preset
        if not args.no_collect:
            used = collect(Path(args.runs), preset, out)
            print(
                f"{preset}: results from {used}"
                if used
                else f"{preset}: no run folder, using committed results"
            )
        made = build(out)
        print(f"{preset}: made", ", ".join(made) if made else "nothing (no results yet)")


if __name__ == "__main__":
    main()
