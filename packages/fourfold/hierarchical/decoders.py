"""Bayes-optimal decoders (one per metric family), vectorised over a batch, and brute-force references.

Every decoder takes leaf probabilities P (B, L) that are already validated and returns either node
indices (B,) (leaf and node candidates) or a boolean node indicator (B, N) (subset candidates).
Ties are broken deterministically: the lowest expected cost first, then the lowest node index.
"""

from dataclasses import dataclass

import numpy as np

from fourfold.hierarchical.metrics import Metric, has_root_equality
from fourfold.hierarchical.tree import Hierarchy


# --------------------------------------------------------------------------------------------- leaves
def argmax_leaf(P: np.ndarray) -> np.ndarray:
    """The most probable leaf (optimal for accuracy)."""
    return np.asarray(P).argmax(1)


def leaf_cost_argmin(P: np.ndarray, leaf_cost: np.ndarray) -> np.ndarray:
    """argmin over predicted leaves of sum_l p(l) C[pred, l], with C of shape (L, L)."""
    return (np.asarray(P, dtype=np.float64) @ leaf_cost.T).argmin(1)


# ---------------------------------------------------------------------------------- nodes, pruned
@dataclass(frozen=True)
class PruningConstants:
    """Lemma 4.3 constants per node (root entries unused).

    For non-root n, gains g(l) = C(parent, l) - C(n, l) on l in L(n) have max ``gain_max`` (M_n) and
    min ``gain_min`` (m_n); losses h(l) = C(n, l) - C(parent, l) on the other leaves (soft: only those
    below a(n)) have max ``loss_max`` and min ``loss_min`` (0 when there is no such leaf).
    """

    gain_max: np.ndarray
    gain_min: np.ndarray
    loss_max: np.ndarray
    loss_min: np.ndarray
    soft: bool

    @property
    def q_min(self) -> np.ndarray:
        """Drop n when p(n) < q_min s(n); -inf (never) where the denominator is not positive."""
        den = self.loss_min + self.gain_max
        return np.where(den > 0, self.loss_min / np.where(den > 0, den, 1.0), -np.inf)

    @property
    def q_max(self) -> np.ndarray:
        """Drop parent(n) when p(n) > q_max s(n); +inf (never) where the denominator is not positive."""
        den = self.loss_max + self.gain_min
        return np.where(den > 0, self.loss_max / np.where(den > 0, den, 1.0), np.inf)


def pruning_constants(cost: np.ndarray, h: Hierarchy, soft: bool | None = None) -> PruningConstants:
    """Vectorised Lemma 4.3 constants for a node -> leaf cost (N, L).

    ``soft=None`` picks the soft form when the cost is equal for n and its parent wherever LCA(n, l)
    is the root (Wu-Palmer, Zhao), else the strict form (valid for any cost). Accumulators start at
    -inf (max) and +inf (min): the authors' code started them at the largest float and 0, which made
    every bound inert.
    """
    if soft is None:
        soft = has_root_equality(cost, h)
    n = h.n_nodes
    nonroot = np.flatnonzero(h.parent >= 0)
    diff = cost[h.parent[nonroot]] - cost[nonroot]  # gain of n over its parent, per true leaf
    below = h.lca_depth[nonroot] == h.depth[nonroot, None]
    if soft:
        # Leaves below a(n) but not below n: exactly those whose LCA with n is not the root.
        loss_set = (h.lca_depth[nonroot] >= 1) & ~below
    else:
        loss_set = ~below
    out = {k: np.zeros(n) for k in ("gain_max", "gain_min", "loss_max", "loss_min")}
    out["gain_max"][nonroot] = np.where(below, diff, -np.inf).max(1)
    out["gain_min"][nonroot] = np.where(below, diff, np.inf).min(1)
    loss_max = np.where(loss_set, -diff, -np.inf).max(1)
    loss_min = np.where(loss_set, -diff, np.inf).min(1)
    empty = ~loss_set.any(1)
    out["loss_max"][nonroot] = np.where(empty, 0.0, loss_max)
    out["loss_min"][nonroot] = np.where(empty, 0.0, loss_min)
    return PruningConstants(**out, soft=bool(soft))


def prune_candidates(P: np.ndarray, h: Hierarchy, constants: PruningConstants) -> np.ndarray:
    """(B, N) bool: nodes that survive Thm 4.4 (soft: Prop. E.7). Every removal is strict, so the
    optimum always survives."""
    pn = h.node_probs(P)
    s = pn[:, h.depth1_ancestor] if constants.soft else np.ones_like(pn)
    nonroot = h.parent >= 0
    worse_than_parent = (pn < constants.q_min[None] * s) & nonroot[None]
    beats_parent = (pn > constants.q_max[None] * s) & nonroot[None]
    parent_dropped = np.asarray(h.child_to_parent.T @ beats_parent.T.astype(np.float64)).T > 0
    return ~worse_than_parent & ~parent_dropped


