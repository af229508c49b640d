"""Task entry: ``python -m fourfold experiment=scoring/<preset>`` runs the benchmark grid.

The only module that reads the config. Writes ``replications.csv`` (one row per data draw, learner, method
and estimator) and ``summary.csv`` (per cell: mean and SE over replications) to the run folder; returns the
Hajek RMSE of every cell plus run totals as flat metrics.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from omegaconf import DictConfig, OmegaConf

from fourfold.core.files import atomic_path
from fourfold.core.progress import eta_seconds, format_duration
from fourfold.core.runs import current_run_dir
from fourfold.core.seeding import fix_thread_counts, seed_everything
from fourfold.scoring.grid import Block, run_grid, summarize

log = logging.getLogger(__name__)


def blocks_from_config(cfg) -> list[Block]:
    """The grid's blocks (one per learner) from the ``scoring`` config."""
    c = OmegaConf.to_container(cfg, resolve=True)
    mlp = dict(c["mlp"])
    mlp["hidden"] = tuple(mlp["hidden"])
    params = {"linear": dict(c["linear"]), "xgboost": dict(c["xgboost"]), "mlp": mlp}
    blocks = []
    for learner in ("linear", "xgboost", "mlp"):
        reps = {name: int(c["replications"][learner]) for name in c["simulations"]}
        reps |= {name: int(c["semi_replications"][learner]) for name in c["semi_synthetic"]}
        reps |= {name: 1 for name in c["real"]}
        if learner == "mlp":
            reps = {name: r for name, r in reps.items() if name in c["mlp_datasets"]}
        reps = {name: r for name, r in reps.items() if r > 0}
        methods = c["methods"] if learner == "linear" else c["learner_methods"]
        if reps:
            blocks.append(Block(learner, reps, list(methods), params[learner]))
    return blocks


def main(cfg: DictConfig) -> dict[str, float]:
    seed_everything(int(cfg.seed))
    fix_thread_counts(int(cfg.scoring.threads))
    run_dir = current_run_dir()
    blocks = blocks_from_config(cfg.scoring)
    start = time.perf_counter()

    clock = {"dataset": start, "line": start}

    def progress(learner, dataset, rep, reps):
        # A line at most every 30 s and at the end of each data set (an MLP replication takes ~40 s).
        now = time.perf_counter()
        if rep == 0:
            clock["dataset"] = now - 1e-9
        if rep + 1 == reps or now - clock["line"] >= 30:
            clock["line"] = now
            eta = eta_seconds(now - clock["dataset"], rep + 1, reps)
            log.info(
                "%s / %s: %d of %d replications, elapsed %s, ETA for this data set %s",
                learner,
                dataset,
                rep + 1,
                reps,
                format_duration(now - start),
                format_duration(eta),
            )

    with np.errstate(all="ignore"):
        frame = run_grid(blocks, list(cfg.scoring.estimators), int(cfg.scoring.n), int(cfg.seed), progress)
    summary = summarize(frame)
    for name, table in (("replications.csv", frame), ("summary.csv", summary)):
        with atomic_path(run_dir / name) as tmp:
            table.to_csv(tmp, index=False)
    metrics = {
        "seconds": time.perf_counter() - start,
        "rows": float(len(frame)),
        "failed": float(frame["failed"].sum()),
    }
    for row in summary[summary["estimator"] == "hajek"].itertuples(index=False):
        metrics[f"rmse/{row.dataset}/{row.learner}/{row.method}"] = float(row.rmse)
    return metrics
