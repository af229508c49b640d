"""Decoding speed of each metric's optimal decoder against the same rule run one example at a time.

    python -m fourfold.hierarchical.bench [--n 10000] [--repeats 3] [--n-baseline 100]

Inputs: the 608 shipped AlexNet probabilities (tieredImageNet-H, T = 1), and ``--n`` exact posteriors of
the hierarchical Gaussian model at sigma = 1.5 on both trees (ambiguous inputs). The baseline, named
``per-example`` in the output, is a straightforward implementation of the paper's rules (ours, written for
this bench): one example at a time, node marginals summed leaf set by leaf set, the expected cost of every
node as one mat-vec, every hF size k = 1..N tried with its top-k by Delta_k, the prediction's root path by
walking up the parents. It runs on ``--n-baseline`` examples (a tenth of that for hF), spread over the
input and different at each timing (as in a pass over all of it, rows come from memory, not cache), and
is scaled to examples per second. Ratios use medians of ``--repeats`` timings (one timing when a call
takes > 1 s). Also: seconds to build every metric's matrices for tieredImageNet-H, and ``pruned`` for
node metrics: the paper's q_min / q_max pruned search (``prune=True``) against our default, every node
scored in one float32 BLAS product with float64 rescoring near the minimum. One BLAS thread throughout.
"""

import argparse
import time

import numpy as np

from fourfold.core.benchmark import median_seconds
from fourfold.hierarchical import decoders as D
from fourfold.hierarchical.data import alexnet_logits, gaussian_means, oracle_posterior, sample_gaussian
from fourfold.hierarchical.decision import optimal_decode
from fourfold.hierarchical.inputs import softmax
from fourfold.hierarchical.metrics import BASE_METRICS, Metric, all_metrics
from fourfold.hierarchical.tree import Hierarchy


# ------------------------------------------------------------------------------ per-example baseline
class PerExample:
    """The paper's decision rules for one example at a time, without batching or cached constants."""

    def __init__(self, h: Hierarchy):
        self.h = h
        self.leaf_sets = [np.flatnonzero(row) for row in h.incidence_t.toarray()]

    def path(self, node: int) -> np.ndarray:
        out = np.zeros(self.h.n_nodes, dtype=bool)
        while node != -1:
            out[node] = True
            node = self.h.parent[node]
        return out

    def node_marginals(self, p: np.ndarray) -> np.ndarray:
        return np.array([p[leaves].sum() for leaves in self.leaf_sets])

    def hf(self, p: np.ndarray, beta: float) -> np.ndarray:
        best, best_value = None, -np.inf
        for k in range(1, self.h.n_nodes + 1):
            delta = D.hf_delta(p[None], self.h, np.array([k]), beta)[0]
            top = np.lexsort((self.h.depth, -delta))[:k]  # equal Delta: the shallower node first
            if (value := delta[top].sum()) > best_value:
                best, best_value = top, value
        out = np.zeros(self.h.n_nodes, dtype=bool)
        out[best] = True
        return out

    def decode(self, p: np.ndarray, metric: Metric) -> np.ndarray:
        if metric.name == "accuracy":
            return self.path(int(np.argmax(p)))
        if metric.name in ("hamming", "mistake_severity"):
            above = self.node_marginals(p) > 0.5
            above[self.h.root] = True
            if metric.name == "hamming":
                return above
            return self.path(int(np.flatnonzero(above)[np.argmax(self.h.depth[above])]))
        if metric.kind == "subset":
            return self.hf(p, metric.beta)
        return self.path(int(np.argmin(metric.cost @ p)))

    def __call__(self, P: np.ndarray, metric: Metric) -> np.ndarray:
        return np.array([self.decode(p, metric) for p in P])


