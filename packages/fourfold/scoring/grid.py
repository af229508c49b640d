"""The benchmark grid: datasets x learners x methods x replications, scored by ATE error and propensity
quality, then summarised per cell (mean and standard error over replications).

One replication = one data draw (or ACIC instance, or IHDP surface draw); every method of a learner is fitted
on that same draw, and clip/trim variants reuse the fit of their base model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fourfold.scoring import datasets
from fourfold.scoring.baselines import fit_method, get_method
from fourfold.scoring.ipw import ate, ate_from_weights, cross_fitted_outcomes

DETERMINISTIC = {"acic2016": 10, "lalonde_cps": 1, "lalonde_psid": 1}  # at most this many distinct draws


@dataclass(frozen=True)
class Block:
    """One learner's share of the grid: replications per data set (capped at the distinct draws there are)."""

    learner: str
    replications: dict[str, int]
    methods: list[str]
    params: dict = field(default_factory=dict)


def calibration_error(q, t, bins: int = 10) -> float:
    """Expected calibration error: bin-weighted |mean q - mean t| over equal-width bins of q."""
    edges = np.minimum((np.asarray(q) * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = edges == b
        if inside.any():
            total += inside.mean() * abs(q[inside].mean() - t[inside].mean())
    return float(total)


def propensity_scores(q, t, true_p=None) -> dict[str, float]:
    """Log-loss, Brier and calibration error of propensities q against the treatment (and the truth)."""
    eps = np.finfo(float).tiny
    scores = {
        "logloss": float(-np.mean(t * np.log(np.maximum(q, eps)) + (1 - t) * np.log(np.maximum(1 - q, eps)))),
        "brier": float(np.mean((q - t) ** 2)),
        "ece": calibration_error(q, t),
    }
    if true_p is not None:
        scores["propensity_rmse"] = float(np.sqrt(np.mean((q - true_p) ** 2)))
    return scores


def _fit_key(name: str) -> tuple:
    m = get_method(name)
    return (m.loss, m.link, m.calibration, m.balancing)


def evaluate_replication(data, block: Block, estimators: Iterable[str], seed: int, rep: int) -> list[dict]:
    """Every method of ``block`` on one data draw: one row per (method, estimator)."""
    rows, cache = [], {}
    outcome = cross_fitted_outcomes(data.x, data.t, data.y, seed=seed) if "aipw" in estimators else None
    params = dict(block.params)
    if block.learner in ("mlp", "xgboost"):
        params["random_state"] = int(seed * 100_003 + rep)
    for name in block.methods:
        method = get_method(name)
        base = {
            "dataset": data.name.split("_")[0] if data.name.startswith("acic") else data.name,
            "learner": block.learner if method.needs_learner else "none",
            "method": name,
            "rep": rep,
        }
        key = _fit_key(name)
        start = time.perf_counter()
        try:
            if key not in cache:
                cache[key] = fit_method(name, data.x, data.t, block.learner, params)
            fitted = cache[key]
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
            rows.append({**base, "failed": 1.0, "message": str(err)[:200]})
            continue
        seconds = time.perf_counter() - start
        base["diverged"] = float(fitted.diverged)
        quality = (
            propensity_scores(fitted.propensity, data.t, data.propensity)
            if fitted.propensity is not None
            else {}
        )
        for estimator in estimators:
            row = {**base, "estimator": estimator, "fit_seconds": seconds, **quality}
            try:
                if fitted.weights is not None:
                    if estimator != "hajek":
                        continue  # balancing weights define a Hajek-type estimator only
                    result = ate_from_weights(data.y, data.t, fitted.weights)
                else:
                    result = ate(
                        data.y,
                        data.t,
                        fitted.propensity,
                        method=estimator,
                        outcome=outcome,
                        clip=method.clip,
                        trim=method.trim,
                    )
            except ValueError as err:
                rows.append({**row, "failed": 1.0, "message": str(err)[:200]})
                continue
            row.update(result.as_dict())
            row["failed"] = 0.0
            if data.ate is not None:
                low, high = result.ci
                row.update(
                    truth=data.ate, error=result.estimate - data.ate, covered=float(low <= data.ate <= high)
                )
            row["ess_fraction"] = row["ess"] / len(data.y)
            rows.append(row)
    return rows


def run_grid(blocks: Iterable[Block], estimators, n: int, seed: int, progress=None):
    """Run every block; returns a DataFrame, one row per (dataset, learner, method, estimator, rep)."""
    import pandas as pd

    rows = []
    for block in blocks:
        for d_index, (name, wanted) in enumerate(block.replications.items()):
            reps = min(wanted, DETERMINISTIC.get(name, wanted))
            for rep in range(reps):
                rng = np.random.default_rng([seed, d_index, rep, sum(map(ord, name))])
                data = datasets.load(name, rng, n=n, replication=rep)
                rows.extend(evaluate_replication(data, block, estimators, seed, rep))
                if progress:
                    progress(block.learner, name, rep, reps)
    return pd.DataFrame(rows)


SUMMARY_VALUES = [
    "error",
    "abs_error",
    "sq_error",
    "estimate",
    "covered",
    "ess",
    "ess_fraction",
    "logloss",
    "brier",
    "ece",
    "min_propensity",
    "max_propensity",
    "n_clipped",
    "n_trimmed",
    "fit_seconds",
]


def summarize(frame):
    """Per (dataset, learner, method, estimator): bias, SD, RMSE, MAE, coverage, ESS, propensity log-loss,
    Brier and calibration error with standard errors over the replications whose fit neither failed nor
    diverged, plus ``failed`` (failed estimator rows) and ``diverged`` (replications whose fit diverged:
    their numbers are wherever the solver's budget ran out, so they are counted, not averaged)."""
    import pandas as pd

    from fourfold.core.tables import mean_se

    by = ["dataset", "learner", "method", "estimator"]
    if "diverged" not in frame:  # run folders written before fits reported divergence
        frame = frame.assign(diverged=0.0)
    frame = frame.assign(diverged=frame["diverged"].fillna(0.0))
    ok = frame[(frame["failed"] == 0) & (frame["diverged"] == 0)].copy()
    ok["abs_error"] = ok["error"].abs()
    ok["sq_error"] = ok["error"] ** 2
    for col in SUMMARY_VALUES:
        if col not in ok:
            ok[col] = np.nan
    table = mean_se(ok, by, SUMMARY_VALUES)
    # a cell whose every replication diverged keeps its row (NaN values, n = 0) and says so below
    cells = frame.loc[frame["estimator"].notna(), by].drop_duplicates() if "estimator" in frame else table[by]
    table = cells.merge(table, on=by, how="left").sort_values(by, ignore_index=True)
    table["n"] = table["n"].fillna(0).astype(int)
    table = table.rename(
        columns={
            "error": "bias",
            "error_se": "bias_se",
            "abs_error": "mae",
            "abs_error_se": "mae_se",
            "covered": "coverage",
            "covered_se": "coverage_se",
        }
    )
    table["rmse"] = np.sqrt(table["sq_error"])
    table["rmse_se"] = table["sq_error_se"] / (2 * table["rmse"].where(table["rmse"] > 0))
    # SD of the error, not of the estimate: semi-synthetic truths change between replications
    sd = ok.groupby(by)["error"].std(ddof=1).rename("sd").reset_index()
    table = table.merge(sd, on=by, how="left")
    table["sd_se"] = table["sd"] / np.sqrt(2 * (table["n"] - 1).clip(lower=1))
    cell = ["dataset", "learner", "method"]
    failures = frame.groupby(cell)["failed"].sum().rename("failed").reset_index()
    table = table.merge(failures, on=cell, how="left")
    runaway = frame[frame["diverged"] > 0].groupby(cell)["rep"].nunique().rename("diverged").reset_index()
    reps = frame.groupby(cell)["rep"].nunique().rename("replications").reset_index()
    table = table.merge(runaway, on=cell, how="left").merge(reps, on=cell, how="left")
    table["diverged"] = table["diverged"].fillna(0).astype(int)
    return pd.DataFrame(table)
