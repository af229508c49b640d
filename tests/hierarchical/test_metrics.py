"""Metrics against hand-computed values on the toy tree, expectations, reasonableness, ECE, speed."""

import time

import numpy as np
import pytest

from fourfold.hierarchical.metrics import (
    BASE_METRICS,
    MetricError,
    all_metrics,
    expected_calibration_error,
    get_metric,
    has_root_equality,
    is_reasonable,
    node_cost_metric,
)
from fourfold.hierarchical.tree import Hierarchy, random_tree

from .toy import toy

LN = np.log


def paths(h, nodes):
    return h.paths(np.array(nodes))


def test_node_metrics_by_hand():
    h = toy()
    pred = paths(h, [5, 0, 6, 3])  # A, a1, C, c1
    labels = np.array([3, 1, 4, 3])  # c1, a2, c2, c1
    ms = get_metric("mistake_severity", h).score(pred, labels)
    assert ms.tolist() == [4, 2, 1, 0]
    wp = get_metric("wu_palmer", h).score(pred, labels)
    np.testing.assert_allclose(wp, [1.0, 1 - 2 * 1 / 4, 1 - 2 * 2 / 5, 0.0])
    zh = get_metric("zhao", h).score(pred, labels)
    np.testing.assert_allclose(
        zh, [1.0, 1 - 2 * LN(2.5) / (2 * LN(5)), 1 - 2 * LN(2.5) / (LN(2.5) + LN(5)), 0.0], atol=1e-12
    )
    acc = get_metric("accuracy", h).score(pred, labels)
    assert acc.tolist() == [0, 0, 0, 1]


def test_subset_metrics_by_hand():
    h = toy()
    pred = np.zeros((2, 9), dtype=bool)
    pred[0, [8, 5]] = True  # root, A
    pred[1, [8, 5, 0, 7]] = True  # two branches: root, A, a1, B
    labels = np.array([1, 1])  # a2: path {8, 5, 1}
    hf1 = get_metric("hF_1", h).score(pred, labels)
    np.testing.assert_allclose(hf1, [2 * 2 / (3 + 2), 2 * 2 / (3 + 4)])
    np.testing.assert_allclose(get_metric("hF_2", h).score(pred, labels), [5 * 2 / (4 * 3 + 2), 10 / 16])
    np.testing.assert_allclose(get_metric("hF_0.5", h).score(pred, labels)[0], 1.25 * 2 / (0.25 * 3 + 2))
    np.testing.assert_allclose(get_metric("hamming", h).score(pred, labels), [1 / 9, 3 / 9])
    no_root = get_metric("hF_1", h, count_root=False).score(pred, labels)
    np.testing.assert_allclose(no_root, [2 * 1 / (2 + 1), 2 * 1 / (2 + 3)])


def test_expected_equals_weighted_scores_over_all_labels():
    rng = np.random.default_rng(0)
    h = random_tree(15, rng)
    P = rng.dirichlet(np.ones(h.n_leaves), size=6)
    nodes = rng.integers(0, h.n_nodes, size=6)
    subset = rng.random((6, h.n_nodes)) < 0.4
    subset[:, 0] = True
    for name in BASE_METRICS:
        m = get_metric(name, h)
        pred = subset if m.kind == "subset" else h.paths(nodes)
        by_label = np.stack([m.score(pred, np.full(6, l)) for l in range(h.n_leaves)], axis=1)
        np.testing.assert_allclose(m.expected(pred, P), (by_label * P).sum(1), atol=1e-12, err_msg=name)


def test_wu_palmer_and_zhao_in_unit_interval_and_zero_on_truth():
    for name in ("tieredimagenet_h", "inat19"):
        h = Hierarchy.shipped(name)
        for metric in ("wu_palmer", "zhao"):
            cost = get_metric(metric, h).cost
            assert cost.min() >= -1e-12 and cost.max() <= 1 + 1e-12
            np.testing.assert_allclose(cost[np.arange(h.n_leaves), np.arange(h.n_leaves)], 0, atol=1e-12)


def test_reasonableness_matches_brief():
    tiered, inat = Hierarchy.shipped("tieredimagenet_h"), Hierarchy.shipped("inat19")
    ms = get_metric("mistake_severity", tiered).cost
    assert is_reasonable(ms, tiered)
    for name in ("wu_palmer", "zhao"):
        cost = get_metric(name, tiered).cost
        assert not is_reasonable(cost, tiered) and is_reasonable(cost, tiered, soft=True)
        assert has_root_equality(cost, tiered)
    assert is_reasonable(get_metric("wu_palmer", inat).cost, inat, soft=True)
    assert not is_reasonable(get_metric("zhao", inat).cost, inat, soft=True)  # single-child chains


def test_building_every_metric_for_tiered_is_fast():
    h = Hierarchy.shipped("tieredimagenet_h")
    start = time.perf_counter()
    all_metrics(h)
    assert time.perf_counter() - start < 1.0


def test_ece_by_hand():
    P = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bin of 0.9: accuracy 0.5, confidence 0.9; bin of 0.6: accuracy 1, confidence 0.6.
    assert expected_calibration_error(P, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_bad_metric_inputs():
    h = toy()
    with pytest.raises(MetricError, match="unknown metric 'f1'"):
        get_metric("f1", h)
    two_branches = np.zeros((1, 9), dtype=bool)
    two_branches[0, [8, 5, 7]] = True
    with pytest.raises(MetricError, match="prediction 0 is a node set"):
        get_metric("wu_palmer", h).score(two_branches, np.array([0]))
    with pytest.raises(MetricError, match="not a leaf index"):
        get_metric("hF_1", h).score(two_branches, np.array([7]))
    with pytest.raises(MetricError, match=r"\(9, 5\)"):
        node_cost_metric(np.zeros((5, 9)), h)
