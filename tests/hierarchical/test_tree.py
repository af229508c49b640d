"""Hierarchy: construction, validation errors, derived arrays, and the shipped trees (brief §6)."""

import json

import networkx as nx
import numpy as np
import pytest

from fourfold.hierarchical.tree import Hierarchy, TreeError, random_tree

from .toy import CHILDREN, toy


def test_toy_arrays_by_hand():
    h = toy()
    assert (h.n_nodes, h.n_leaves, h.root) == (9, 5, 8)
    assert h.depth.tolist() == [2, 2, 2, 3, 3, 1, 2, 1, 0]
    assert h.max_leaf_depth.tolist() == [2, 2, 2, 3, 3, 2, 3, 3, 3]
    assert h.n_leaves_below.tolist() == [1, 1, 1, 1, 1, 2, 2, 3, 5]
    assert h.depth1_ancestor.tolist() == [5, 5, 7, 7, 7, 5, 7, 7, 8]
    assert h.parent.tolist() == [5, 5, 7, 6, 6, 8, 7, 8, -1]
    E = h.incidence.toarray()
    assert E.shape == (5, 9)
    assert sorted(np.flatnonzero(E[3]).tolist()) == [3, 6, 7, 8]  # c1 -> C -> B -> root
    np.testing.assert_allclose(h.ic, np.log(5 / h.n_leaves_below))
    assert h.ic[h.root] == 0


def test_lca_matches_networkx_on_random_trees():
    rng = np.random.default_rng(1)
    for _ in range(10):
        h = random_tree(int(rng.integers(6, 30)), rng)
        g = h.to_networkx()
        for n in range(h.n_nodes):
            for l in range(h.n_leaves):
                lca = nx.lowest_common_ancestor(g, n, l)
                assert h.lca[n, l] == lca and h.lca_depth[n, l] == h.depth[lca]


def test_marginals_sum_leaves_and_root_is_one():
    h = toy()
    P = np.random.default_rng(0).dirichlet(np.ones(5), size=4)
    pn = h.node_probs(P)
    np.testing.assert_allclose(pn[:, h.root], 1.0)
    np.testing.assert_allclose(pn[:, 6], P[:, 3] + P[:, 4])
    np.testing.assert_allclose(pn[:, :5], P)


def test_builders_agree(tmp_path):
    g = nx.DiGraph([(p, c) for p, cs in CHILDREN.items() for c in cs])
    from_nx = Hierarchy.from_networkx(g)
    path = tmp_path / "tree.json"
    path.write_text(json.dumps({"children": {str(k): v for k, v in CHILDREN.items()}, "root": 8}))
    from_json = Hierarchy.from_json(path)
    for h in (from_nx, from_json):
        assert h.children == toy().children and h.root == 8


def test_string_labels_are_renumbered_leaves_first():
    h = Hierarchy.from_children({"animal": ["dog", "bird"], "bird": ["owl", "tit"]})
    assert h.n_leaves == 3 and h.names[:3] == ["dog", "owl", "tit"]
    assert h.names[h.root] == "animal"


@pytest.mark.parametrize(
    ("children", "message"),
    [
        ({4: [0, 1], 3: [1, 2]}, "node 1 has two parents"),
        ({3: [0, 1], 4: [2]}, "exactly one root"),
        ({0: [1, 2], 2: [3]}, "node 3 is a leaf but has an index"),
    ],
)
def test_invalid_trees_name_the_node(children, message):
    with pytest.raises(TreeError, match=message):
        Hierarchy.from_children(children)


def test_cycle_and_dag_rejected():
    with pytest.raises(TreeError, match="not reachable|two parents|root"):
        Hierarchy.from_children({"r": ["a", "b"], "x": ["y"], "y": ["x"]})
    dag = nx.DiGraph([("r", "a"), ("r", "b"), ("a", "c"), ("b", "c")])
    with pytest.raises(TreeError, match="'c' has 2 parents"):
        Hierarchy.from_networkx(dag)


def test_json_metadata_is_checked(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"children": {"8": [5, 7], "5": [0, 1], "7": [2, 6], "6": [3, 4]}, "root": 7}))
    with pytest.raises(TreeError, match="'root' says 7"):
        Hierarchy.from_json(path)


def test_shipped_tiered_imagenet_matches_brief():
    h = Hierarchy.shipped("tieredimagenet_h")
    assert (h.n_nodes, h.n_leaves, h.root) == (843, 608, 719)
    assert len(h.children[h.root]) == 2
    assert min(len(c) for c in h.children if c) >= 2  # no single child
    depths = dict(zip(*np.unique(h.depth[:608], return_counts=True)))
    assert depths == {3: 11, 4: 10, 5: 30, 6: 73, 7: 85, 8: 174, 9: 108, 10: 80, 11: 35, 12: 2}


def test_shipped_inat19_matches_brief():
    h = Hierarchy.shipped("inat19")
    assert (h.n_nodes, h.n_leaves, h.root) == (1190, 1010, 1046)
    assert set(h.depth[:1010].tolist()) == {7}
    assert sum(len(c) == 1 for c in h.children) == 77
    assert len(h.children[h.root]) == 3


def test_random_trees_are_seeded_and_valid():
    a = random_tree(12, np.random.default_rng(3), balanced=True)
    b = random_tree(12, np.random.default_rng(3), balanced=True)
    assert a.children == b.children
    assert len(set(a.depth[: a.n_leaves].tolist())) == 1
