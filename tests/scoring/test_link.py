"""The tailored link and its inverse: round trip, high-precision roots, Ferrari cross-check, reference table,
and the raw-score loss against finite differences."""

import mpmath as mp
import numpy as np
import pytest

from fourfold.scoring import ate_link, ate_link_inverse, ate_weight
from fourfold.scoring.link import (
    LOGIT,
    bisection_link_inverse,
    raw_loss_grad_hess,
    tailored_link,
    tailored_link_inverse,
    tailored_link_inverse_ferrari,
    tailored_raw_loss,
    to_q,
)
from fourfold.scoring.rules import RULES


def test_round_trip_over_the_whole_open_interval():
    # Log-spaced towards both ends: min(q, 1-q) from 1e-9 to 1/2.
    m = np.logspace(-9, np.log10(0.5), 400)
    for q in (m, 1.0 - m):
        m_back, side = ate_link_inverse(ate_link(q), split=True)
        # relative error in min(q, 1-q); q = 1 - m is itself rounded, so compare with the stored value
        exact_m = np.minimum(q, 1.0 - q)
        assert np.max(np.abs(m_back - exact_m) / exact_m) < 1e-12
        assert np.all(to_q(m_back, side) == pytest.approx(q, rel=1e-14, abs=0))


def _mp_root(f):
    """min(q, 1-q) for psi(q) = f from mpmath (50 digits) on the quartic in u."""
    mp.mp.dps = 50
    f = mp.mpf(f)
    u = mp.findroot(lambda u: u**4 - 12 * u**2 - 16 * u - f**2, 6 + mp.sqrt(abs(f)))
    return float((2 / u) / (1 + mp.sqrt(1 - 4 / u)))


@pytest.mark.parametrize("f", [-1e9, -1e8, -3.3e6, -12345.6, -7.0, 0.25, 99.0, 1e5, 1e8, 1e9, 1e12])
def test_newton_matches_high_precision_root_without_floor(f):
    m, side = tailored_link_inverse(np.array([f]))
    assert m[0] == pytest.approx(_mp_root(f), rel=4e-16)
    assert side[0] == np.sign(f)


def test_no_propensity_floor():
    m, _ = tailored_link_inverse(np.array([-1e8, -1e10, -1e14]))
    assert np.all(np.diff(m) < 0) and m[-1] < 1.1e-7  # keeps falling ~ |f|^-1/2


def test_ferrari_equals_newton_for_moderate_scores():
    f = np.linspace(-100, 100, 2001)
    m_newton, s_newton = tailored_link_inverse(f)
    m_ferrari, s_ferrari = tailored_link_inverse_ferrari(f)
    np.testing.assert_allclose(m_ferrari, m_newton, rtol=1e-9)
    np.testing.assert_array_equal(s_ferrari, s_newton)


