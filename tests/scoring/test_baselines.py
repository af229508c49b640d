"""Baselines: entropy balancing balances exactly and stays closest to uniform, over-identified CBPS sits
between the MLE and exact balance, the method registry and the Hajek estimate from weights."""

import numpy as np
import pytest

from fourfold.scoring.baselines import METHODS, balance_arm, cbps_over, entropy_balance, fit_method
from fourfold.scoring.ipw import ate_from_weights


def design(n=800, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(0.8 * x[:, 0] - 0.5 * x[:, 1])))
    return x, (rng.random(n) < p).astype(float)


def test_entropy_balance_matches_the_sample_means_exactly():
    x, t = design()
    w = entropy_balance(x, t)
    for arm in (t > 0, t < 1):
        assert w[arm].sum() == pytest.approx(1.0)
        np.testing.assert_allclose(w[arm] @ x[arm], x.mean(0), atol=1e-8)
    assert np.all(w > 0)


def test_entropy_balance_is_the_minimum_kl_solution():
    """Any other balancing weights (a feasible perturbation) have larger KL to uniform."""
    rng = np.random.default_rng(1)
    c = rng.normal(size=(40, 2))
    w = balance_arm(c, np.array([0.2, -0.1]))
    kl = lambda v: np.sum(v * np.log(v * len(v)))  # noqa: E731
    basis = np.column_stack([np.ones(40), c])
    for _ in range(20):
        d = rng.normal(size=40)
        d -= basis @ np.linalg.lstsq(basis, d, rcond=None)[0]  # keeps sum and means
        v = w + 1e-3 * d / np.abs(d).max() * w.min()
        assert kl(v) >= kl(w) - 1e-15


def test_cbps_objective_gradient_and_minimum():
    """The CU-GMM gradient matches finite differences, and CBPS's criterion is below the MLE's and
    Zhao's (exact balance) fits, the two other natural candidates."""
    from scipy.special import logit

    from fourfold.scoring.baselines import _with_intercept, cbps_objective

    x, t = design()
    a = _with_intercept(x)
    b = np.array([0.1, 0.6, -0.4, 0.1])
    fd = [
        (cbps_objective(a, t, b + 1e-6 * e)[0] - cbps_objective(a, t, b - 1e-6 * e)[0]) / 2e-6
        for e in np.eye(4)
    ]
    np.testing.assert_allclose(cbps_objective(a, t, b)[1], fd, rtol=1e-5)

    def criterion(q):
        beta = np.linalg.lstsq(a, logit(q), rcond=None)[0]  # every candidate is logistic-linear in a
        return cbps_objective(a, t, beta)[0]

    q_cbps = cbps_over(x, t)
    assert np.all((q_cbps > 0) & (q_cbps < 1))
    assert criterion(q_cbps) < criterion(fit_method("log", x, t).propensity)
    assert criterion(q_cbps) < criterion(fit_method("zhao", x, t).propensity)


def test_ate_from_uniform_weights_is_the_difference_in_means():
    t = np.array([1, 1, 0, 0, 0.0])
    y = np.array([3.0, 5.0, 1.0, 2.0, 3.0])
    assert ate_from_weights(y, t, np.ones(5)).estimate == pytest.approx(2.0)


def test_registry_and_fit_method_outputs():
    x, t = design(n=200)
    assert {"tailored", "log", "zhao", "brier", "cbps_over", "ebal", "log_isotonic", "log_platt"} <= set(
        METHODS
    )
    out = fit_method("log_clip05", x, t)
    assert out.clip == 0.05 and out.propensity.shape == (200,)
    assert fit_method("ebal", x, t).weights is not None
    with pytest.raises(ValueError, match="unknown method"):
        fit_method("ipw_magic", x, t)
