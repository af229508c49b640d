"""``PropensityClassifier`` as the propensity model of two causal-inference libraries.

EconML's doubly robust learners take any scikit-learn classifier as ``model_propensity``; DoWhy's
propensity-score weighting takes one as ``propensity_score_model``. This module fits both with our
tailored rule and with log-loss on the same data, next to ``fourfold.scoring.ate`` with the same models,
so the three estimates can be compared. The libraries are an optional extra:
``pip install 'fourfold[causal]'`` (DoWhy 0.14 pins scipy <= 1.15.3 on Python < 3.13).

    python -m fourfold.scoring.interop            # Kang-Schafer (misspecified) and LaLonde, both losses
"""

from __future__ import annotations

import argparse

import numpy as np

from fourfold.scoring.datasets import CausalData, kang_schafer, lalonde
from fourfold.scoring.ipw import ate
from fourfold.scoring.learners import PropensityClassifier

LOSSES = ("tailored", "log")


def propensity_model(loss: str, seed: int = 0) -> PropensityClassifier:
    """The linear learner with an L2 penalty (a fold of a cross-fit can separate small samples)."""
    return PropensityClassifier(learner="linear", loss=loss, alpha=1e-3, random_state=seed)


def econml_dr_ate(data: CausalData, loss: str, seed: int = 0) -> float:
    """ATE from EconML's ``LinearDRLearner`` (2-fold cross-fitting; covariates as controls W)."""
    from econml.dr import LinearDRLearner
    from sklearn.linear_model import LinearRegression

    learner = LinearDRLearner(
        model_propensity=propensity_model(loss, seed),
        model_regression=LinearRegression(),
        cv=2,
        random_state=seed,
    )
    learner.fit(data.y, data.t.astype(int), W=data.x)
    return float(learner.ate())


def dowhy_ipw_ate(data: CausalData, loss: str, seed: int = 0) -> float:
    """ATE from DoWhy's ``backdoor.propensity_score_weighting`` (Hajek-normalised inverse weights, no
    clipping: then it is the Hajek estimator of ``fourfold.scoring.ate`` with the same propensities)."""
    import pandas as pd
    from dowhy import CausalModel

    covariates = [f"x{j}" for j in range(data.x.shape[1])]
    frame = pd.DataFrame(data.x, columns=covariates).assign(t=data.t.astype(bool), y=data.y)
    model = CausalModel(data=frame, treatment="t", outcome="y", common_causes=covariates)
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    estimate = model.estimate_effect(
        estimand,
        method_name="backdoor.propensity_score_weighting",
        target_units="ate",
        method_params={
            "init_params": {
                "propensity_score_model": propensity_model(loss, seed),
                "weighting_scheme": "ips_normalized_weight",
                # DoWhy clips propensities to [0.05, 0.95] by default; fourfold never clips unasked
                "min_ps_score": 0.0,
                "max_ps_score": 1.0,
            }
        },
    )
    return float(estimate.value)


def fourfold_hajek_ate(data: CausalData, loss: str, seed: int = 0) -> float:
    """The same propensity model through ``fourfold.scoring.ate`` (Hajek), for comparison."""
    q = propensity_model(loss, seed).fit(data.x, data.t).propensity(data.x)
    return ate(data.y, data.t, q, method="hajek").estimate


def compare(data: CausalData, seed: int = 0) -> list[dict]:
    """One row per loss: the three estimates and the true ATE (None where unknown)."""
    rows = []
    for loss in LOSSES:
        rows.append(
            {
                "data": data.name,
                "loss": loss,
                "econml_linear_dr": econml_dr_ate(data, loss, seed),
                "dowhy_ipw_hajek": dowhy_ipw_ate(data, loss, seed),
                "fourfold_hajek": fourfold_hajek_ate(data, loss, seed),
                "true_ate": data.ate,
            }
        )
    return rows


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="Kang-Schafer sample size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    datasets = [kang_schafer(args.n, np.random.default_rng(args.seed), misspecified=True), lalonde("cps")]
    rows = [row for data in datasets for row in compare(data, args.seed)]
    print("| data | loss | EconML LinearDRLearner | DoWhy IPW (Hajek) | fourfold Hajek | true ATE |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        truth = "unknown" if r["true_ate"] is None else f"{r['true_ate']:.1f}"
        print(
            f"| {r['data']} | {r['loss']} | {r['econml_linear_dr']:.1f} | {r['dowhy_ipw_hajek']:.1f} | "
            f"{r['fourfold_hajek']:.1f} | {truth} |"
        )
    return rows


if __name__ == "__main__":
    main()
