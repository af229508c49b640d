"""Every optimal decoder against exhaustive search on random small trees; heuristics never beat it."""

import numpy as np
import pytest

from fourfold.hierarchical import decoders as D
from fourfold.hierarchical.decision import optimal_decode
from fourfold.hierarchical.heuristics import HEURISTICS, argmax_leaves, crm, crm_as_published
from fourfold.hierarchical.metrics import BASE_METRICS, get_metric, lca_height_cost, leaf_shortest_path_cost
from fourfold.hierarchical.tree import Hierarchy, random_tree


def small_cases(seed, n_trees=60, max_nodes=14):
    """Random trees of at most ``max_nodes`` nodes (balanced and not, with and without single children)
    and Dirichlet probabilities of varied concentration."""
    rng = np.random.default_rng(seed)
    made = 0
    while made < n_trees:
        h = random_tree(int(rng.integers(5, 13)), rng, balanced=made % 2 == 0, single_child=made % 3 != 0)
        if h.n_nodes > max_nodes:
            continue
        made += 1
        P = rng.dirichlet(np.full(h.n_leaves, rng.choice([0.1, 0.5, 2.0])), size=12)
        yield h, P


def is_ancestor_closed(h, pred):
    return all(pred[h.parent[n]] for n in np.flatnonzero(pred) if n != h.root)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_hf_optimum_equals_exhaustive_subsets_and_is_ancestor_closed(beta):
    for h, P in small_cases(int(beta * 10)):
        metric = get_metric(f"hF_{beta:g}", h)
        pred = D.hf_optimal(P, h, beta)
        _, best = D.brute_subset(P, h, metric)
        np.testing.assert_allclose(metric.expected(pred, P), best, rtol=0, atol=1e-12)
        assert pred[:, h.root].all()
        assert all(is_ancestor_closed(h, row) for row in pred)


def test_hf_without_root_equals_exhaustive():
    for h, P in small_cases(7, n_trees=20):
        metric = get_metric("hF_1", h, count_root=False)
        pred = D.hf_optimal(P, h, 1.0, count_root=False)
        _, best = D.brute_subset(P, h, metric)
        np.testing.assert_allclose(metric.expected(pred, P), best, atol=1e-12)


def test_hamming_optimum_equals_exhaustive_subsets():
    for h, P in small_cases(3, n_trees=25):
        metric = get_metric("hamming", h)
        _, best = D.brute_subset(P, h, metric)
        np.testing.assert_allclose(metric.expected(optimal_decode(P, h, metric), P), best, atol=1e-12)


@pytest.mark.parametrize(("name", "seed"), [("mistake_severity", 21), ("wu_palmer", 22), ("zhao", 23)])
def test_node_argmin_pruned_equals_exhaustive(name, seed):
    for h, P in small_cases(seed):
        metric = get_metric(name, h)
        all_costs = P @ metric.cost.T
        for prune in (True, False):
            nodes = D.node_cost_argmin(P, metric.cost, h, prune=prune)
            np.testing.assert_allclose(all_costs[np.arange(len(P)), nodes], all_costs.min(1), atol=1e-12)
        np.testing.assert_array_equal(D.brute_node_argmin(P, metric.cost), all_costs.argmin(1))


def test_pruning_exact_for_arbitrary_costs_strict_and_soft():
    rng = np.random.default_rng(11)
    for h, P in small_cases(5, n_trees=30):
        cost = rng.random((h.n_nodes, h.n_leaves))
        all_costs = P @ cost.T
        constants = D.pruning_constants(cost, h)
        assert not constants.soft
        nodes = D.node_cost_argmin(P, cost, h, constants=constants)
        np.testing.assert_allclose(all_costs[np.arange(len(P)), nodes], all_costs.min(1), atol=1e-12)
        # Every candidate the tests remove is strictly worse than the best: the optimum survives.
        keep = D.prune_candidates(P, h, constants)
        assert np.all(np.where(keep, all_costs, np.inf).min(1) <= all_costs.min(1) + 1e-12)


def test_pruning_constants_are_not_inert_on_tiered():
    h = Hierarchy.shipped("tieredimagenet_h")
    constants = D.pruning_constants(get_metric("wu_palmer", h).cost, h)
    assert constants.soft
    nonroot, deep = h.parent >= 0, h.depth >= 2
    # The authors' accumulators gave q_min = 0 and q_max = 1 everywhere; soft depth-1 nodes have no
    # loss leaves, so their q_min = q_max = 0 (they beat the root whenever they carry mass).
    assert np.all(constants.q_min[deep] > 0) and np.all(constants.q_max[nonroot] < 1)
    assert np.all(constants.q_max[h.depth == 1] == 0)
    P = np.random.default_rng(0).dirichlet(np.full(h.n_leaves, 0.05), size=50)
    assert D.prune_candidates(P, h, constants).sum(1).mean() < 0.1 * h.n_nodes


def test_mistake_severity_optimum_is_threshold_rule():
    for h, P in small_cases(9):
        cost = get_metric("mistake_severity", h).cost
        all_costs = P @ cost.T
        nodes = D.deepest_above_half(P, h)
        np.testing.assert_allclose(all_costs[np.arange(len(P)), nodes], all_costs.min(1), atol=1e-12)
        chain = D.threshold_nodes(P, h)
        assert np.array_equal(h.paths(nodes), chain | h.paths(np.full(len(P), h.root)))


