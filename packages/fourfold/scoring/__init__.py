"""Tailored strictly proper scoring rules for IPW estimation of the ATE (Plaud, Perez-Lebel et al., 2026).

Public API::

    ate_weight(q), ate_loss(q, y), ate_link(q), ate_link_inverse(f)   # the tailored ATE-IPW rule
    PropensityClassifier(learner="linear"|"mlp"|"xgboost", loss="tailored"|"log"|...)  # sklearn estimator
    ate(y, t, propensity, method="ht"|"hajek"|"aipw", outcome=None)   # estimate, SE and diagnostics
"""

from fourfold.scoring.link import tailored_link as ate_link
from fourfold.scoring.link import tailored_link_inverse, to_q
from fourfold.scoring.rules import RULES, get_rule, rule_from_weight

__all__ = [
    "ate_weight",
    "ate_loss",
    "ate_link",
    "ate_link_inverse",
    "PropensityClassifier",
    "ate",
    "RULES",
    "get_rule",
    "rule_from_weight",
]


def ate_weight(q):
    """w(q) = 2/q^2 + 2/(1-q)^2 + 2/q^3 + 2/(1-q)^3 for q in (0, 1); w(1/2) = 48."""
    return RULES["tailored"].weight(q)


def ate_loss(q, y):
    """The tailored ATE-IPW partial loss l(q, y) per sample, y in {0, 1}."""
    return RULES["tailored"].loss(q, y)


def ate_link_inverse(f, *, split: bool = False):
    """q = psi^-1(f) in float64 by Newton on the quartic (no propensity floor, exact for |f| >> 1e8).

    With ``split=True`` returns ``(m, side)``: m = min(q, 1-q), side = -1 where q = m, +1 where q = 1 - m.
    """
    m, side = tailored_link_inverse(f)
    return (m, side) if split else to_q(m, side)


def __getattr__(name):
    # Lazy: the learners pull in torch/xgboost/sklearn, which the math functions above do not need.
    if name == "PropensityClassifier":
        from fourfold.scoring.learners import PropensityClassifier

        return PropensityClassifier
    if name == "ate":
        from fourfold.scoring.ipw import ate

        return ate
    raise AttributeError(f"module 'fourfold.scoring' has no attribute {name!r}")
