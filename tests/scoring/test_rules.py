"""Scoring rules: Schervish identities, strict propriety, Savage form, symmetry, the generic recipe, and the
curvature-matching construction of the tailored weight."""

import numpy as np
import pytest

from fourfold.scoring import ate_loss
from fourfold.scoring.rules import (
    RULES,
    curvature_weight,
    get_rule,
    ipw_error_bound,
    rule_from_error,
    rule_from_weight,
    tailored_weight,
)

Q = np.array([0.004, 0.03, 0.2, 0.5, 0.61, 0.9, 0.995])


@pytest.mark.parametrize("name", sorted(RULES))
def test_schervish_identities(name):
    rule = RULES[name]
    h = 1e-6 * np.minimum(Q, 1 - Q)
    l1p, l0p = rule.partial_losses(Q + h)
    l1m, l0m = rule.partial_losses(Q - h)
    w = rule.weight(Q)
    np.testing.assert_allclose((l1p - l1m) / (2 * h), -(1 - Q) * w, rtol=1e-6)
    np.testing.assert_allclose((l0p - l0m) / (2 * h), Q * w, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(RULES))
def test_bayes_risk_curvature_is_minus_w(name):
    rule = RULES[name]
    h = 1e-4 * np.minimum(Q, 1 - Q)
    second = (rule.bayes_risk(Q + h) - 2 * rule.bayes_risk(Q) + rule.bayes_risk(Q - h)) / h**2
    np.testing.assert_allclose(-second, rule.weight(Q), rtol=1e-4)
    np.testing.assert_allclose(rule.bayes_risk(Q), rule.expected_loss(Q, Q), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(RULES))
def test_strictly_proper_expected_loss_minimised_at_truth(name):
    rule = RULES[name]
    grid = np.linspace(1e-4, 1 - 1e-4, 20001)
    for p in (0.01, 0.13, 0.5, 0.77, 0.98):
        expected = rule.expected_loss(p, grid)
        assert abs(grid[np.argmin(expected)] - p) <= 1e-4
        assert np.all(rule.regret(p, grid[np.abs(grid - p) > 1e-3]) > 0)


@pytest.mark.parametrize("name", sorted(RULES))
def test_savage_form_and_symmetry(name):
    rule = RULES[name]
    l1, l0 = rule.partial_losses(Q)
    np.testing.assert_allclose(rule.savage_loss(Q, 1), l1, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rule.savage_loss(Q, 0), l0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rule.partial_losses(1 - Q)[0], l0, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(RULES))
def test_generic_recipe_reproduces_the_closed_form(name):
    rule = RULES[name]
    built = rule_from_weight(rule.weight_pair, name=f"numeric_{name}")
    q = np.array([0.002, 0.07, 0.5, 0.66, 0.999])
    for closed, numeric in zip(rule.partial_losses(q), built.partial_losses(q)):
        half = rule.partial_losses(np.array([0.5]))
        offset = half[0] if closed is rule.partial_losses(q)[0] else half[1]
        np.testing.assert_allclose(numeric, closed - offset, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(built.canonical_link(q), rule.canonical_link(q), rtol=1e-8, atol=1e-10)
    if name != "brier":  # the Brier canonical link only reaches (-1, 1)
        f = rule.canonical_link(q)
        np.testing.assert_allclose(built.canonical_link.inverse_q(f), q, rtol=1e-9)


def test_tailored_closed_form_and_weight_at_half():
    assert tailored_weight(0.5) == 48.0
    q = np.array([0.1, 0.5, 0.8])
    u = 1 / (q * (1 - q))
    np.testing.assert_allclose(tailored_weight(q), 2 * u * (u**2 - 2 * u - 2), rtol=1e-12)
    np.testing.assert_allclose(
        ate_loss(q, np.ones(3)), 1 / q**2 - 2 / (1 - q) + 2 * np.log(q * (1 - q)), rtol=1e-12
    )


def test_curvature_matching_recovers_the_tailored_weight():
    p = np.array([0.001, 0.02, 0.3, 0.5, 0.85, 0.999])
    np.testing.assert_allclose(curvature_weight(ipw_error_bound, p), tailored_weight(p), rtol=1e-6)
    assert np.all(ipw_error_bound(p, p) == 0)
    matched = rule_from_error(ipw_error_bound)
    q = np.array([0.05, 0.4])
    np.testing.assert_allclose(matched.canonical_link(q), RULES["tailored"].canonical_link(q), rtol=1e-5)


def test_validation_errors():
    with pytest.raises(ValueError, match="registered rules"):
        get_rule("hinge")
    with pytest.raises(ValueError, match=r"strictly inside \(0, 1\)"):
        RULES["log"].loss(np.array([0.0, 0.5]), np.array([1, 0]))
    with pytest.raises(ValueError, match="link"):
        RULES["log"].link("probit")
