"""Rebuild every table and figure under ``experiments/scoring/`` (``python -m fourfold.scoring.report``).

Tables come from the run folders of ``python -m fourfold experiment=scoring/<preset>`` (the latest run
per preset and seed; seeds of a multirun are pooled) and are written as small CSV/Markdown files; figures
are drawn from those committed files, so ``make report`` works without the runs too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from fourfold.core.files import atomic_path, atomic_write_json, atomic_write_text
from fourfold.core.plotting import new_figure, save_figure
from fourfold.core.runs import find_runs
from fourfold.core.tables import format_mean_se, to_markdown
from fourfold.scoring.grid import SUMMARY_VALUES, summarize

OUT = Path("experiments/scoring")
COLORS = {"linear": "C0", "xgboost": "C1", "mlp": "C2", "none": "C3"}
TABLE_VALUES = ["bias", "sd", "rmse", "mae", "coverage", "ess_fraction", "logloss", "brier", "ece"]
SHOWN_METHODS = ["tailored", "log", "log_clip01", "log_clip05", "log_trim01", "log_isotonic", "log_platt",
                 "brier", "zhao", "cbps_over", "ebal", "tailored_logit"]  # fmt: skip
# summary columns that a diverged cell prints as "diverged (k of n)": every statistic over replications
SUMMARY_COLUMNS_MARKED = {*SUMMARY_VALUES, *(f"{v}_se" for v in SUMMARY_VALUES), "bias", "bias_se", "mae",
                          "mae_se", "coverage", "coverage_se", "rmse", "rmse_se", "sd", "sd_se"}  # fmt: skip


def collect(runs_root: Path, preset: str) -> tuple[pd.DataFrame | None, dict]:
    """Pooled replication rows of the latest run per seed of ``preset``, and their run metadata."""
    latest: dict[int, object] = {}
    for run in find_runs(runs_root, paper="scoring", preset=preset):
        if (run.path / "replications.csv").is_file():
            latest[run.seed] = run  # find_runs sorts by path, i.e. by timestamp
    if not latest:
        return None, {}
    frames, meta = [], {"runs": [], "seconds": 0.0}
    for seed, run in sorted(latest.items()):
        frame = pd.read_csv(run.path / "replications.csv")
        frame["seed"] = seed
        frames.append(frame)
        meta["runs"].append(str(run.path))
        meta["seconds"] += float(run.metrics.get("seconds", np.nan))
    frame = pd.concat(frames, ignore_index=True)
    frame["rep"] = frame["rep"] + 1_000_000 * frame["seed"]
    return frame, meta


def diverged_note(row) -> str | None:
    """ "diverged (k of n)" for a cell where the fit of k of its n replications diverged, else None."""
    k = int(row.get("diverged", 0) or 0)
    return f"diverged ({k} of {int(row['replications'])})" if k else None


def mark_diverged(shown: pd.DataFrame, cells: pd.DataFrame, columns) -> pd.DataFrame:
    """``shown`` (a table to print) with every value of ``columns`` replaced by the divergence note in the
    rows of ``cells`` (the same rows, numeric) where some replication diverged."""
    shown = shown.astype({col: object for col in columns})
    for position, (_, row) in enumerate(cells.iterrows()):
        note = diverged_note(row)
        if note:
            shown.iloc[position, [shown.columns.get_loc(col) for col in columns]] = note
    return shown


def write_csv_and_markdown(table: pd.DataFrame, shown: pd.DataFrame, stem: Path) -> None:
    """``<stem>.csv``: ``table`` at full precision; ``<stem>.md``: ``shown``, its printed form."""
    with atomic_path(stem.with_name(f"{stem.name}.csv")) as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_text(stem.with_name(f"{stem.name}.md"), to_markdown(shown))


def write_tables(summary: pd.DataFrame, preset: str, meta: dict) -> None:
    results = OUT / "results"
    values = [c for c in summary.columns if c in SUMMARY_COLUMNS_MARKED]
    write_csv_and_markdown(summary, mark_diverged(summary, summary, values), results / f"{preset}_summary")
    hajek = summary[summary["estimator"] == "hajek"].copy()
    hajek["order"] = hajek["method"].map({m: i for i, m in enumerate(SHOWN_METHODS)})
    hajek = hajek.sort_values(["dataset", "learner", "order"])
    cols = ["dataset", "learner", "method", *[c for v in TABLE_VALUES for c in (v, f"{v}_se")], "n", "failed"]
    cols += ["diverged"]
    shown = mark_diverged(format_mean_se(hajek[cols], TABLE_VALUES), hajek, TABLE_VALUES)
    write_csv_and_markdown(hajek[cols], shown, results / f"{preset}_hajek")
    headline = []
    for (learner, estimator), part in summary.groupby(["learner", "estimator"]):
        if learner == "none" or estimator not in ("ht", "hajek"):
            continue
        balancing = summary[(summary["learner"] == "none") & (summary["estimator"] == estimator)]
        balancing = balancing[balancing["dataset"].isin(part["dataset"])]
        cells = pd.concat([part, balancing])
        cells = cells.assign(
            cell=[
                diverged_note(row)
                or (f"{row.rmse:.3g} ± {row.rmse_se:.2g}" if np.isfinite(row.rmse_se) else f"{row.rmse:.3g}")
                for _, row in cells.iterrows()
            ]
        )
        table = cells.pivot_table(index="dataset", columns="method", values="cell", aggfunc="first")
        table = table[[m for m in SHOWN_METHODS if m in table.columns]].reset_index()
        headline.append(f"### {learner}, {estimator}: RMSE of the ATE (mean ± SE over replications)\n\n")
        headline.append(to_markdown(table) + "\n")
    atomic_write_text(results / f"{preset}_headline.md", "".join(headline))
    wide = summary.pivot_table(index=["dataset", "learner", "method"], columns="estimator", values="rmse")
    wide = wide.reset_index()
    cells = wide[["dataset", "learner", "method"]].merge(
        summary.drop_duplicates(["dataset", "learner", "method"]), how="left"
    )
    estimators = [c for c in wide.columns if c not in ("dataset", "learner", "method")]
    atomic_write_text(
        results / f"{preset}_rmse_by_estimator.md", to_markdown(mark_diverged(wide, cells, estimators))
    )
    atomic_write_json(results / f"{preset}_runs.json", meta)


def plot_rmse(summary: pd.DataFrame, preset: str) -> None:
    hajek = summary[summary["estimator"] == "hajek"]
    datasets = sorted(hajek["dataset"].unique())
    learners = ["linear", "xgboost", "mlp"]
    fig, axes = new_figure(len(datasets), 1, width=9.0, height=2.4, squeeze=False)
    for ax, name in zip(axes[:, 0], datasets):
        part = hajek[hajek["dataset"] == name]
        methods = [m for m in SHOWN_METHODS if m in set(part["method"])]
        x = np.arange(len(methods))
        present = [lr for lr in learners if lr in set(part["learner"])]
        for learner in [*present, "none"]:
            rows = part[part["learner"] == learner].set_index("method").reindex(methods)
            # balancing methods have no learner: their bar sits on the tick
            offset = 0.0 if learner == "none" else 0.25 * (present.index(learner) - (len(present) - 1) / 2)
            if rows["rmse"].notna().any():
                ax.bar(
                    x + offset,
                    rows["rmse"],
                    width=0.25,
                    yerr=rows["rmse_se"],
                    label=learner,
                    color=COLORS[learner],
                )
        ax.set_xticks(x, methods, rotation=30, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_title(f"{name}: RMSE of the Hajek ATE")
    axes[0, 0].legend(ncol=4, fontsize=7)
    save_figure(fig, OUT / "figures" / f"rmse_{preset}.png")


def plot_rules() -> None:
    from fourfold.scoring.rules import RULES

    q = np.logspace(-3, np.log10(0.5), 400)
    q = np.r_[q, 1 - q[::-1][1:]]
    fig, (left, mid, right) = new_figure(1, 3, width=3.6, height=3.0)
    for k, name in enumerate(("log", "brier", "exponential", "zhao", "tailored")):
        rule, color = RULES[name], f"C{k}"
        left.plot(q, rule.weight(q), label=name, color=color)
        l1 = rule.partial_losses(q)[0] - rule.partial_losses(np.array([0.5]))[0]
        mid.plot(q, l1, label=name, color=color)
        right.plot(q, rule.canonical_link(q), label=name, color=color)
    left.set(yscale="log", xlabel="q", ylabel="w(q)", title="weight (curvature) w(q)")
    mid.set(yscale="symlog", xlabel="q", ylabel="l(q, 1) - l(1/2, 1)", title="partial loss, T = 1")
    right.set(yscale="symlog", xlabel="q", ylabel="psi(q)", title="canonical link")
    left.legend(fontsize=7)
    save_figure(fig, OUT / "figures" / "weights_and_losses.png")


def plot_propensity_histograms(seed: int = 0) -> None:
    """Fitted propensities of one Kang-Schafer (misspecified, n = 1000) draw, per loss and learner."""
    from fourfold.scoring.datasets import kang_schafer
    from fourfold.scoring.learners import PropensityClassifier

    data = kang_schafer(1000, np.random.default_rng(seed), misspecified=True)
    losses = ["tailored", "log", "zhao", "brier"]
    fig, axes = new_figure(2, len(losses), width=2.6, height=2.2, sharex=True)
    bins = np.linspace(0, 1, 41)
    for row, learner in enumerate(("linear", "xgboost")):
        for col, loss in enumerate(losses):
            with np.errstate(all="ignore"):
                q = PropensityClassifier(learner=learner, loss=loss).fit(data.x, data.t).propensity(data.x)
            ax = axes[row, col]
            ax.hist(data.propensity, bins=bins, alpha=0.35, color="grey", label="true e(x)")
            ax.hist(q, bins=bins, alpha=0.7, label="fitted")
            ax.set_title(f"{learner}, {loss}\nmin {q.min():.1e}, max {q.max():.3f}", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    save_figure(fig, OUT / "figures" / "propensity_histograms.png")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="runs", help="root of the run folders")
    parser.add_argument("--presets", nargs="*", default=None, help="presets to report (default: all found)")
    args = parser.parse_args(argv)
    presets = args.presets
    if presets is None:
        found = {run.preset for run in find_runs(Path(args.runs), paper="scoring")}
        committed = {p.name.removesuffix("_summary.csv") for p in (OUT / "results").glob("*_summary.csv")}
        presets = sorted(found | committed)
    for preset in presets:
        frame, meta = collect(Path(args.runs), preset)
        if frame is not None:
            with np.errstate(all="ignore"):
                summary = summarize(frame)
            write_tables(summary, preset, meta)
            print(f"{preset}: {len(meta['runs'])} run(s), {len(frame)} rows -> {OUT / 'results'}")
        committed = OUT / "results" / f"{preset}_summary.csv"
        if committed.is_file():
            plot_rmse(pd.read_csv(committed), preset)
            print(f"{preset}: figure {OUT / 'figures' / f'rmse_{preset}.png'}")
    plot_rules()
    plot_propensity_histograms()
    print(f"figures in {OUT / 'figures'}")


if __name__ == "__main__":
    main()
