"""The seven heuristics against plain per-example loops written from their definitions (brief §4)."""

import numpy as np

from fourfold.hierarchical import heuristics as H
from fourfold.hierarchical.tree import random_tree


def cases(seed, n=25):
    rng = np.random.default_rng(seed)
    for i in range(n):
        h = random_tree(int(rng.integers(6, 30)), rng, balanced=i % 2 == 0, single_child=i % 3 != 0)
        yield h, rng.dirichlet(np.full(h.n_leaves, rng.choice([0.2, 1.0])), size=15)


def walk(h, pn, step):
    """Follow ``step(node, sorted children, state)`` from the root until it returns None."""
    node, state = h.root, {"m": 0.0}
    while h.children[node]:
        kids = sorted(h.children[node], key=lambda c: (-pn[c], h.children[node].index(c)))
        nxt = step(node, kids, state)
        if nxt is None:
            break
        node = nxt
    return node


def test_top_down_and_plurality_match_loops():
    for h, P in cases(1):
        pn = h.node_probs(P)
        for i, p in enumerate(pn):
            assert H.top_down(P[i : i + 1], h)[0] == walk(h, p, lambda n, kids, s: kids[0])

            def plural(n, kids, s, p=p):
                if len(kids) == 1:
                    return kids[0]
                s["m"] = max(s["m"], p[kids[1]])
                return kids[0] if p[kids[0]] >= s["m"] else None

            assert H.plurality(P[i : i + 1], h)[0] == walk(h, p, plural)


def test_node_scores_match_loops():
    for h, P in cases(2):
        pn = h.node_probs(P)
        for i, p in enumerate(pn):
            above = [n for n in range(h.n_nodes) if p[n] >= 0.5]
            best = max(above, key=lambda n: (h.ic2[n], h.depth[n]))
            assert H.threshold_half(P[i : i + 1], h)[0] == best
            info = [p[n] * h.ic2[n] for n in range(h.n_nodes)]
            assert H.expected_information(P[i : i + 1], h)[0] == int(np.argmax(info))
            hie = [p[l] * p[h.parent[l]] for l in range(h.n_leaves)]
            assert H.hie(P[i : i + 1], h)[0] == int(np.argmax(hie))
            assert H.argmax_leaves(P[i : i + 1], h)[0] == int(np.argmax(P[i]))


def test_crm_matches_definition():
    for h, P in cases(3):
        for p in P:
            dist = [
                [h.depth[a] + h.depth[b] - 2 * h.lca_depth[a, b] for b in range(h.n_leaves)]
                for a in range(h.n_leaves)
            ]
            expected = int(np.argmax(p)) if p.max() >= 0.5 else int(np.argmin(np.array(dist) @ p))
            assert H.crm(p[None], h)[0] == expected
