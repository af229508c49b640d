"""The bench's per-example baseline makes the optimal decoders' decisions (so its ratios compare like
with like)."""

import numpy as np
import pytest

from fourfold.hierarchical import Hierarchy
from fourfold.hierarchical.bench import PerExample, gaussian_probs
from fourfold.hierarchical.decision import optimal_decode
from fourfold.hierarchical.metrics import BASE_METRICS, all_metrics


@pytest.mark.parametrize("tree", ["tieredimagenet_h", "inat19"])
def test_per_example_baseline_decides_like_the_optimal_decoders(tree):
    h = Hierarchy.shipped(tree)
    P = gaussian_probs(h, 6, seed=3)
    baseline = PerExample(h)
    for name, metric in all_metrics(h, BASE_METRICS).items():
        rows = P[:2] if metric.kind == "subset" and metric.beta is not None else P
        np.testing.assert_array_equal(baseline(rows, metric), optimal_decode(rows, h, metric), err_msg=name)
