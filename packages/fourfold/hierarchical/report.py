"""Rebuild every table and figure under experiments/hierarchical/ from the latest sweep run.

    python -m fourfold.hierarchical.report [--preset paper|quick] [--runs runs]

Reads ``results.csv`` of the newest run folder of the preset (``paper`` if one exists, else ``quick``);
without run folders it rebuilds from the committed ``experiments/hierarchical/results/sweep_<preset>.csv``.
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from fourfold.core.files import atomic_write_text
from fourfold.core.plotting import new_figure, save_figure
from fourfold.core.runs import find_runs
from fourfold.core.seeding import fix_thread_counts
from fourfold.core.tables import to_markdown, write_table
from fourfold.hierarchical.data import alexnet_logits
from fourfold.hierarchical.grid import DECODERS
from fourfold.hierarchical.metrics import BASE_METRICS, get_metric
from fourfold.hierarchical.tree import Hierarchy

OUT = Path("experiments/hierarchical")
LOWER_IS_BETTER = {"hamming", "mistake_severity", "wu_palmer", "zhao"}
LEVEL_NAMES = {"alexnet": "temperature T", "digits": "blur sigma (px)"}


def latest_results(runs_root: Path, preset: str | None) -> tuple[pd.DataFrame, str]:
    presets = [preset] if preset else ["paper", "quick"]
    for name in presets:
        runs = [
            r
            for r in find_runs(runs_root, paper="hierarchical", preset=name)
            if (r.path / "results.csv").is_file()
        ]
        if runs:
            newest = max(runs, key=lambda r: r.path.name)
            target = OUT / "results" / f"sweep_{name}.csv"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(newest.path / "results.csv", target)
            return pd.read_csv(target), name
        committed = OUT / "results" / f"sweep_{name}.csv"
        if committed.is_file():
            return pd.read_csv(committed), name
    raise FileNotFoundError(
        f"no hierarchical sweep run under {runs_root} and no committed results for {presets}"
    )


def signed_gap(df: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, source, level, metric): optimal minus the best heuristic, signed so that > 0 means
    the optimal decoder is better, with the two standard errors combined."""
    rows = []
    grid = df[df.decoder.isin(DECODERS)]
    for key, cell in grid.groupby(["dataset", "source", "level", "metric"]):
        sign = -1.0 if key[3] in LOWER_IS_BETTER else 1.0
        opt = cell[cell.decoder == "optimal"].iloc[0]
        heur = cell[cell.decoder != "optimal"].copy()
        heur["score"] = sign * heur.value
        best = heur.loc[heur.score.idxmax()]
        gap = sign * (opt.value - best.value) + 0.0  # no "-0" in tables
        # Paired standard error when the run stored it (same examples for every decoder).
        se = (
            float(best.se_diff)
            if "se_diff" in best and np.isfinite(best.se_diff)
            else float(np.hypot(opt.se, best.se))
        )
        rows.append(
            dict(
                zip(["dataset", "source", "level", "metric"], key),
                gap=gap,
                se=se,
                best_heuristic=best.decoder,
                verdict=_verdict(gap, se),
            )
        )
    return pd.DataFrame(rows)


def _verdict(gap: float, se: float) -> str:
    if gap > 2 * se:
        return "optimal better"
    if gap < -2 * se:
        return "heuristic better"
    return "tied (within 2 SE)"


def heuristic_coverage(df: pd.DataFrame) -> pd.DataFrame:
    """For each dataset/source at its largest level: per heuristic, the number of metrics where it is
    within 2 SE (paired when available) of, or better than, the optimal decoder."""
    rows = []
    grid = df[df.decoder.isin(DECODERS)]
    for (dataset, source), cell in grid.groupby(["dataset", "source"]):
        cell = cell[cell.level == cell.level.max()]
        row = {"dataset": dataset, "source": source, "level": float(cell.level.max())}
        for decoder in DECODERS[1:]:
            count = 0
            for metric in BASE_METRICS:
                sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
                opt = cell[(cell.decoder == "optimal") & (cell.metric == metric)].iloc[0]
                heur = cell[(cell.decoder == decoder) & (cell.metric == metric)].iloc[0]
                se = (
                    heur.se_diff
                    if "se_diff" in heur and np.isfinite(heur.se_diff)
                    else np.hypot(opt.se, heur.se)
                )
                count += int(sign * (heur.value - opt.value) >= -2 * float(se))
            row[decoder] = count
        rows.append(row)
    return pd.DataFrame(rows)


def grid_table(df: pd.DataFrame, dataset: str, source: str, level: float) -> pd.DataFrame:
    cell = df[
        (df.dataset == dataset) & (df.source == source) & (df.level == level) & df.decoder.isin(DECODERS)
    ]
    table = cell.pivot_table(index="decoder", columns="metric", values="value").reindex(DECODERS)
    return table[[m for m in BASE_METRICS if m in table.columns]].reset_index()


