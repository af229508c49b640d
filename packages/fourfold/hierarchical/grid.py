"""The paper's evaluation grid: every decoder (the metric-matched optimum and the seven heuristics)
scored on every metric, plus calibration error, for one probability matrix."""

import numpy as np

from fourfold.hierarchical.decision import optimal_decode
from fourfold.hierarchical.heuristics import HEURISTICS
from fourfold.hierarchical.metrics import BASE_METRICS, Metric, all_metrics, expected_calibration_error
from fourfold.hierarchical.tree import Hierarchy

DECODERS = ("optimal", *HEURISTICS)


def evaluate_grid(P: np.ndarray, labels: np.ndarray, h: Hierarchy, metrics: dict[str, Metric] | None = None):
    """Rows {decoder, metric, value, se[, se_diff]} (sample means) for the 8 x 8 grid and an ``ece`` row.

    The ``optimal`` row uses, for each metric, that metric's own Bayes-optimal decoder.
    """
    metrics = metrics or all_metrics(h, BASE_METRICS)
    rows, optimal = [], {}
    for name, metric in metrics.items():
        optimal[name] = metric.score(optimal_decode(P, h, metric), labels)
        rows.append({"decoder": "optimal", "metric": name, **_mean_se(optimal[name])})
    for rule, heuristic in HEURISTICS.items():
        pred = h.paths(heuristic(P, h))
        for name, metric in metrics.items():
            values = metric.score(pred, labels)
            # se_diff: standard error of the paired per-example difference to the optimal decoder.
            paired = _mean_se(values - optimal[name])["se"]
            rows.append({"decoder": rule, "metric": name, **_mean_se(values), "se_diff": paired})
    rows.append(
        {"decoder": "-", "metric": "ece", "value": expected_calibration_error(P, labels), "se": np.nan}
    )
    return rows


def _mean_se(values: np.ndarray) -> dict[str, float]:
    """Sample mean and its standard error."""
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.nan
    return {"value": float(values.mean()), "se": float(se)}


def cross_grid(P: np.ndarray, labels: np.ndarray, h: Hierarchy, metrics: dict[str, Metric] | None = None):
    """Rows {decoder, metric, value} where each ``optimal_<m>`` decoder is scored on every metric it
    can score (node metrics need single-path predictions; NaN otherwise), plus the heuristics."""
    from fourfold.hierarchical.metrics import MetricError

    metrics = metrics or all_metrics(h, BASE_METRICS)
    predictions = {f"optimal_{m}": optimal_decode(P, h, metric) for m, metric in metrics.items()}
    predictions.update({rule: h.paths(f(P, h)) for rule, f in HEURISTICS.items()})
    rows = []
    for decoder, pred in predictions.items():
        for name, metric in metrics.items():
            try:
                value = float(metric.score(pred, labels).mean())
            except MetricError:
                value = float("nan")
            rows.append({"decoder": decoder, "metric": name, "value": value})
    return rows