def test_reference_values_of_the_brief():
    q = np.array([0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
    psi = [-1.002e6, -10197, -436.8, -116.5, -30.94, -12.88, -5.139, 0]
    w = [2.0e9, 2.02e6, 1.68e4, 2205, 307, 106, 58.6, 48]
    np.testing.assert_allclose(ate_link(q), psi, rtol=2e-3, atol=1e-12)
    np.testing.assert_allclose(ate_weight(q), w, rtol=3e-3)
    np.testing.assert_allclose(
        RULES["log"].weight(q), [1001, 101, 21.1, 11.1, 6.25, 4.76, 4.17, 4], rtol=3e-3
    )
    np.testing.assert_allclose(
        RULES["zhao"].weight(q), [1.0e6, 1.02e4, 443, 123, 39.1, 22.7, 17.4, 16], rtol=5e-3
    )
    assert ate_link(0.5) == 0.0 and ate_weight(0.5) == 48.0


def test_link_derivative_is_the_weight():
    q = np.array([0.003, 0.1, 0.45, 0.8, 0.97])
    h = 1e-6 * np.minimum(q, 1 - q)
    np.testing.assert_allclose(
        (tailored_link(q + h) - tailored_link(q - h)) / (2 * h), ate_weight(q), rtol=1e-6
    )


def test_bisection_inverse_agrees_with_newton():
    f = np.array([-1e8, -500.0, -1.0, 0.0, 3.0, 2e4])
    np.testing.assert_allclose(
        bisection_link_inverse(tailored_link, f)[0], tailored_link_inverse(f)[0], rtol=1e-13
    )


LINK_CASES = [
    (name, link) for name in RULES for link in ("canonical", "logit") if name != "brier" or link == "logit"
]


@pytest.mark.parametrize(("name", "link_name"), LINK_CASES)
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_raw_loss_gradient_matches_finite_differences(name, link_name, y):
    rule = RULES[name]
    link = rule.link(link_name)
    q = np.array([0.02, 0.2, 0.5, 0.7, 0.95])
    f = link(q)
    h = 1e-5 * np.maximum(1.0, np.abs(f))
    loss_plus = raw_loss_grad_hess(rule, link, f + h, np.full_like(f, y))[0]
    loss_minus = raw_loss_grad_hess(rule, link, f - h, np.full_like(f, y))[0]
    _, grad, hess = raw_loss_grad_hess(rule, link, f, np.full_like(f, y))
    np.testing.assert_allclose((loss_plus - loss_minus) / (2 * h), grad, rtol=1e-5, atol=1e-9)
    grad_plus = raw_loss_grad_hess(rule, link, f + h, np.full_like(f, y))[1]
    grad_minus = raw_loss_grad_hess(rule, link, f - h, np.full_like(f, y))[1]
    fd_hess = (grad_plus - grad_minus) / (2 * h)
    if link is rule.canonical_link:
        np.testing.assert_allclose(fd_hess, hess, rtol=1e-5, atol=1e-12)  # exact Hessian 1/w
        np.testing.assert_allclose(grad, q - y, rtol=1e-12, atol=1e-15)
    else:
        assert np.all(hess > 0)


@pytest.mark.parametrize("name", [n for n in RULES if RULES[n].default_link == "logit" or n == "tailored"])
def test_fisher_hessian_is_the_expected_exact_hessian(name):
    """For a non-canonical link the returned Hessian is E_{y ~ q}[d^2 L / df^2]."""
    rule = RULES[name]
    q = np.array([0.05, 0.3, 0.5, 0.9])
    f = LOGIT(q)
    h = 1e-5 * np.maximum(1.0, np.abs(f))
    exact = {}
    for y in (0.0, 1.0):
        yy = np.full_like(f, y)
        exact[y] = (
            raw_loss_grad_hess(rule, LOGIT, f + h, yy)[1] - raw_loss_grad_hess(rule, LOGIT, f - h, yy)[1]
        ) / (2 * h)
    fisher = raw_loss_grad_hess(rule, LOGIT, f, np.zeros_like(f))[2]
    np.testing.assert_allclose(q * exact[1.0] + (1 - q) * exact[0.0], fisher, rtol=1e-4)


def test_tailored_raw_loss_is_the_partial_loss_and_convex():
    f = np.array([-50.0, -3.0, 0.5, 7.0, 80.0])
    q = ate_link_inverse(f)
    for y in (0.0, 1.0):
        np.testing.assert_allclose(
            tailored_raw_loss(f, np.full(5, y)), RULES["tailored"].loss(q, np.full(5, y)), rtol=1e-9
        )
    grid = np.linspace(-200, 200, 801)
    second = np.diff(tailored_raw_loss(grid, np.ones_like(grid)), 2)
    assert np.all(second > -1e-9)


def test_non_finite_scores_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        ate_link_inverse(np.array([0.0, np.nan]))


def test_fast_tailored_grad_hess_equals_the_generic_path():
    from fourfold.scoring.link import raw_grad_hess

    rule = RULES["tailored"]
    f = np.array([-1e7, -40.0, -0.3, 0.0, 2.0, 900.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    _, grad, hess = raw_loss_grad_hess(rule, rule.canonical_link, f, y)
    fast_grad, fast_hess = raw_grad_hess(rule, rule.canonical_link, f, y)
    np.testing.assert_allclose(fast_grad, grad, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(fast_hess, hess, rtol=1e-12)


@pytest.mark.parametrize("start", [0.0, 1e-3, 5.0, 1e6])
def test_warm_started_newton_reaches_the_same_root(start):
    from fourfold.scoring.link import tailored_excess_newton

    f = np.array([-1e8, -250.0, -1.0, 0.0, 0.01, 30.0, 5e5])
    cold = tailored_excess_newton(f)
    warm = tailored_excess_newton(f, start=np.full(f.shape, start))
    np.testing.assert_allclose(warm, cold, rtol=1e-14, atol=1e-300)


def _mp_excess(f):
    """e = u - 4 for psi(q) = f from mpmath (50 digits), on the quartic in e (no cancellation near f = 0)."""
    mp.mp.dps = 50
    f = mp.mpf(f)
    return float(mp.findroot(lambda e: e**4 + 16 * e**3 + 84 * e**2 + 144 * e - f**2, f**2 / 144))


@pytest.mark.parametrize("f", [1e-12, -1.05384585e-3, 0.02, -0.5])
def test_small_scores_keep_the_root_exact(f):
    # the cold start's fixed-point tightening cancels for tiny |f| and lands below the root; the free
    # Newton step must bring it back (before: e = 0 at f = 1e-12, 3e-9 relative error at 1e-3)
    from fourfold.scoring.link import tailored_excess_newton

    assert tailored_excess_newton(np.array([f]))[0] == pytest.approx(_mp_excess(f), rel=1e-14)


def _score_mix(rng):
    return np.r_[rng.normal(size=2000) * 30, rng.normal(size=200) * 1e6, -1e-12, 0.0, 1e-300, 1e101, -1e250]


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_compiled_objective_equals_the_numpy_path(warm):
    pytest.importorskip("numba")
    from fourfold.scoring.link import tailored_grad_hess
    from fourfold.scoring.link_kernel import tailored_grad_hess_compiled

    rng = np.random.default_rng(7)
    f = _score_mix(rng)
    y = (rng.random(len(f)) < 0.5).astype(float)
    start = None
    if warm:  # the previous round's roots, as XGBoost's objective passes them
        start = tailored_grad_hess(f, y)[2]
        f = f + rng.normal(size=len(f)) * np.abs(f).clip(1, 1e3) * 0.1
    expected = tailored_grad_hess(f, y, start=start)
    got = tailored_grad_hess_compiled(f, y, start=start)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-13)
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-13, atol=1e-300)
    with pytest.raises(ValueError, match="finite"):
        tailored_grad_hess_compiled(np.array([np.nan]), np.zeros(1))
