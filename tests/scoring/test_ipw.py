"""IPW estimators: unbiased with the true propensity (Monte Carlo), Hajek normalisation, honest SEs,
explicit clip/trim counts, and clear errors on bad input."""

import numpy as np
import pytest

from fourfold.scoring import ate
from fourfold.scoring.ipw import effective_sample_size, ipw_weights, weighted_mean_difference


def draw(rng, n=400):
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(0.3 + 1.2 * x)))
    t = (rng.random(n) < p).astype(float)
    y0 = 1.0 + 2.0 * x + rng.normal(size=n)
    y1 = y0 + 1.5 + 0.5 * x  # ATE = 1.5
    return x, p, t, np.where(t > 0, y1, y0), (1.0 + 2.0 * x, 2.5 + 2.5 * x)


@pytest.mark.parametrize("method", ["ht", "hajek", "aipw"])
def test_true_propensity_centres_on_the_ate_and_se_matches_spread(method):
    rng = np.random.default_rng(1)
    estimates, ses = [], []
    for _ in range(300):
        _, p, t, y, mu = draw(rng)
        result = ate(y, t, p, method=method, outcome=mu if method == "aipw" else None)
        estimates.append(result.estimate)
        ses.append(result.se)
    estimates = np.array(estimates)
    mc_se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - 1.5) < 4 * mc_se
    # the influence-function SE tracks the Monte Carlo spread (loosely; Hajek's is asymptotic)
    assert np.mean(ses) == pytest.approx(estimates.std(ddof=1), rel=0.2)


def test_hajek_weights_sum_to_one_per_arm_and_ess():
    rng = np.random.default_rng(0)
    _, p, t, _, _ = draw(rng)
    w = ipw_weights(t, p, normalize=True)
    assert w[t > 0].sum() == pytest.approx(1.0) and w[t < 1].sum() == pytest.approx(1.0)
    assert effective_sample_size(np.ones(17)) == pytest.approx(17)
    assert effective_sample_size(np.r_[1.0, np.zeros(9)]) == pytest.approx(1)


def test_hajek_is_exact_when_outcome_is_constant_per_arm():
    t = np.array([1, 1, 0, 0, 1, 0.0])
    q = np.array([0.9, 0.2, 0.3, 0.6, 0.5, 0.05])
    y = np.where(t > 0, 3.0, 1.0)
    assert ate(y, t, q, method="hajek").estimate == pytest.approx(2.0)


def test_clip_and_trim_are_explicit_and_counted():
    t = np.array([1, 0, 1, 0, 1, 0.0])
    q = np.array([0.001, 0.5, 0.6, 0.999, 0.4, 0.3])
    y = np.arange(6.0)
    clipped = ate(y, t, q, clip=0.01)
    assert clipped.diagnostics["n_clipped"] == 2 and clipped.diagnostics["min_propensity"] == 0.01
    trimmed = ate(y, t, q, trim=0.01)
    assert trimmed.diagnostics["n_trimmed"] == 2 and trimmed.diagnostics["n_used"] == 4
    plain = ate(y, t, q)
    assert plain.diagnostics["n_clipped"] == 0 and plain.diagnostics["min_propensity"] == 0.001


def test_trim_drops_propensities_of_exactly_zero_and_one():
    t = np.array([1, 0, 1, 0, 1, 0, 1, 0.0])
    q = np.array([0.0, 0.5, 0.6, 1.0, 0.4, 0.3, 1.0, 0.7])
    y = np.arange(8.0)
    trimmed = ate(y, t, q, trim=0.05)
    kept = np.array([1, 2, 4, 5, 7])
    assert trimmed.diagnostics["n_trimmed"] == 3 and trimmed.diagnostics["n_used"] == 5
    assert trimmed.estimate == pytest.approx(ate(y[kept], t[kept], q[kept]).estimate)
    with pytest.raises(ValueError, match=r"outside \(0, 1\)"):
        ate(y, t, q)


def test_empty_input_says_no_rows():
    with pytest.raises(ValueError, match="no rows"):
        ate([], [], [])
    from fourfold.scoring.baselines import fit_method

    with pytest.raises(ValueError, match="no rows"):
        fit_method("log", np.zeros((0, 2)), np.zeros(0))


def test_weighted_balance_is_zero_for_identical_arms():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [3.0, 4.0]])
    t = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(weighted_mean_difference(x, t, np.ones(4)), 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t": [0, 1, 2]}, "binary"),
        ({"t": [1, 1, 1]}, "single class"),
        ({"t": [0, 1]}, "equal length"),
        ({"propensity": [0.5, 1.0, 0.2]}, r"outside \(0, 1\)"),
        ({"propensity": [0.5, np.nan, 0.2]}, "NaN"),
        ({"y": [1.0, np.inf, 0.0]}, "finite"),
        ({"method": "ipw2"}, "unknown method"),
        ({"method": "aipw"}, "outcome"),
        ({"clip": 0.7}, "clip"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, message):
    args = {"y": [1.0, 2.0, 0.0], "t": [0, 1, 1], "propensity": [0.5, 0.4, 0.2], **kwargs}
    with pytest.raises(ValueError, match=message):
        ate(**args)