def node_cost_argmin(
    P: np.ndarray,
    cost: np.ndarray,
    h: Hierarchy,
    *,
    prune: bool = True,
    constants: PruningConstants | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """argmin over nodes n of sum_l p(l) C[n, l]; with ``prune`` only the surviving candidates are
    scored (O(N + |cand| L) per example instead of O(N L))."""
    P = np.asarray(P, dtype=np.float64)
    if not prune:
        return dense_node_argmin(P, cost)
    constants = constants or pruning_constants(cost, h)
    out = np.empty(len(P), dtype=np.int64)
    for start in range(0, len(P), chunk):
        block = P[start : start + chunk]
        rows, nodes = np.nonzero(prune_candidates(block, h, constants))
        # Score candidates node by node: one gathered mat-vec per candidate node.
        by_node = np.argsort(nodes, kind="stable")
        rows, nodes = rows[by_node], nodes[by_node]
        starts = np.r_[0, np.flatnonzero(np.diff(nodes)) + 1]
        ends = np.r_[starts[1:], len(nodes)]
        values = np.empty(len(nodes))
        for s, e in zip(starts, ends):
            values[s:e] = block[rows[s:e]] @ cost[nodes[s]]
        # Order each example's candidates by (value, node) and take the first.
        order = np.lexsort((nodes, values, rows))
        first = np.ones(len(order), dtype=bool)
        first[1:] = rows[order][1:] != rows[order][:-1]
        out[start + rows[order][first]] = nodes[order][first]
    return out


def brute_node_argmin(P: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Reference: score every node of every example, one example at a time (enumeration)."""
    P = np.asarray(P, dtype=np.float64)
    return np.array([int(np.argmin(cost @ p)) for p in P], dtype=np.int64)


def dense_node_argmin(P: np.ndarray, cost: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Every node scored in one dense product (B, L) x (L, N) per chunk of examples (bounded memory)."""
    P = np.asarray(P, dtype=np.float64)
    cost_t = np.ascontiguousarray(cost.T)
    return np.concatenate(
        [(P[s : s + chunk] @ cost_t).argmin(1) for s in range(0, len(P), chunk)] or [np.zeros(0, np.int64)]
    )


@dataclass(frozen=True)
class ScreeningCost:
    """A node -> leaf cost (N, L) prepared for ``screened_node_argmin``: the lowest-index node of each
    group of identical cost rows (the others always tie with it and lose the tie: single-child chains),
    their rows in float32, transposed, for the screening product and in float64 for the exact rescoring,
    and the largest magnitude of the cost."""

    nodes: np.ndarray
    cost: np.ndarray
    cost_t32: np.ndarray
    max_abs: float

    @classmethod
    def of(cls, cost: np.ndarray) -> "ScreeningCost":
        cost = np.asarray(cost, dtype=np.float64)
        _, first = np.unique(cost, axis=0, return_index=True)
        nodes = np.sort(first)
        kept = np.ascontiguousarray(cost[nodes])
        return cls(nodes, kept, np.ascontiguousarray(kept.T, dtype=np.float32), float(np.abs(cost).max()))


def screened_node_argmin(P: np.ndarray, prepared: ScreeningCost, chunk: int = 2048) -> np.ndarray:
    """The decisions of ``dense_node_argmin`` (lowest expected cost, then lowest node index; where float64
    rounding splits nodes of identical cost rows, the lowest index, as that rule says), faster: every node
    is scored in float32, and only the nodes that float32 cannot tell from the minimum are rescored in
    float64.

    Why it is exact: probabilities below 2^-60 are set to 0 first (float32 subnormals would slow the
    product tenfold), which moves a score by at most L 2^-60 max|C|. A float32 dot product of L terms,
    inputs rounded from float64, is then off by at most (L + 3) u sum_l |p(l)| max|C| (u = 2^-24;
    Higham's bound for any summation order, plus the two input roundings), and by at most L 2^-149 max|C|
    more where a product underflows. Every node whose float32 score lies within twice the sum of these
    bounds of the row's float32 minimum is rescored in float64; any other node's exact score is above the
    true minimum, so it cannot be the argmin.
    """
    P = np.asarray(P, dtype=np.float64)
    n_leaves = P.shape[1]
    slack = 1.01 * (n_leaves + 3) * 2.0**-24 * prepared.max_abs
    absolute = 1.01 * n_leaves * (2.0**-60 + 2.0**-149) * prepared.max_abs
    out = np.empty(len(P), dtype=np.int64)
    for start in range(0, len(P), chunk):
        block = P[start : start + chunk]
        block32 = block.astype(np.float32)
        block32[np.abs(block32) < 2.0**-60] = 0.0
        scores = block32 @ prepared.cost_t32
        best = scores.argmin(1)
        low = scores[np.arange(len(block)), best].astype(np.float64)
        bound = slack * np.abs(block32).sum(1, dtype=np.float64) * (1 + 2.0**-23) + absolute
        close = scores <= (low + 2 * bound)[:, None]
        out[start : start + len(block)] = best
        rows = np.flatnonzero(close.sum(1) > 1)
        if len(rows):
            out[start + rows] = _rescore(block[rows], close[rows], prepared.cost)
    return prepared.nodes[out]


def _rescore(P: np.ndarray, candidates: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Per row of P, the candidate node (True in ``candidates``) of lowest float64 expected cost; equal
    costs go to the lowest node index."""
    rows, nodes = np.nonzero(candidates)
    values = np.einsum("ij,ij->i", P[rows], cost[nodes])
    order = np.lexsort((nodes, values, rows))
    first = np.ones(len(order), dtype=bool)
    first[1:] = rows[order][1:] != rows[order][:-1]
    return nodes[order][first]


# ------------------------------------------------------------------------------- threshold rule
def threshold_nodes(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """(B, N) bool: nodes with p(n) > 1/2, a chain from the root (Hamming's optimum over all subsets)."""
    return h.node_probs(P) > 0.5


def deepest_above_half(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """The deepest node with p(n) > 1/2 (mistake severity's optimum)."""
    chain = threshold_nodes(P, h)
    chain[:, h.root] = True  # p(root) = 1 up to rounding
    return np.where(chain, h.depth[None], -1).argmax(1)


# ------------------------------------------------------------------------------------- hF_beta
def hf_delta(P: np.ndarray, h: Hierarchy, k: np.ndarray, beta: float, count_root: bool = True) -> np.ndarray:
    """Delta_k(n) = sum over l in L(n) of (1 + b^2) p(l) / (k + b^2 |Y(l)|), with k per example (B,)."""
    b2 = beta**2
    y_size = h.depth[: h.n_leaves] + (1 if count_root else 0)
    w = (1 + b2) * P / (np.asarray(k, dtype=np.float64)[:, None] + b2 * y_size[None])
    delta = np.asarray(h.incidence_t @ w.T).T
    if not count_root:
        delta[:, h.root] = -np.inf  # the root is not a scored node: never spend k on it
    return delta


def hf_bound(P: np.ndarray, h: Hierarchy, beta: float, count_root: bool = True) -> np.ndarray:
    """K per example, the largest set size tried.

    With the root counted: the number of nodes with p(n) >= q* = 1 / (1 + b^2 (D_max + 1)), the global
    bound (the authors' per-node bound misses the optimum on some unbalanced trees). Without the root
    that bound fails (seen on shallow trees), so every size up to the number of nodes with p(n) > 0 is
    tried: exact by construction, and slower.
    """
    pn = h.node_probs(P)
    pn[:, h.root] = 1.0 if count_root else 0.0
    if not count_root:
        return np.maximum((pn > 0).sum(1), 1)
    q_star = 1.0 / (1.0 + beta**2 * (h.max_depth + 1))
    return np.maximum((pn >= q_star).sum(1), 1)


def hf_optimal(
    P: np.ndarray, h: Hierarchy, beta: float, *, count_root: bool = True, max_k: np.ndarray | None = None
) -> np.ndarray:
    """Exact expected-hF_beta subset: for each k <= K the k nodes with the largest Delta_k, best k wins.

    Returns a (B, N) indicator, ancestor-closed (ties go to the shallower node). ``max_k`` overrides
    the global bound (e.g. N, for a reference that tries every size).
    """
    P = np.asarray(P, dtype=np.float64)
    B = len(P)
    K = hf_bound(P, h, beta, count_root) if max_k is None else np.broadcast_to(max_k, (B,)).copy()
    best_v = np.full(B, -np.inf)
    best_k = np.ones(B, dtype=np.int64)
    for k in range(1, int(K.max()) + 1):
        active = np.flatnonzero(K >= k)
        delta = hf_delta(P[active], h, np.full(len(active), k), beta, count_root)
        kth = -np.partition(-delta, k - 1, axis=1)[:, :k]
        value = kth.sum(1)
        better = value > best_v[active]
        best_v[active[better]] = value[better]
        best_k[active[better]] = k
    return _top_k_sets(P, h, best_k, beta, count_root)


def _top_k_sets(P, h: Hierarchy, k: np.ndarray, beta: float, count_root: bool) -> np.ndarray:
    delta = hf_delta(P, h, k, beta, count_root)
    by_depth = np.argsort(h.depth, kind="stable")
    # Stable sort of -Delta over columns ordered by depth: equal values keep the shallower node first.
    order = by_depth[np.argsort(-delta[:, by_depth], axis=1, kind="stable")]
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(h.n_nodes)[None].repeat(len(P), 0), axis=1)
    return ranks < k[:, None]


def brute_subset(P: np.ndarray, h: Hierarchy, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Reference: the best of all 2^N - 1 non-empty node subsets for each example (at most 16 nodes).

    Returns the best indicators (B, N) and their expected metric (B,).
    """
    n = h.n_nodes
    if n > 16:
        raise ValueError(f"exhaustive subset search is for trees of at most 16 nodes, this one has {n}")
    codes = np.arange(1, 2**n)
    subsets = ((codes[:, None] >> np.arange(n)[None]) & 1).astype(bool)
    values = np.asarray(P, dtype=np.float64) @ metric.subset_matrix(subsets).T  # (B, subsets)
    best = values.argmax(1) if metric.higher_is_better else values.argmin(1)
    return subsets[best], values[np.arange(len(values)), best]
