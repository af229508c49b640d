"""The seven heuristic decoders of the paper's grid (§4), each returning one node per example.

All take validated leaf probabilities P (B, L) and a Hierarchy, and are vectorised over the batch.
``crm`` fixes the authors' shortcut bug (their test ran over all nodes, where p(root) = 1, so CRM always
returned the argmax leaf); ``crm_as_published`` keeps the bug for the sanity check.
"""

import numpy as np

from fourfold.hierarchical.metrics import leaf_shortest_path_cost
from fourfold.hierarchical.tree import Hierarchy


def argmax_leaves(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """The most probable leaf (the flat baseline)."""
    return np.asarray(P).argmax(1)


def _best_children(pn: np.ndarray, h: Hierarchy, current: np.ndarray):
    """Best and second-best child probability of each example's current node (-1 where absent)."""
    kids = h.children_table[current]  # (B, W), -1 padded
    probs = np.where(kids >= 0, np.take_along_axis(pn, kids.clip(min=0), axis=1), -1.0)
    order = np.argsort(-probs, axis=1, kind="stable")
    best = np.take_along_axis(kids, order[:, :1], axis=1)[:, 0]
    p1 = np.take_along_axis(probs, order[:, :1], axis=1)[:, 0]
    p2 = (
        np.take_along_axis(probs, order[:, 1:2], axis=1)[:, 0]
        if kids.shape[1] > 1
        else np.full(len(kids), -1.0)
    )
    return best, p1, p2, (kids >= 0).sum(1)


def top_down(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """From the root, follow the most probable child down to a leaf."""
    pn = h.node_probs(P)
    current = np.full(len(pn), h.root)
    for _ in range(h.max_depth):
        best, _, _, n_kids = _best_children(pn, h, current)
        current = np.where(n_kids > 0, best, current)
    return current


def plurality(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """Walk down while the best child's probability is at least m, the running max of the second-best
    child probabilities met so far (this node's included); a single child is always descended."""
    pn = h.node_probs(P)
    current = np.full(len(pn), h.root)
    running = np.zeros(len(pn))
    moving = np.ones(len(pn), dtype=bool)
    for _ in range(h.max_depth):
        best, p1, p2, n_kids = _best_children(pn, h, current)
        running = np.where(moving, np.maximum(running, p2), running)
        step = moving & (n_kids > 0) & ((n_kids == 1) | (p1 >= running))
        current = np.where(step, best, current)
        moving = step
    return current


def threshold_half(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """Among nodes with p(n) >= 1/2, the largest IC2; ties (single-child chains) go to the deepest."""
    pn = h.node_probs(P)
    ok = pn >= 0.5
    ok[:, h.root] = True
    ic = np.where(ok, h.ic2[None], -np.inf)
    top = ic == ic.max(1, keepdims=True)
    return np.where(top, h.depth[None], -1).argmax(1)


def expected_information(P: np.ndarray, h: Hierarchy, lam: float = 0.0) -> np.ndarray:
    """argmax over nodes of p(n) (IC2(n) + lambda) (Deng et al. 2012)."""
    return (h.node_probs(P) * (h.ic2[None] + lam)).argmax(1)


def information_threshold(P: np.ndarray, h: Hierarchy, tau: float = 0.0) -> np.ndarray:
    """argmax p(n) among nodes with IC2(n) >= tau (tau = 0 always gives the root: degenerate)."""
    pn = h.node_probs(P)
    return np.where(h.ic2[None] >= tau, pn, -np.inf).argmax(1)


def hie(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """argmax over leaves of p(l) p(parent(l)) (Jain et al. 2023, 'HiE-Self')."""
    pn = h.node_probs(P)
    leaves = h.leaves
    return (pn[:, leaves] * pn[:, h.parent[leaves]]).argmax(1)


def _crm(P: np.ndarray, h: Hierarchy, shortcut_max: np.ndarray) -> np.ndarray:
    P = np.asarray(P, dtype=np.float64)
    reranked = (P @ leaf_shortest_path_cost(h).T).argmin(1)
    return np.where(shortcut_max >= 0.5, P.argmax(1), reranked)


def crm(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """Expected leaf-to-leaf distance minimiser (Karthik et al. 2021); argmax leaf when the top leaf
    has p >= 1/2 (the fixed shortcut: it tests leaf probabilities)."""
    return _crm(P, h, np.asarray(P).max(1))


def crm_as_published(P: np.ndarray, h: Hierarchy) -> np.ndarray:
    """CRM with the authors' shortcut over all nodes: p(root) = 1, so it always returns argmax leaf."""
    return _crm(P, h, h.node_probs(P).max(1))


HEURISTICS = {
    "threshold_0.5": threshold_half,
    "crm": crm,
    "expected_information": expected_information,
    "hie": hie,
    "plurality": plurality,
    "top_down": top_down,
    "argmax_leaves": argmax_leaves,
}
EXTRA_HEURISTICS = {"crm_as_published": crm_as_published, "information_threshold": information_threshold}
