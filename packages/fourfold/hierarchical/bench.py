"""Decoding throughput of each metric's optimal decoder vs brute-force enumeration, same run.

    python -m fourfold.hierarchical.bench [--n 10000] [--repeats 3] [--n-brute 200]

Probabilities: exact posteriors of the hierarchical Gaussian model at sigma = 1.5 (ambiguous inputs,
about half the top-1 predictions right). Baselines, named in the output:
  enumerate  every candidate scored one example at a time (leaves or nodes: cost @ p; hF_beta: every
             size k = 1..N, the top-k by Delta_k for each);
  dense      every node scored for the whole batch in one BLAS product (node metrics only).
Ratios are medians over ``--repeats`` runs; brute force runs on ``--n-brute`` examples and is scaled
to examples per second. Also: seconds to build every metric's matrices for tieredImageNet-H.
"""

import argparse

import numpy as np

from fourfold.core.benchmark import median_seconds
from fourfold.hierarchical import decoders as D
from fourfold.hierarchical.data import gaussian_means, oracle_posterior, sample_gaussian
from fourfold.hierarchical.decision import optimal_decode
from fourfold.hierarchical.metrics import BASE_METRICS, all_metrics, zero_one_cost
from fourfold.hierarchical.tree import Hierarchy


def enumerate_hf(P: np.ndarray, h: Hierarchy, beta: float) -> np.ndarray:
    """Per example, every size k = 1..N: the k largest Delta_k (exact, no bound)."""
    out = []
    for p in P:
        best, best_v = None, -np.inf
        for k in range(1, h.n_nodes + 1):
            delta = D.hf_delta(p[None], h, np.array([k]), beta)[0]
            v = np.sort(delta)[::-1][:k].sum()
            if v > best_v:
                best, best_v = k, v
        out.append(best)
    return np.array(out)


def enumerate_nodes(P: np.ndarray, cost: np.ndarray) -> np.ndarray:
    return D.brute_node_argmin(P, cost)


def bench_tree(name: str, n: int, n_brute: int, repeats: int, seed: int = 0) -> list[dict]:
    h = Hierarchy.shipped(name)
    rng = np.random.default_rng(seed)
    means = gaussian_means(h, 64, 0.85, rng)
    x, _ = sample_gaussian(means, 1.5, n, rng)
    P = oracle_posterior(x, means, 1.5)
    metrics = all_metrics(h, BASE_METRICS)
    rows = []
    for metric_name, metric in metrics.items():
        fast = median_seconds(lambda m=metric: optimal_decode(P, h, m), repeats)
        sub = P[:n_brute]
        if metric.kind == "subset" and metric.beta is not None:
            sub = P[: max(n_brute // 10, 5)]
            brute = median_seconds(lambda s=sub, b=metric.beta: enumerate_hf(s, h, b), 1)
        else:
            cost = zero_one_cost(h)[: h.n_leaves] if metric.name == "accuracy" else None
            if cost is None:
                cost = metrics["mistake_severity"].cost if metric.name == "hamming" else metric.cost
            brute = median_seconds(lambda s=sub, c=cost: enumerate_nodes(s, c), repeats)
        row = {
            "tree": name,
            "metric": metric_name,
            "optimal_per_s": n / fast,
            "enumerate_per_s": len(sub) / brute,
        }
        if metric.kind == "node":
            dense = median_seconds(lambda c=metric.cost: D.dense_node_argmin(P, c), repeats)
            row["dense_per_s"] = n / dense
        rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="examples decoded per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings per measurement (median)")
    parser.add_argument("--n-brute", type=int, default=200, help="examples for the per-example enumeration")
    args = parser.parse_args(argv)

    build = median_seconds(lambda: all_metrics(Hierarchy.shipped("tieredimagenet_h"), BASE_METRICS), 5)
    print(
        f"build every metric, tieredImageNet-H (tree + LCA + 3 cost matrices): {build:.3f} s (target < 1 s)"
    )
    print(
        f"{'tree':<17}{'metric':<18}{'optimal ex/s':>14}{'enumerate ex/s':>16}{'ratio':>9}"
        f"{'dense ex/s':>13}{'ratio':>8}"
    )
    for name in ("tieredimagenet_h", "inat19"):
        for r in bench_tree(name, args.n, args.n_brute, args.repeats):
            dense = r.get("dense_per_s")
            tail = f"{dense:>13.0f}{r['optimal_per_s'] / dense:>7.2f}x" if dense else ""
            print(
                f"{r['tree']:<17}{r['metric']:<18}{r['optimal_per_s']:>14.0f}{r['enumerate_per_s']:>16.0f}"
                f"{r['optimal_per_s'] / r['enumerate_per_s']:>8.1f}x{tail}"
            )


if __name__ == "__main__":
    main()
