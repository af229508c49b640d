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


def test_the_baseline_is_timed_on_rows_spread_over_the_input_and_new_at_every_call():
    from fourfold.hierarchical.bench import spread_rows

    h = Hierarchy.shipped("tieredimagenet_h")
    metric = all_metrics(h, ("accuracy",))["accuracy"]
    P = np.eye(h.n_leaves)[:100]  # row i decodes to the root path of leaf i
    seen = []
    run = spread_rows(PerExample(h), P, metric, count=10)
    for _ in range(3):
        paths = run()
        seen.append([int(np.flatnonzero(p[: h.n_leaves])[0]) for p in paths])  # the one leaf on the path
    assert seen[0] == list(range(0, 100, 10)) and seen[1] == list(range(1, 100, 10))
    assert not set(seen[0]) & set(seen[2])
