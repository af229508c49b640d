"""Regression checks on the shipped AlexNet logits (skipped when the shared data folder is absent)."""

import os
from pathlib import Path

import numpy as np
import pytest

from fourfold.hierarchical import Hierarchy
from fourfold.hierarchical import decoders as D
from fourfold.hierarchical import heuristics as H
from fourfold.hierarchical.inputs import softmax
from fourfold.hierarchical.metrics import get_metric

ROOT = Path(__file__).resolve().parents[2]
FOLDER = Path(os.environ.get("FOURFOLD_SHARED", ROOT.parent / "shared")) / "data" / "hierarchical"
LOGITS = FOLDER / "alexnet_tieredimagenet_tiny_logits.npy"
pytestmark = pytest.mark.skipif(not LOGITS.is_file(), reason=f"AlexNet logits not found at {LOGITS}")


@pytest.fixture(scope="module")
def alexnet():
    logits = np.load(LOGITS, allow_pickle=False)
    labels = np.load(FOLDER / "alexnet_tieredimagenet_tiny_labels.npy", allow_pickle=False)
    return Hierarchy.shipped("tieredimagenet_h"), logits, labels


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
