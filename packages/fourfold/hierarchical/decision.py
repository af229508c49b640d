"""The public decision API: ``decode`` a probability matrix for a metric, ``score`` predictions."""

import numpy as np

from fourfold.hierarchical import decoders
from fourfold.hierarchical.heuristics import EXTRA_HEURISTICS, HEURISTICS
from fourfold.hierarchical.inputs import softmax, validate_probs
from fourfold.hierarchical.metrics import Metric, MetricError, get_metric
from fourfold.hierarchical.tree import Hierarchy

RULES = ("optimal", *HEURISTICS, *EXTRA_HEURISTICS)


def as_metric(metric: "str | Metric", h: Hierarchy, count_root: bool = True) -> Metric:
    if isinstance(metric, Metric):
        if metric.hierarchy is not h:
            raise MetricError(f"metric {metric.name!r} was built for another hierarchy")
        return metric
    return get_metric(metric, h, count_root=count_root)


def optimal_decode(P: np.ndarray, h: Hierarchy, metric: Metric, *, prune: bool | None = None) -> np.ndarray:
    """The Bayes-optimal prediction (B, N) for ``metric`` under validated leaf probabilities P.

    Node costs: by default (``prune=None`` or False) every node is scored in one dense float32 BLAS product
    per chunk of examples and the near-minimal ones are rescored in float64
    (``decoders.screened_node_argmin``: the float64 decisions, twice as fast), which ``hierarchical.bench``
    measures as faster than the pruned search on both shipped trees. ``prune=True`` runs the paper's
    q_min / q_max tests first (exact for any cost; they remove most nodes when the cost is hierarchically
    reasonable), which pays off when N x L is large.
    """
    if metric.kind == "subset":
        if metric.name == "hamming" or metric.beta is None:
            chain = decoders.threshold_nodes(P, h)
            chain[:, h.root] = True  # p(root) = 1 up to rounding
            return chain
        return decoders.hf_optimal(P, h, metric.beta, count_root=metric.count_root)
    if metric.name == "accuracy":
        nodes = decoders.argmax_leaf(P)
    elif metric.kind == "leaf":
        nodes = decoders.leaf_cost_argmin(P, metric.cost)
    elif metric.name == "mistake_severity":
        nodes = decoders.deepest_above_half(P, h)
    elif prune:
        constants = _pruning_constants(metric, h)
        nodes = decoders.node_cost_argmin(P, metric.cost, h, prune=True, constants=constants)
    else:
        if "screening" not in metric.derived:
            metric.derived["screening"] = decoders.ScreeningCost.of(metric.cost)
        nodes = decoders.screened_node_argmin(P, metric.derived["screening"])
    return h.paths(nodes)


def _pruning_constants(metric: Metric, h: Hierarchy) -> decoders.PruningConstants:
    """Lemma 4.3 constants of the metric's cost, computed once per metric."""
    if "pruning" not in metric.derived:
        metric.derived["pruning"] = decoders.pruning_constants(metric.cost, h)
    return metric.derived["pruning"]


def decode(
    probs,
    hierarchy: Hierarchy,
    metric: "str | Metric" = "hF_1",
    rule: str = "optimal",
    *,
    logits: bool = False,
    temperature: float = 1.0,
    normalize: bool = False,
    count_root: bool = True,
) -> np.ndarray:
    """Decode leaf probabilities (B, L) into boolean node-indicator predictions (B, N).

    ``rule="optimal"`` gives the Bayes-optimal prediction for ``metric`` (accuracy, hamming, hF_<beta>,
    mistake_severity, wu_palmer, zhao, or a Metric from a cost matrix); any other rule is a heuristic
    from ``RULES`` (``metric`` is then unused). ``logits=True`` applies a softmax at ``temperature``.
    """
    h = Hierarchy.load(hierarchy)
    if logits:
        P = softmax(validate_logits(probs, h), temperature)
    else:
        P = validate_probs(probs, h, normalize=normalize)
    if rule == "optimal":
        return optimal_decode(P, h, as_metric(metric, h, count_root))
    table = {**HEURISTICS, **EXTRA_HEURISTICS}
    if rule not in table:
        raise ValueError(f"unknown rule {rule!r}; choose one of {list(RULES)}")
    return h.paths(table[rule](P, h))


def validate_logits(logits, h: Hierarchy) -> np.ndarray:
    Z = np.asarray(logits, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != h.n_leaves:
        raise ValueError(f"logits must be (examples, {h.n_leaves}) with one column per leaf, got {Z.shape}")
    bad = np.flatnonzero(~np.isfinite(Z).all(1))
    if len(bad):
        raise ValueError(f"row {bad[0]} of the logits has NaN or infinite values")
    return Z


def score(
    predictions,
    labels,
    hierarchy: Hierarchy,
    metric: "str | Metric",
    *,
    count_root: bool = True,
    reduce: bool = True,
):
    """The metric of node-indicator predictions (B, N) against true leaves (B,): the mean, or the
    per-example values with ``reduce=False``."""
    h = Hierarchy.load(hierarchy)
    values = as_metric(metric, h, count_root).score(predictions, labels)
    return float(values.mean()) if reduce else values