def test_leaf_cost_argmin_equals_exhaustive_and_crm():
    for h, P in small_cases(13, n_trees=20):
        for cost in (leaf_shortest_path_cost(h), lca_height_cost(h)):
            leaves = D.leaf_cost_argmin(P, cost)
            values = P @ cost.T
            np.testing.assert_allclose(values[np.arange(len(P)), leaves], values.min(1))
        # Fixed CRM equals the leaf argmin except where its shortcut fires (top leaf >= 1/2), and the
        # shortcut is safe there (Lemma: argmax leaf is optimal for a metric when max p >= 1/2).
        values = P @ leaf_shortest_path_cost(h).T
        chosen = crm(P, h)
        np.testing.assert_allclose(values[np.arange(len(P)), chosen], values.min(1), atol=1e-12)
        np.testing.assert_array_equal(crm_as_published(P, h), argmax_leaves(P, h))


def test_optimal_expected_metric_never_beaten_by_a_heuristic():
    for h, P in small_cases(17, n_trees=40):
        for name in BASE_METRICS:
            metric = get_metric(name, h)
            best = metric.expected(optimal_decode(P, h, metric), P)
            for rule, heuristic in HEURISTICS.items():
                value = metric.expected(h.paths(heuristic(P, h)), P)
                worse = value < best - 1e-12 if metric.higher_is_better else value > best + 1e-12
                assert np.all(worse | np.isclose(value, best, atol=1e-12)), (name, rule)


def test_decoders_run_on_shipped_trees_and_agree_with_dense():
    rng = np.random.default_rng(2)
    for tree in ("tieredimagenet_h", "inat19"):
        h = Hierarchy.shipped(tree)
        P = rng.dirichlet(np.full(h.n_leaves, 0.02), size=40)
        for name in ("wu_palmer", "zhao", "mistake_severity"):
            cost = get_metric(name, h).cost
            dense = P @ cost.T
            nodes = D.node_cost_argmin(P, cost, h)
            np.testing.assert_allclose(dense[np.arange(40), nodes], dense.min(1), atol=1e-12)
        for beta in (0.5, 1.0, 2.0):
            pred = D.hf_optimal(P, h, beta)
            assert all(is_ancestor_closed(h, row) for row in pred)
            # Trying every size k up to N never finds a better set than the global bound's K.
            wide = D.hf_optimal(P[:5], h, beta, max_k=60)
            metric = get_metric(f"hF_{beta:g}", h)
            assert np.all(metric.expected(pred[:5], P[:5]) >= metric.expected(wide, P[:5]) - 1e-12)


def screened(P, cost):
    return D.screened_node_argmin(P, D.ScreeningCost.of(cost))


def test_float32_screening_decides_as_float64_on_shipped_trees():
    from fourfold.hierarchical.bench import gaussian_probs

    for tree in ("tieredimagenet_h", "inat19"):
        h = Hierarchy.shipped(tree)
        P = gaussian_probs(h, 300)  # ambiguous posteriors, many probabilities far below float32's range
        for name in ("wu_palmer", "zhao"):
            cost = get_metric(name, h).cost
            values = P @ cost.T
            nodes = screened(P, cost)
            np.testing.assert_allclose(values[np.arange(len(P)), nodes], values.min(1), atol=1e-12)
            rounded = D.dense_node_argmin(P, cost)
            # the same node, or one whose cost row is identical (float64 rounding broke that tie)
            assert all(a == b or np.array_equal(cost[a], cost[b]) for a, b in zip(nodes, rounded))


def test_float32_screening_separates_costs_closer_than_float32_can():
    rng = np.random.default_rng(5)
    n_leaves, n_nodes = 300, 40
    cost = rng.uniform(0.5, 1.0, size=(n_nodes, n_leaves))
    P = rng.dirichlet(np.full(n_leaves, 0.3), size=200)
    # Node 7 is node 3 plus or minus 1e-11 on every leaf (both far below the others): float32 sees one
    # value, float64 tells them apart, and the sign flips from example to example.
    cost[3] = rng.uniform(0.0, 0.1, size=n_leaves)
    cost[7] = cost[3] + 1e-11 * rng.choice([-1.0, 1.0], size=n_leaves)
    cost[11] = cost[3]  # an exact copy of node 3: ties with it and loses on index
    exact = D.brute_node_argmin(P, cost)
    assert set(exact) == {3, 7}  # both win somewhere: the test covers both directions
    np.testing.assert_array_equal(screened(P, cost), exact)
    P[:, :50] = 1e-300  # probabilities that underflow to float32 subnormals are handled too
    np.testing.assert_array_equal(screened(P, cost), D.brute_node_argmin(P, cost))


def test_optimal_decode_of_node_metrics_matches_the_pruned_search():
    rng = np.random.default_rng(6)
    h = Hierarchy.shipped("inat19")
    P = rng.dirichlet(np.full(h.n_leaves, 0.05), size=64)
    for name in ("wu_palmer", "zhao"):
        metric = get_metric(name, h)
        values = P @ metric.cost.T
        for prune in (False, True):
            nodes = np.argmax(optimal_decode(P, h, metric, prune=prune) * h.depth[None], 1)
            np.testing.assert_allclose(values[np.arange(64), nodes], values.min(1), atol=1e-12)