# ------------------------------------------------------------------------------------------- timing
def seconds(fn, repeats: int) -> float:
    """Median of ``repeats`` timings, or one timing when a call takes more than a second."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    return first if first > 1.0 or repeats <= 1 else median_seconds(fn, repeats)


def spread_rows(baseline: PerExample, P: np.ndarray, metric: Metric, count: int):
    """A call that runs the baseline on ``count`` rows spread evenly over P, other rows at every call:
    like a pass over all of P it reads rows that are not in cache (timing the first rows again and again
    would time rows already in cache, which flatters the baseline at 10,000 examples)."""
    step = max(len(P) // count, 1)
    calls = iter(range(1 << 62))

    def run():
        rows = np.arange(next(calls) % step, len(P), step)[:count]
        return [baseline.decode(P[i], metric) for i in rows]

    return run


def gaussian_probs(h: Hierarchy, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = gaussian_means(h, 64, 0.85, rng)
    x, _ = sample_gaussian(means, 1.5, n, rng)
    return oracle_posterior(x, means, 1.5)


def bench(name: str, source: str, P: np.ndarray, n_baseline: int, repeats: int) -> list[dict]:
    h = Hierarchy.shipped(name)
    metrics = all_metrics(h, BASE_METRICS)
    baseline = PerExample(h)
    rows = []
    for metric_name, metric in metrics.items():
        optimal_decode(P[:2], h, metric)  # per-tree constants are built once, on first use
        ours = seconds(lambda m=metric: optimal_decode(P, h, m), repeats)
        slow = metric.kind == "subset" and metric.beta is not None  # every size k: O(N^2 log N) each
        count = min(max(n_baseline // 10, 3) if slow else n_baseline, len(P))
        per_example = seconds(spread_rows(baseline, P, metric, count), repeats) / count
        row = {
            "tree": name,
            "probabilities": source,
            "n": len(P),
            "metric": metric_name,
            "ours_per_s": len(P) / ours,
            "per_example_per_s": 1.0 / per_example,
        }
        if metric.kind == "node":  # ours scores every node densely; the paper's pruned search beside it
            pruned = seconds(lambda m=metric: optimal_decode(P, h, m, prune=True), repeats)
            row["pruned_per_s"] = len(P) / pruned
        rows.append(row)
    return rows


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="Gaussian-model examples decoded per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings per measurement (median)")
    parser.add_argument("--n-baseline", type=int, default=100, help="examples for the per-example baseline")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    # One BLAS thread for both sides: on a shared 2-core machine a threaded mat-vec can run 40x slower.
    with threadpool_limits(limits=1):
        return _run(args)


def _run(args) -> list[dict]:
    build = median_seconds(lambda: all_metrics(Hierarchy.shipped("tieredimagenet_h"), BASE_METRICS), 5)
    print(f"build every metric, tieredImageNet-H (tree + LCA + 3 costs): {build:.3f} s (target < 1 s)")
    logits, _ = alexnet_logits()
    inputs = [
        ("tieredimagenet_h", "AlexNet", softmax(logits, 1.0)),
        ("tieredimagenet_h", "Gaussian", gaussian_probs(Hierarchy.shipped("tieredimagenet_h"), args.n)),
        ("inat19", "Gaussian", gaussian_probs(Hierarchy.shipped("inat19"), args.n)),
    ]
    print(
        f"{'tree':<17}{'probabilities':<14}{'n':>7}  {'metric':<18}{'ours ex/s':>12}{'per-example ex/s':>18}"
        f"{'ratio':>9}{'pruned ex/s':>13}{'ratio':>8}"
    )
    rows = []
    for name, source, P in inputs:
        for r in bench(name, source, P, args.n_baseline, args.repeats):
            rows.append(r)
            pruned = r.get("pruned_per_s")
            tail = f"{pruned:>13.0f}{r['ours_per_s'] / pruned:>7.2f}x" if pruned else ""
            print(
                f"{r['tree']:<17}{r['probabilities']:<14}{r['n']:>7}  {r['metric']:<18}"
                f"{r['ours_per_s']:>12.0f}{r['per_example_per_s']:>18.0f}"
                f"{r['ours_per_s'] / r['per_example_per_s']:>8.1f}x{tail}"
            )
    return rows


if __name__ == "__main__":
    main()
