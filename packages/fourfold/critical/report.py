"""Rebuild every table and figure under ``experiments/critical/`` (``python -m fourfold.critical.report``).

For each reported preset (``quick``, ``mix``, ``alpha``, ``ablations``), the newest finished run folder is
copied into ``experiments/critical/<preset>/results/`` (small CSVs); tables and figures are then made from
those committed files, so the report can be rebuilt without the run folders.
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
PRESETS = ("quick", "mix", "alpha", "ablations")
RESULT_FILES = (
    "degrees",
    "generalisation",
    "table1",
    "table1_positions",
    "weights",
    "beta_rule",
    "rl_curves",
    "rl_runs",
    "degrees_rl_curves",
)
REFERENCE_CONDITION = "standard"  # paired comparisons are against this condition (same seeds, same prompts)
LEARNING_WINDOW = 0.1  # first and last 10% of iterations for the learning evidence
FROZEN_CONDITION = "frozen"  # lr 0: the reference's success on the same prompts and random numbers


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
    columns = ["N", "mix", "n", "delta_critical", "delta_critical_se", "delta_other", "delta_other_se",
               "min_j_critical", "mean_j_all"]  # fmt: skip
    values = ["delta_critical", "delta_other"]
    if "delta_decision" in frame.columns:  # the first line's commas before the (N+1)-th digits
        columns[4:4] = ["delta_decision", "delta_decision_se", "j_decision"]
        values.append("delta_decision")
    if "delta_failure" in frame.columns:
        columns += ["n_failures", "delta_failure", "delta_failure_se"]
        values.append("delta_failure")
    write_table(frame[columns], out / "tables" / "table1_certainty_gap", values=values)


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
    axes = np.atleast_1d(axes)
    for ax, (col, title) in zip(axes, panels):
        _band(ax, frame, "step", col, group, label_prefix)
        ax.set_xlabel("RL iteration")
        ax.set_title(title)
    axes[0].legend()
    save_figure(fig, path)


def t_interval(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and a two-sided Student-t confidence interval over replications: (mean, low, high, n)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(x.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def smoothed_success(train: pd.DataFrame, window: int = 10) -> pd.DataFrame:
    """Sampled training success averaged over blocks of ``window`` iterations (per condition and seed)."""
    frame = train[["condition", "seed", "step", "success"]].copy()
    frame["step"] = (frame.step // window) * window + (window - 1) / 2
    return frame.groupby(["condition", "seed", "step"], as_index=False).success.mean()


def learning_table(train: pd.DataFrame, window: float = LEARNING_WINDOW) -> pd.DataFrame:
    """Per condition: sampled training success over the first and the last ``window`` share of iterations,
    and their difference (per seed) with a 95% t-interval over seeds. With a ``frozen`` condition (lr 0:
    the reference on the same prompts and random numbers), also the last window's success minus the
    frozen one's on the same seeds (``vs_frozen``), which removes the prompts' difficulty."""
    rows, last_windows = [], {}
    for cond, g in train.groupby("condition"):
        last = int(g.step.max())
        width = max(1, int(round(window * (last + 1))))
        per_seed = pd.DataFrame({
            "first": g[g.step < width].groupby("seed").success.mean(),
            "last": g[g.step > last - width].groupby("seed").success.mean(),
        })  # fmt: skip
        last_windows[cond] = per_seed["last"]
        diff = t_interval(per_seed["last"] - per_seed["first"])
        rows.append(
            {"condition": cond, "iterations": last + 1, "window": width, "first": per_seed["first"].mean(),
             "last": per_seed["last"].mean(), "difference": diff[0], "ci_low": diff[1], "ci_high": diff[2],
             "seeds": diff[3]}
        )  # fmt: skip
    table = pd.DataFrame(rows)
    if FROZEN_CONDITION in last_windows:
        frozen = last_windows[FROZEN_CONDITION]
        paired = [t_interval((last_windows[c] - frozen).dropna()) for c in table.condition]
        for i, name in enumerate(("vs_frozen", "vs_frozen_low", "vs_frozen_high", "vs_frozen_seeds")):
            table[name] = [p[i] for p in paired]
    return table


def paired_table(evals: pd.DataFrame, train: pd.DataFrame, reference: str = REFERENCE_CONDITION):
    """Every condition minus ``reference`` on the same seeds (same prompts, same evaluation sets), at every
    evaluated iteration and on the last-10% sampled success: mean difference, 95% t-interval, seeds."""
    rows = []
    if reference not in set(evals.condition):
        return pd.DataFrame(rows)
    metrics = [("acc_rl", "greedy N+1 accuracy"), ("critical_prob", "p(correct critical token)"),
               ("failure_prob", "p(correct token where the reference fails)"),
               ("acc_comfort", "in-distribution accuracy")]  # fmt: skip
    metrics = [m for m in metrics if m[0] in evals.columns]
    base = evals[evals.condition == reference].set_index(["seed", "step"])
    for cond, g in evals.groupby("condition"):
        if cond == reference:
            continue
        g = g.set_index(["seed", "step"])
        common = g.index.intersection(base.index)
        for col, label in metrics:
            diff = (g.loc[common, col] - base.loc[common, col]).reset_index()
            for step, d in diff.groupby("step"):
                m, lo, hi, n = t_interval(d[col])
                rows.append({"condition": cond, "metric": label, "iteration": int(step), "difference": m,
                             "ci_low": lo, "ci_high": hi, "seeds": n})  # fmt: skip
    learn = learning_table(train)
    per_seed = {}
    for cond, g in train.groupby("condition"):
        last = int(g.step.max())
        width = max(1, int(round(LEARNING_WINDOW * (last + 1))))
        per_seed[cond] = g[g.step > last - width].groupby("seed").success.mean()
    for cond in learn.condition:
        if cond == reference:
            continue
        d = (per_seed[cond] - per_seed[reference]).dropna()
        m, lo, hi, n = t_interval(d)
        rows.append({"condition": cond, "metric": "sampled success, last 10%", "iteration": int(
            train[train.condition == cond].step.max()) + 1, "difference": m, "ci_low": lo, "ci_high": hi,
            "seeds": n})  # fmt: skip
    return pd.DataFrame(rows)


def rl_outputs(curves: pd.DataFrame, out: Path) -> None:
    evals = curves[curves.kind == "eval"]
    train = curves[curves.kind == "train"]
    panels = [(evals, "acc_rl", "N+1 accuracy (greedy)"),
              (smoothed_success(train), "success", "training success (sampled, 10-iteration means)"),
              (evals, "acc_comfort", "in-distribution accuracy"),
              (evals, "critical_prob", "p(correct critical token), located"),
              (evals, "failure_prob", "p(correct token) where the reference fails")]  # fmt: skip
    panels = [panel for panel in panels if panel[1] in panel[0].columns]
    fig, axes = new_figure(1, len(panels), width=4.0)
    for ax, (frame, col, title) in zip(axes, panels):
        _band(ax, frame, "step", col, "condition")
        ax.set_xlabel("RL iteration")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    save_figure(fig, out / "figures" / "rl_curves.png")
    curve_panels(
        train,
        "condition",
        [(c, t) for c, t in (("w_mean", "mean KL weight w"), ("kl", "KL estimate (k2), sampled tokens"))
         if c in train.columns],
        out / "figures" / "rl_training.png",
    )  # fmt: skip
    learning = learning_table(train)
    write_table(learning, out / "tables" / "rl_learning")
    paired = paired_table(evals, train)
    if len(paired):
        write_table(paired, out / "tables" / "rl_paired")

    rows = []
    for (cond, seed), g in evals.groupby(["condition", "seed"]):
        start, end = g[g.step == g.step.min()].iloc[0], g[g.step == g.step.max()].iloc[0]
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
                "failure_p_start": start.get("failure_prob", np.nan),
                "failure_p_end": end.get("failure_prob", np.nan),
                "w_mean": own.w_mean.mean(),
            }
        )
    values = ["acc_start", "acc_end", "comfort_end", "critical_p_start", "critical_p_end", "failure_p_start",
              "failure_p_end", "w_mean"]  # fmt: skip
    table = mean_se(pd.DataFrame(rows), ["condition"], values)
    table.insert(1, "iterations", [int(evals[evals.condition == c].step.max()) for c in table.condition])
    write_table(table, out / "tables" / "rl_final", values=values)


RECIPE_COLUMNS = ("mode", "optimizer", "lr", "warmup_steps", "episodes", "group_size", "iterations")


def _window_mean(g: pd.DataFrame, col: str, last: bool, window: float = LEARNING_WINDOW) -> float:
    """Mean of ``col`` over the first (or last) ``window`` share of a run's iterations."""
    end = int(g.step.max())
    width = max(1, int(round(window * (end + 1))))
    part = g[g.step > end - width] if last else g[g.step < width]
    return float(part[col].mean()) if col in part.columns else float("nan")


