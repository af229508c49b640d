"""Regression checks on the AlexNet logits shipped in the package (and the same files read from a folder)."""

import gzip

import numpy as np
import pytest

from fourfold.hierarchical import Hierarchy
from fourfold.hierarchical import decoders as D
from fourfold.hierarchical import heuristics as H
from fourfold.hierarchical.data import ALEXNET_FILES, alexnet_logits
from fourfold.hierarchical.inputs import softmax
from fourfold.hierarchical.metrics import get_metric


@pytest.fixture(scope="module")
def alexnet():
    logits, labels = alexnet_logits()
    return Hierarchy.shipped("tieredimagenet_h"), logits, labels


def test_folder_copy_reads_the_same_arrays(alexnet, tmp_path):
    _, logits, labels = alexnet
    np.save(tmp_path / ALEXNET_FILES[0], logits)
    np.save(tmp_path / ALEXNET_FILES[1], labels)
    from_folder = alexnet_logits(tmp_path)
    np.testing.assert_array_equal(from_folder[0], logits)
    np.testing.assert_array_equal(from_folder[1], labels)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    with pytest.raises(FileNotFoundError, match="shipped in the package"):
        alexnet_logits(tmp_path / "missing")


def test_shipped_copy_is_a_plain_gzipped_npy():
    from importlib import resources

    path = resources.files("fourfold.hierarchical") / "resources" / f"{ALEXNET_FILES[0]}.gz"
    with path.open("rb") as raw, gzip.open(raw) as unzipped:
        assert unzipped.read(6) == b"\x93NUMPY"  # a plain .npy header, no pickle


def test_shapes_and_labels(alexnet):
    h, logits, labels = alexnet
    assert logits.shape == (608, h.n_leaves)
    np.testing.assert_array_equal(labels, np.arange(608))


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_fast_decoders_equal_references_on_real_probabilities(alexnet, temperature):
    h, logits, _ = alexnet
    P = softmax(logits, temperature)
    for name in ("wu_palmer", "zhao"):
        cost = get_metric(name, h).cost
        dense = P @ cost.T
        nodes = D.node_cost_argmin(P, cost, h, prune=True)
        np.testing.assert_allclose(dense[np.arange(len(P)), nodes], dense.min(1), atol=1e-12)
    ms = get_metric("mistake_severity", h).cost
    np.testing.assert_array_equal(H.threshold_half(P, h), (P @ ms.T).argmin(1))
    np.testing.assert_array_equal(H.crm_as_published(P, h), P.argmax(1))  # the authors' bug 1


def test_top1_accuracy_is_moderate(alexnet):
    _, logits, labels = alexnet
    accuracy = float((logits.argmax(1) == labels).mean())
    assert 0.3 < accuracy < 0.8  # a real, imperfect ImageNet model on one image per class