def figure(df: pd.DataFrame, dataset: str, source: str, path: Path) -> None:
    cell = df[(df.dataset == dataset) & (df.source == source)]
    fig, axes = new_figure(2, 4, width=3.2, height=2.6)
    for ax, metric in zip(axes.ravel(), BASE_METRICS):
        for decoder in DECODERS:
            line = cell[(cell.decoder == decoder) & (cell.metric == metric)].sort_values("level")
            style = {"color": "black", "linewidth": 2.4} if decoder == "optimal" else {"linewidth": 1.0}
            ax.plot(line.level, line.value, marker="o", markersize=2.5, label=decoder, **style)
        arrow = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        ax.set_title(f"{metric} ({arrow})", fontsize=9)
        ax.set_xlabel(LEVEL_NAMES.get(dataset, "noise sigma"))
    axes.ravel()[0].legend(fontsize=7)
    ece = cell[cell.metric == "ece"].sort_values("level")
    ece_text = ", ".join(f"{lv:g}: {v:.3f}" for lv, v in zip(ece.level, ece.value))
    fig.suptitle(f"{dataset} / {source} posteriors; ECE by level: {ece_text}", fontsize=9)
    save_figure(fig, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default=None, help="paper or quick (default: every preset with results)")
    parser.add_argument("--runs", default="runs", help="root of the run folders")
    parser.add_argument(
        "--alexnet-dir", default=None, help="folder of the AlexNet .npy files (default: the packaged copy)"
    )
    args = parser.parse_args(argv)
    fix_thread_counts(1)  # the AlexNet checks decode here: same threads as the sweep, same decisions
    built = 0
    for name in [args.preset] if args.preset else ["paper", "quick"]:
        try:
            df, preset = latest_results(Path(args.runs), name)
        except FileNotFoundError:
            if args.preset:
                raise
            continue
        build(df, preset, args.alexnet_dir)
        built += 1
    if not built:
        raise FileNotFoundError(f"no hierarchical sweep results under {args.runs} or {OUT / 'results'}")


def build(df: pd.DataFrame, preset: str, alexnet_dir: "str | Path | None" = None) -> None:
    """Every table and figure of one preset's sweep results."""
    tables, figures = OUT / "tables", OUT / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    gaps = signed_gap(df)
    write_table(gaps, tables / f"gaps_{preset}")
    summary = gaps.groupby(["dataset", "source", "verdict"]).size().unstack(fill_value=0).reset_index()
    write_table(summary, tables / f"verdicts_{preset}")

    claims = [
        f"# Claim tables ({preset} preset)\n\n",
        "## Gap of the optimal decoder over the best heuristic, by level (> 0: optimal better)\n",
    ]
    for (dataset, source), cell in gaps.groupby(["dataset", "source"]):
        pivot = cell.pivot_table(index="level", columns="metric", values="gap")
        pivot = pivot[[m for m in BASE_METRICS if m in pivot.columns]].reset_index()
        claims.append(f"\n### {dataset}, {source}\n\n" + to_markdown(pivot))
    claims.append(
        "\n## Metrics (of 8) on which each heuristic ties or beats the optimal decoder "
        "(within 2 SE), at the most ambiguous level\n\n"
    )
    claims.append(to_markdown(heuristic_coverage(df)))
    atomic_write_text(tables / f"claims_{preset}.md", "".join(claims))

    lines = [
        f"# Grids ({preset} preset): 8 decoders x 8 metrics\n",
        "`optimal` = each metric's own Bayes-optimal decoder. Lower is better for hamming, "
        "mistake_severity, wu_palmer, zhao.\n",
    ]
    for (dataset, source), cell in df.groupby(["dataset", "source"]):
        levels = sorted(cell.level.unique())
        for level in (levels[0], levels[-1]) if len(levels) > 1 else levels:
            ece = cell[(cell.metric == "ece") & (cell.level == level)].value
            lines.append(f"\n## {dataset}, {source}, level {level:g} (ECE {ece.iloc[0]:.3f})\n\n")
            lines.append(to_markdown(grid_table(df, dataset, source, level)))
        if dataset != "alexnet":
            figure(df, dataset, source, figures / f"{dataset}_{source}_{preset}.png")
    atomic_write_text(tables / f"grids_{preset}.md", "".join(lines))
    if "alexnet" in set(df.dataset):
        checks = alexnet_checks(alexnet_dir)
        if len(checks):
            write_table(checks, tables / "alexnet_checks")
    print(f"report rebuilt from the {preset} results in {OUT}")


def alexnet_checks(folder: "str | Path | None" = None) -> pd.DataFrame:
    """Per-example checks on the shipped AlexNet logits (brief §10.1) at T in {1, 2, 4}: fraction of
    examples where two computations agree."""
    from fourfold.hierarchical import decoders as D
    from fourfold.hierarchical import heuristics as H
    from fourfold.hierarchical.inputs import softmax

    h = Hierarchy.shipped("tieredimagenet_h")
    logits, _ = alexnet_logits(folder)
    rows = []
    for t in (1.0, 2.0, 4.0):
        P = softmax(logits, t)
        row = {"temperature": t}
        for name in ("wu_palmer", "zhao"):
            cost = get_metric(name, h).cost
            pruned = D.node_cost_argmin(P, cost, h, prune=True)
            row[f"{name}: pruned = every node"] = float(np.mean(pruned == D.brute_node_argmin(P, cost)))
            row[f"{name}: mean candidates"] = float(
                D.prune_candidates(P, h, D.pruning_constants(cost, h)).sum(1).mean()
            )
        ms = get_metric("mistake_severity", h)
        row["threshold_0.5 = mistake-severity optimum"] = float(
            np.mean(H.threshold_half(P, h) == D.node_cost_argmin(P, ms.cost, h, prune=False))
        )
        row["crm_as_published = argmax leaf"] = float(np.mean(H.crm_as_published(P, h) == P.argmax(1)))
        row["fixed crm = argmax leaf"] = float(np.mean(H.crm(P, h) == P.argmax(1)))
        for beta in (0.5, 1.0, 2.0):
            metric = get_metric(f"hF_{beta:g}", h)
            glob = metric.expected(D.hf_optimal(P, h, beta), P)
            wide = metric.expected(D.hf_optimal(P, h, beta, max_k=120), P)
            row[f"hF_{beta:g}: global bound = k up to 120"] = float(
                np.mean(np.isclose(glob, wide, atol=1e-12))
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("temperature").T.reset_index().rename(columns={"index": "check"})


if __name__ == "__main__":
    main()
