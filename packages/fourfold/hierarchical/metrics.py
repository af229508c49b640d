"""The eight hierarchical metrics, generic cost matrices, expected scores under p, reasonableness, ECE.

A prediction is a boolean node indicator (B, N). Leaf and node metrics need a single root path (the
deepest predicted node is then the prediction); subset metrics (Hamming, hF_beta) take any node set.
The truth of an example is a leaf l, i.e. its root path Y(l) (|Y(l)| = d(l) + 1, root included).

Cost convention: node -> leaf costs are (N, L) with ``C[predicted node, true leaf]``, 0 = perfect;
leaf -> leaf costs are (L, L) with ``C[predicted leaf, true leaf]``.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from fourfold.hierarchical.tree import Hierarchy

BASE_METRICS = ("accuracy", "hamming", "hF_0.5", "hF_1", "hF_2", "mistake_severity", "wu_palmer", "zhao")
HF_PATTERN = re.compile(r"^hF_([0-9]*\.?[0-9]+)$")


class MetricError(ValueError):
    """An unknown metric name or a prediction the metric cannot score."""


# ------------------------------------------------------------------------------------- cost builders
def shortest_path_cost(h: Hierarchy) -> np.ndarray:
    """(N, L): d(n) + d(l) - 2 d(LCA(n, l)), the number of edges between n and l."""
    return (h.depth[:, None] + h.depth[None, : h.n_leaves] - 2 * h.lca_depth).astype(np.float64)


def wu_palmer_cost(h: Hierarchy) -> np.ndarray:
    """(N, L): 1 - 2 d(LCA) / (d(n) + d(l)), in [0, 1]."""
    denom = (h.depth[:, None] + h.depth[None, : h.n_leaves]).astype(np.float64)
    return 1.0 - 2.0 * h.lca_depth / denom


def zhao_cost(h: Hierarchy) -> np.ndarray:
    """(N, L): 1 - 2 IC(LCA) / (IC(n) + IC(l)) with IC(n) = log(L / |L(n)|), in [0, 1]."""
    denom = h.ic[:, None] + h.ic[None, : h.n_leaves]
    return 1.0 - 2.0 * h.ic[h.lca] / denom


def zero_one_cost(h: Hierarchy) -> np.ndarray:
    """(N, L): 0 iff the predicted node is the true leaf (accuracy as a cost)."""
    cost = np.ones((h.n_nodes, h.n_leaves))
    cost[np.arange(h.n_leaves), np.arange(h.n_leaves)] = 0.0
    return cost


def leaf_shortest_path_cost(h: Hierarchy) -> np.ndarray:
    """(L, L): tree distance between leaves (CRM's cost)."""
    return shortest_path_cost(h)[: h.n_leaves]


def lca_height_cost(h: Hierarchy) -> np.ndarray:
    """(L, L): height of LCA(l', l) above the true leaf, d(l) - d(LCA) (Bertinetto et al.'s severity)."""
    return (h.depth[None, : h.n_leaves] - h.lca_depth[: h.n_leaves]).astype(np.float64)


# ---------------------------------------------------------------------------------- reasonableness
def lca_is_root(h: Hierarchy) -> np.ndarray:
    """(N, L) bool: LCA(n, l) is the root."""
    return h.lca_depth == 0


def is_reasonable(cost: np.ndarray, h: Hierarchy, *, soft: bool = False, atol: float = 1e-12) -> bool:
    """Hierarchical reasonableness (Def. 4.2) of a node -> leaf cost.

    Strict: for every non-root n, C(n, l) < C(parent, l) on the leaves below n and > elsewhere.
    Soft (Prop. E.6): the '>' is required only where LCA(n, l) is not the root, and C(n, l) = C(parent, l)
    where it is.
    """
    nonroot = np.flatnonzero(h.parent >= 0)
    below = h.lca_depth[nonroot] == h.depth[nonroot, None]  # l in L(n)
    diff = cost[nonroot] - cost[h.parent[nonroot]]
    if np.any(diff[below] >= -atol):
        return False
    outside = ~below
    if soft:
        at_root = lca_is_root(h)[nonroot] & outside
        if np.any(np.abs(diff[at_root]) > atol):
            return False
        outside &= ~at_root
    return not np.any(diff[outside] <= atol)


def has_root_equality(cost: np.ndarray, h: Hierarchy, atol: float = 1e-12) -> bool:
    """C(n, l) = C(parent(n), l) whenever LCA(n, l) is the root: the condition soft pruning needs."""
    nonroot = np.flatnonzero(h.parent >= 0)
    diff = cost[nonroot] - cost[h.parent[nonroot]]
    return bool(np.all(np.abs(diff[lca_is_root(h)[nonroot]]) <= atol))


# --------------------------------------------------------------------------------------- metrics
@dataclass
class Metric:
    """One metric on one hierarchy.

    kind: 'leaf' (a leaf must be predicted; ``cost`` is (L, L) on leaves) | 'node' (one root path;
    ``cost`` is (N, L)) | 'subset' (any node set; Hamming or hF_beta).
    """

    name: str
    kind: str
    higher_is_better: bool
    hierarchy: Hierarchy = field(repr=False)
    cost: np.ndarray | None = field(default=None, repr=False)
    beta: float | None = None
    count_root: bool = True
    gain: bool = False  # the per-example value is 1 - cost (accuracy): higher is better
    # Per-tree constants that decoders derive from ``cost`` once (pruning constants, reasonableness).
    derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- per example
    def score(self, predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-example metric (B,) of boolean node indicators (B, N) against true leaves (B,)."""
        h = self.hierarchy
        pred = _check_predictions(predictions, h)
        labels = _check_labels(labels, h, len(pred))
        if self.kind == "subset":
            truth = h.incidence[labels].toarray().astype(bool)
            return self._subset_values(pred, truth)
        nodes = single_nodes(pred, h, self.name)
        if self.kind == "leaf":
            if self.name == "accuracy":
                return (nodes == labels).astype(np.float64)
            if np.any(nodes >= h.n_leaves):
                bad = int(np.flatnonzero(nodes >= h.n_leaves)[0])
                raise MetricError(
                    f"{self.name} scores leaves, but example {bad} predicts internal node {nodes[bad]}"
                )
        value = self.cost[nodes, labels]
        return 1.0 - value if self.gain else value

    def _subset_values(self, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
        h = self.hierarchy
        if not self.count_root:
            keep = np.arange(h.n_nodes) != h.root
            pred, truth = pred[:, keep], truth[:, keep]
        inter = (pred & truth).sum(1).astype(np.float64)
        n_pred, n_true = pred.sum(1), truth.sum(1)
        if self.name == "hamming":
            return (n_pred + n_true - 2 * inter) / pred.shape[1]
        b2 = self.beta**2
        denom = b2 * n_true + n_pred
        return np.divide((1 + b2) * inter, denom, out=np.zeros_like(inter), where=denom > 0)

    # -- expectation under p
    def expected(self, predictions: np.ndarray, leaf_probs: np.ndarray) -> np.ndarray:
        """Per-example expected metric sum_l p(l) M(prediction, Y(l)); (B, N), (B, L) -> (B,)."""
        h = self.hierarchy
        pred = _check_predictions(predictions, h)
        p = np.asarray(leaf_probs, dtype=np.float64)
        if self.kind == "subset":
            return (self.subset_matrix(pred) * p).sum(1)
        nodes = single_nodes(pred, h, self.name)
        if self.name == "accuracy":
            return np.where(nodes < h.n_leaves, p[np.arange(len(p)), nodes.clip(max=h.n_leaves - 1)], 0.0)
        values = (self.cost[nodes] * p).sum(1)
        return 1.0 - values if self.gain else values

    def subset_matrix(self, pred: np.ndarray) -> np.ndarray:
        """(B, L): the metric of each prediction against every possible true leaf (subset metrics)."""
        h = self.hierarchy
        E = h.incidence
        if not self.count_root:
            pred = pred.copy()
            pred[:, h.root] = False
        inter = np.asarray(E @ pred.T.astype(np.float64)).T  # (B, L)
        n_true = h.depth[: h.n_leaves] + (1 if self.count_root else 0)
        n_pred = pred.sum(1, keepdims=True)
        if self.name == "hamming":
            n = h.n_nodes if self.count_root else h.n_nodes - 1
            return (n_pred + n_true[None] - 2 * inter) / n
        b2 = self.beta**2
        denom = b2 * n_true[None] + n_pred
        return np.divide((1 + b2) * inter, denom, out=np.zeros_like(inter), where=denom > 0)

    def expected_node_costs(self, leaf_probs: np.ndarray) -> np.ndarray:
        """(B, N) (node metrics) or (B, L) (leaf metrics): expected cost of predicting each candidate."""
        return np.asarray(leaf_probs, dtype=np.float64) @ self.cost.T


def _check_predictions(predictions: np.ndarray, h: Hierarchy) -> np.ndarray:
    pred = np.asarray(predictions)
    if pred.ndim != 2 or pred.shape[1] != h.n_nodes:
        raise MetricError(f"predictions must be a (B, {h.n_nodes}) node indicator, got shape {pred.shape}")
    return pred.astype(bool)


def _check_labels(labels: np.ndarray, h: Hierarchy, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise MetricError(f"labels must be {n} integer leaf indices, got shape {labels.shape} {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= h.n_leaves))
    if len(bad):
        raise MetricError(
            f"label {labels[bad[0]]} of example {bad[0]} is not a leaf index 0..{h.n_leaves - 1}"
        )
    return labels.astype(np.int64)


def single_nodes(pred: np.ndarray, h: Hierarchy, metric_name: str = "this metric") -> np.ndarray:
    """The deepest node of each prediction; raises unless each prediction is exactly one root path."""
    depth = np.where(pred, h.depth[None], -1)
    nodes = depth.argmax(1)
    expected = h.path_matrix[nodes].toarray().astype(bool)
    bad = np.flatnonzero(np.any(expected != pred, axis=1))
    if len(bad):
        raise MetricError(
            f"{metric_name} scores a single node (its root path), but prediction {bad[0]} is "
            f"a node set that is not one root path; decode with a node or leaf rule"
        )
    return nodes


def parse_metric_name(name: str) -> tuple[str, float | None]:
    """('hF', beta) for 'hF_<beta>', else (name, None) for a known name; raises for anything else."""
    match = HF_PATTERN.match(str(name))
    if match:
        beta = float(match.group(1))
        if beta <= 0:
            raise MetricError(f"hF_beta needs beta > 0, got {name!r}")
        return "hF", beta
    if name in ("accuracy", "hamming", "mistake_severity", "wu_palmer", "zhao"):
        return str(name), None
    raise MetricError(
        f"unknown metric {name!r}; choose one of accuracy, hamming, hF_<beta> (e.g. hF_1, "
        f"hF_0.5), mistake_severity, wu_palmer, zhao"
    )


def get_metric(name: str, h: Hierarchy, *, count_root: bool = True) -> Metric:
    """The metric called ``name`` on hierarchy ``h`` (cost matrices are built vectorised)."""
    base, beta = parse_metric_name(name)
    if base == "hF":
        return Metric(name, "subset", True, h, beta=beta, count_root=count_root)
    if base == "hamming":
        return Metric(name, "subset", False, h, count_root=count_root)
    if base == "accuracy":
        return Metric(name, "leaf", True, h, cost=zero_one_cost(h), gain=True)
    builders = {"mistake_severity": shortest_path_cost, "wu_palmer": wu_palmer_cost, "zhao": zhao_cost}
    return Metric(name, "node", False, h, cost=builders[base](h))


def node_cost_metric(cost: np.ndarray, h: Hierarchy, name: str = "node_cost") -> Metric:
    """A generic node -> leaf cost (N, L), lower is better."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.shape != (h.n_nodes, h.n_leaves):
        raise MetricError(
            f"a node -> leaf cost must be ({h.n_nodes}, {h.n_leaves}) [node, leaf], got {cost.shape}"
        )
    if not np.all(np.isfinite(cost)):
        raise MetricError("the cost matrix has NaN or infinite entries")
    return Metric(name, "node", False, h, cost=cost)


def leaf_cost_metric(cost: np.ndarray, h: Hierarchy, name: str = "leaf_cost") -> Metric:
    """A generic leaf -> leaf cost (L, L) [predicted leaf, true leaf], lower is better."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.shape != (h.n_leaves, h.n_leaves):
        raise MetricError(f"a leaf -> leaf cost must be ({h.n_leaves}, {h.n_leaves}), got {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise MetricError("the cost matrix has NaN or infinite entries")
    return Metric(name, "leaf", False, h, cost=cost)


def all_metrics(h: Hierarchy, names=BASE_METRICS, *, count_root: bool = True) -> dict[str, Metric]:
    return {name: get_metric(name, h, count_root=count_root) for name in names}


# ------------------------------------------------------------------------------------- calibration
def expected_calibration_error(leaf_probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top leaf: sum over equal-width confidence bins of |accuracy - confidence| x bin weight."""
    p = np.asarray(leaf_probs, dtype=np.float64)
    conf, pred = p.max(1), p.argmax(1)
    correct = (pred == np.asarray(labels)).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total)
