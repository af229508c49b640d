"""Speed benchmark (``python -m fourfold.scoring.bench``, run by ``make bench``): ratios against named
baselines measured in the same run, median of several repeats.

1. ``ate_link_inverse`` (Newton on the quartic) vs bisection in logit space: throughput on 10^7 scores
   (bisection timed on the first 10^6 of them, throughput scaled per score).
2. XGBoost fit time with the tailored objective vs ``binary:logistic`` (100k rows, 100 trees, depth 3).
3. MLP epoch time with the tailored loss vs ``BCEWithLogitsLoss`` (100k rows, batch 2048, (64, 32)).
"""

from __future__ import annotations

import argparse

import numpy as np

from fourfold.core.benchmark import median_seconds


def bench_link_inverse(n: int, repeats: int) -> dict[str, float]:
    from fourfold.scoring import ate_link_inverse
    from fourfold.scoring.link import bisection_link_inverse, tailored_link

    rng = np.random.default_rng(0)
    f = np.sign(rng.normal(size=n)) * 10 ** rng.uniform(-3, 8, size=n)  # |f| from 1e-3 to 1e8
    sub = f[: max(n // 10, 1)]
    newton = median_seconds(lambda: ate_link_inverse(f), repeats, warmup=1)
    bisection = median_seconds(lambda: bisection_link_inverse(tailored_link, sub), repeats, warmup=1)
    newton_rate, bisection_rate = n / newton, len(sub) / bisection
    return {
        "newton_scores_per_s": newton_rate,
        "bisection_scores_per_s": bisection_rate,
        "speedup": newton_rate / bisection_rate,
    }


def bench_xgboost(n: int, repeats: int) -> dict[str, float]:
    import xgboost as xgb

    from fourfold.scoring.learners import xgboost_objective
    from fourfold.scoring.rules import RULES

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 10))
    t = (rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] - 0.5 * x[:, 1])))).astype(float)
    params = {
        "max_depth": 3,
        "eta": 0.1,
        "tree_method": "hist",
        "nthread": 1,
        "disable_default_eval_metric": True,
    }
    dtrain = xgb.DMatrix(x, label=t, base_margin=np.zeros(n))
    rule = RULES["tailored"]
    objective = xgboost_objective(rule, rule.canonical_link)
    logistic = {**params, "objective": "binary:logistic"}
    runs = {
        "logistic_s": lambda: xgb.train(logistic, dtrain, num_boost_round=100),
        "tailored_s": lambda: xgb.train(params, dtrain, num_boost_round=100, obj=objective),
    }
    # Interleaved (one of each per repeat), so a burst of load on the shared machine hits both alike.
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(median_seconds(run, 1, warmup=0 if times[name] else 1))
    result = {name: float(np.median(t)) for name, t in times.items()}
    return {**result, "ratio": result["tailored_s"] / result["logistic_s"]}


def bench_mlp(n: int, repeats: int) -> dict[str, float]:
    import torch

    from fourfold.scoring.link import torch_raw_loss
    from fourfold.scoring.rules import RULES

    torch.manual_seed(0)
    x = torch.randn(n, 10)
    t = (torch.rand(n) < torch.sigmoid(x[:, 0] - 0.5 * x[:, 1])).float()
    rule = RULES["tailored"]
    bce = torch.nn.BCEWithLogitsLoss()

    def epoch(loss_fn):
        model = torch.nn.Sequential(
            torch.nn.Linear(10, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 32),
            torch.nn.ReLU(),
            torch.nn.Linear(32, 1),
        )
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

        def run():
            for start in range(0, n, 2048):
                xb, tb = x[start : start + 2048], t[start : start + 2048]
                optimiser.zero_grad()
                loss_fn(model(xb).reshape(-1), tb).backward()
                optimiser.step()

        return run

    base = median_seconds(epoch(bce), repeats, warmup=1)
    tailored_loss = lambda f, y: torch_raw_loss(rule, rule.canonical_link, f, y)  # noqa: E731
    tailored = median_seconds(epoch(tailored_loss), repeats, warmup=1)
    return {"bce_epoch_s": base, "tailored_epoch_s": tailored, "ratio": tailored / base}


def main(argv=None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scores", type=int, default=10**7, help="scores for the link-inverse benchmark")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the XGBoost and MLP benchmarks")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    results = {
        "link_inverse": bench_link_inverse(args.scores, args.repeats),
        "xgboost": bench_xgboost(args.rows, args.repeats),
        "mlp": bench_mlp(args.rows, args.repeats),
    }
    li, xg, ml = results["link_inverse"], results["xgboost"], results["mlp"]
    print(
        f"ate_link_inverse: {li['newton_scores_per_s']:.3g} scores/s (Newton, {args.scores:.0e} scores) vs "
        f"{li['bisection_scores_per_s']:.3g} (bisection): {li['speedup']:.1f}x faster"
    )
    print(
        f"xgboost fit, {args.rows} rows: tailored {xg['tailored_s']:.2f} s / binary:logistic "
        f"{xg['logistic_s']:.2f} s = {xg['ratio']:.2f}x (target <= 1.5x)"
    )
    print(
        f"mlp epoch, {args.rows} rows: tailored {ml['tailored_epoch_s']:.3f} s / "
        f"BCE {ml['bce_epoch_s']:.3f} s = {ml['ratio']:.2f}x (target <= 1.3x)"
    )
    print(f"(median of {args.repeats} runs, torch threads 1, xgboost nthread 1)")
    return results


if __name__ == "__main__":
    main()
