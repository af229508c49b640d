"""Public API: decode / score, and clear errors on bad input."""

import numpy as np
import pytest

from fourfold.hierarchical import RULES, Hierarchy, TreeError, decode, get_metric, score
from fourfold.hierarchical.inputs import ProbabilityError, load_matrix, softmax

from .toy import toy


def probs(n=4, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(5), size=n)


def test_decode_returns_node_indicators_and_score_agrees():
    h = toy()
    P = probs()
    labels = np.array([0, 1, 2, 3])
    for rule in RULES:
        pred = decode(P, h, "hF_1", rule=rule)
        assert pred.shape == (4, 9) and pred.dtype == bool and pred[:, h.root].all()
    pred = decode(P, h, "wu_palmer")
    per_example = score(pred, labels, h, "wu_palmer", reduce=False)
    assert score(pred, labels, h, "wu_palmer") == pytest.approx(per_example.mean())
    np.testing.assert_allclose(per_example, get_metric("wu_palmer", h).score(pred, labels))


def test_decode_accepts_logits_and_shipped_names():
    h = Hierarchy.shipped("inat19")
    Z = np.random.default_rng(0).normal(size=(3, h.n_leaves))
    a = decode(Z, "inat19", "mistake_severity", logits=True)
    b = decode(softmax(Z), h, "mistake_severity")
    np.testing.assert_array_equal(a, b)


def test_bad_probabilities_name_the_row():
    h = toy()
    P = probs()
    bad = P.copy()
    bad[2, 1] = -0.1
    with pytest.raises(ProbabilityError, match="row 2 has a negative probability"):
        decode(bad, h)
    bad = P.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ProbabilityError, match="row 3 has NaN"):
        decode(bad, h)
    bad = P.copy()
    bad[1] *= 2
    with pytest.raises(ProbabilityError, match=r"row 1 sums to 2.*normalize=True"):
        decode(bad, h)
    np.testing.assert_array_equal(decode(bad, h, normalize=True), decode(P, h))
    with pytest.raises(ProbabilityError, match="6 columns but the hierarchy has 5 leaves"):
        decode(np.full((2, 6), 1 / 6), h)


def test_unknown_metric_rule_and_non_tree():
    h = toy()
    with pytest.raises(ValueError, match="unknown metric 'hF1'"):
        decode(probs(), h, "hF1")
    with pytest.raises(ValueError, match="unknown rule 'greedy'"):
        decode(probs(), h, rule="greedy")
    with pytest.raises(TreeError, match="two parents"):
        Hierarchy.from_children({"r": ["a", "b"], "a": ["c"], "b": ["c", "d"]})


def test_load_matrix_formats(tmp_path):
    P = probs()
    np.save(tmp_path / "p.npy", P)
    np.savez(tmp_path / "p.npz", probs=P, labels=np.arange(4))
    np.savetxt(
        tmp_path / "p.csv", P, delimiter=",", header=",".join(f"leaf{i}" for i in range(5)), comments=""
    )
    for name in ("p.npy", "p.npz", "p.csv"):
        np.testing.assert_allclose(load_matrix(tmp_path / name), P)
    with pytest.raises(ValueError, match="unsupported format"):
        (tmp_path / "p.pkl").write_bytes(b"x")
        load_matrix(tmp_path / "p.pkl")