def recipe_table(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: its recipe (``rl_runs.csv``), then means over seeds of the sampled success
    in the first and last 10% of iterations (and the difference's 95% t-interval), the k2 KL to the
    reference and the gradient norm over the last 10%, greedy N+1 accuracy at the first and last
    evaluation, the lowest in-distribution accuracy seen, and the run's seconds."""
    train, evals = curves[curves.kind == "train"], curves[curves.kind == "eval"]
    rows = []
    for cond, runs_c in runs.groupby("condition", sort=False):
        per_seed = []
        for seed, g in train[train.condition == cond].groupby("seed"):
            e = evals[(evals.condition == cond) & (evals.seed == seed)].sort_values("step")
            per_seed.append({
                "first": _window_mean(g, "success", last=False),
                "last": _window_mean(g, "success", last=True),
                "kl_last": _window_mean(g, "kl", last=True),
                "grad_norm_last": _window_mean(g, "grad_norm", last=True),
                "acc_start": e.acc_rl.iloc[0], "acc_end": e.acc_rl.iloc[-1],
                "comfort_min": e.acc_comfort.min(),
            })  # fmt: skip
        if not per_seed:
            continue
        seeds = pd.DataFrame(per_seed)
        diff = t_interval(seeds["last"] - seeds["first"])
        recipe = {k: runs_c[k].iloc[0] for k in RECIPE_COLUMNS if k in runs_c.columns}
        rows.append({"condition": cond, **recipe, **seeds.mean().to_dict(), "difference": diff[0],
                     "ci_low": diff[1], "ci_high": diff[2], "seeds": diff[3],
                     "seconds": float(runs_c.seconds.mean())})  # fmt: skip
    return pd.DataFrame(rows)


def probe_table(rl_dir: Path, seed: int = 0, baseline: str | None = None) -> pd.DataFrame:
    """One row per RL run folder of ``seed`` under ``rl_dir`` (``<cache>/rl/<reference>``), finished or
    stopped: iterations reached, sampled success over iterations 0-4, 5-9, 10-19 and 30-39 (the prompts of
    an iteration depend only on the seed and the iteration, so a column compares runs on the same
    episodes' prompts), the k2 KL to the reference over the last 5 iterations reached and its maximum, the
    mean gradient norm, the last greedy N+1 and in-distribution accuracies, and the seconds of a finished
    run. ``baseline``: a folder name whose success is subtracted in ``vs_baseline_10_19``."""
    rows = []
    for folder in sorted(Path(rl_dir).glob(f"*_seed{seed}_*")):
        path = folder / "curves.jsonl"
        if not path.is_file():
            continue
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        frame = pd.DataFrame(records).drop_duplicates(subset=["kind", "step"], keep="last")
        train = frame[frame.kind == "train"].set_index("step").sort_index()
        evals = frame[frame.kind == "eval"].sort_values("step")
        if train.empty:
            continue
        done = folder / "done"

        def success(lo: int, hi: int, train=train) -> float:
            window = train.loc[(train.index >= lo) & (train.index <= hi), "success"]
            return float(window.mean()) if len(window) == hi - lo + 1 else float("nan")

        last5 = train.iloc[-5:]
        rows.append({
            "run": folder.name, "finished": done.is_file(), "iterations": int(train.index.max()) + 1,
            "success_0_4": success(0, 4), "success_5_9": success(5, 9), "success_10_19": success(10, 19),
            "success_30_39": success(30, 39),
            "kl_last5": float(last5["kl"].mean()) if "kl" in train else float("nan"),
            "kl_max": float(train["kl"].max()) if "kl" in train else float("nan"),
            "grad_norm": float(train["grad_norm"].mean()) if "grad_norm" in train else float("nan"),
            "last_eval": int(evals.step.iloc[-1]), "acc_rl": float(evals.acc_rl.iloc[-1]),
            "acc_comfort": float(evals.acc_comfort.iloc[-1]),
            "seconds": float(done.read_text().split()[0]) if done.is_file() else float("nan"),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    if baseline is not None and len(table) and baseline in set(table.run):
        table["vs_baseline_10_19"] = table.success_10_19 - float(
            table.loc[table.run == baseline, "success_10_19"].iloc[0]
        )
    return table


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


def beta_rule_table(frame: pd.DataFrame, out: Path) -> None:
    write_table(frame, out / "tables" / "beta_rule")


def runtimes_table(frame: pd.DataFrame, out: Path) -> None:
    table = frame.groupby("condition", sort=False).seconds.agg(["count", "mean", "min", "max", "sum"])
    write_table(table.reset_index().rename(columns={"count": "runs"}), out / "tables" / "rl_runtimes")


def build(out: Path = OUT) -> list[str]:
    """Make every table and figure from ``out/results``; returns what was made."""
    made = []
    steps = [
        ("generalisation", generalisation_table),
        ("table1", table1),
        ("table1_positions", table1_positions),
        ("weights", weights_figure),
        ("beta_rule", beta_rule_table),
        ("rl_curves", rl_outputs),
        ("rl_runs", runtimes_table),
        ("degrees_rl_curves", degrees_outputs),
    ]
    for name, make in steps:
        frame = _read(out, name)
        if frame is not None and len(frame):
            make(frame, out)
            made.append(name)
    curves, runs = _read(out, "rl_curves"), _read(out, "rl_runs")
    if curves is not None and runs is not None and "lr" in runs.columns:
        write_table(recipe_table(curves, runs), out / "tables" / "rl_recipes")
        made.append("rl_recipes")
    return made


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help=f"preset(s) to report (default: {PRESETS})")
    parser.add_argument("--runs", default="runs", help="the run folders' root")
    parser.add_argument("--no-collect", action="store_true", help="only rebuild from committed results")
    probes_help = "also tabulate every seed-0 RL run folder (finished or stopped) under this directory"
    probes_help += " (<cache>/rl/<reference>) into ablations/tables/probes"
    parser.add_argument("--probes", help=probes_help)
    parser.add_argument("--baseline", help="with --probes: the run folder the others are compared with")
    args = parser.parse_args(argv)
    if args.probes:
        table = probe_table(Path(args.probes), baseline=args.baseline)
        write_table(table, OUT / "ablations" / "tables" / "probes")
        print(f"probes: {len(table)} run folders -> {OUT / 'ablations' / 'tables' / 'probes.md'}")
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
