"""Binary strictly proper scoring rules defined by their weight (curvature) function w(q) > 0.

Schervish/Savage: a rule is proper iff ``d/dq l(q,1) = -(1-q) w(q)`` and ``d/dq l(q,0) = q w(q)``; its Bayes
risk H has ``-H'' = w`` and ``l(q,y) = H(q) - (y - q) psi(q)`` with the canonical link ``psi' = w``,
``psi(1/2) = 0`` (for the symmetric rules here, H'(q) = -psi(q)). All rules here are symmetric:
``l(q,0) = l(1-q,1)``, so a rule is its weight and its partial loss ``l(q,1)``, both written on the pair
``(q, 1-q)`` so that callers holding an exact ``1 - q`` lose no precision.

``rule_from_weight`` builds any rule numerically from w alone (quadrature for the losses and the link,
bisection for the link's inverse); the registered closed forms are checked against it in the tests.
``ipw_error_bound`` and ``curvature_weight`` recover the tailored ATE-IPW weight by curvature matching.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fourfold.scoring import link as links

Array = np.ndarray
PairFn = Callable[[Array, Array], Array]


@dataclass(frozen=True)
class ScoringRule:
    """A symmetric binary proper scoring rule.

    Attributes:
        name: registry name.
        weight_pair: w(q) from ``(q, 1-q)``.
        loss1_pair: l(q, 1) from ``(q, 1-q)``; l(q, 0) = l(1-q, 1).
        canonical_link: the link with psi' = w, psi(1/2) = 0.
        default_link: the link learners use unless told otherwise ("canonical" or "logit").
        bayes_risk_closed: H(p) in closed form, if known (else computed from the losses).
    """

    name: str
    weight_pair: PairFn
    loss1_pair: PairFn
    canonical_link: links.Link
    default_link: str = "canonical"
    bayes_risk_closed: Callable[[Array], Array] | None = None

    def weight(self, q) -> Array:
        """w(q) for q in (0, 1)."""
        q = _as_prob(q)
        return self.weight_pair(q, 1.0 - q)

    def loss_pair(self, q: Array, qbar: Array, y) -> Array:
        """l(q, y) per sample, from exact ``q`` and ``qbar = 1 - q``; y in {0, 1}."""
        y = np.asarray(y, dtype=np.float64)
        return np.where(y > 0.5, self.loss1_pair(q, qbar), self.loss1_pair(qbar, q))

    def loss(self, q, y) -> Array:
        """l(q, y) per sample (y in {0, 1})."""
        q = _as_prob(q)
        return self.loss_pair(q, 1.0 - q, y)

    def partial_losses(self, q) -> tuple[Array, Array]:
        """``(l(q, 1), l(q, 0))``."""
        q = _as_prob(q)
        return self.loss1_pair(q, 1.0 - q), self.loss1_pair(1.0 - q, q)

    def expected_loss(self, p, q) -> Array:
        """E_{T ~ Bernoulli(p)} l(q, T)."""
        l1, l0 = self.partial_losses(q)
        return np.asarray(p) * l1 + (1.0 - np.asarray(p)) * l0

    def bayes_risk(self, p) -> Array:
        """H(p) = min_q E_{T ~ p} l(q, T) = p l(p,1) + (1-p) l(p,0)."""
        p = _as_prob(p)
        if self.bayes_risk_closed is not None:
            return self.bayes_risk_closed(p)
        return self.expected_loss(p, p)

    def savage_loss(self, q, y) -> Array:
        """l(q, y) rebuilt from the Bayes risk and the canonical link: H(q) - (y - q) psi(q)."""
        q = _as_prob(q)
        return self.bayes_risk(q) - (np.asarray(y, dtype=np.float64) - q) * self.canonical_link(q)

    def regret(self, p, q) -> Array:
        """The Bregman divergence E_p l(q, T) - H(p) >= 0, zero only at q = p."""
        return self.expected_loss(p, q) - self.bayes_risk(p)

    def link(self, name: str | None = None) -> links.Link:
        """The named link (``"canonical"``, ``"logit"``; None = the rule's default)."""
        name = name or self.default_link
        if name == "canonical":
            return self.canonical_link
        if name == "logit":
            return links.LOGIT
        raise ValueError(f"unknown link {name!r}: use 'canonical' or 'logit'")


def _as_prob(q) -> Array:
    q = np.asarray(q, dtype=np.float64)
    if not np.all((q > 0) & (q < 1)):
        raise ValueError("propensities must lie strictly inside (0, 1); clip explicitly if you must")
    return q


# --- closed forms ---


def tailored_weight(q, qbar=None) -> Array:
    """w(q) = 2/q^2 + 2/(1-q)^2 + 2/q^3 + 2/(1-q)^3, the curvature of the IPW error bound."""
    q = np.asarray(q, dtype=np.float64)
    qbar = 1.0 - q if qbar is None else qbar
    return 2.0 / q**2 + 2.0 / qbar**2 + 2.0 / q**3 + 2.0 / qbar**3


def _tailored_loss1(q, qbar):
    return 1.0 / q**2 - 2.0 / qbar + 2.0 * (np.log(q) + np.log(qbar))


def _tailored_bayes(p):
    u = 1.0 / (p * (1.0 - p))
    return 4.0 - u - 2.0 * np.log(u)


def _zhao_link(q):
    return 1.0 / (1.0 - q) - 1.0 / q + 2.0 * links.logit(q)


def _brier_link_inverse(f):
    f = links._as_scores(f)
    if np.any(np.abs(f) >= 1):
        raise ValueError("the Brier canonical link 2q - 1 only reaches (-1, 1): use link='logit'")
    return (1.0 - np.abs(f)) / 2.0, links._side(f)


TAILORED_LINK = links.Link(
    "tailored", links.tailored_link, links.tailored_link_inverse, lambda q, qb: tailored_weight(q, qb)
)

RULES: dict[str, ScoringRule] = {
    "log": ScoringRule(
        "log",
        lambda q, qb: 1.0 / (q * qb),
        lambda q, qb: -np.log(q),
        links.LOGIT,
        bayes_risk_closed=lambda p: -p * np.log(p) - (1 - p) * np.log1p(-p),
    ),
    "brier": ScoringRule(
        "brier",
        lambda q, qb: np.full(np.shape(q), 2.0),
        lambda q, qb: qb**2,
        links.Link(
            "brier", lambda q: 2.0 * q - 1.0, _brier_link_inverse, lambda q, qb: np.full(np.shape(q), 2.0)
        ),
        default_link="logit",
        bayes_risk_closed=lambda p: p * (1 - p),
    ),
    "exponential": ScoringRule(
        "exponential",
        lambda q, qb: (q * qb) ** -1.5,
        lambda q, qb: 2.0 * np.sqrt(qb / q),
        links.Link(
            "exponential",
            links.exponential_link,
            links.exponential_link_inverse,
            lambda q, qb: (q * qb) ** -1.5,
        ),
        bayes_risk_closed=lambda p: 4.0 * np.sqrt(p * (1 - p)),
    ),
    "zhao": ScoringRule(
        "zhao",
        lambda q, qb: (q * qb) ** -2.0,
        # T(e^-f - f) with f = logit q: Zhao's (2019) ATE rule, the just-identified CBPS objective
        lambda q, qb: qb / q - (np.log(q) - np.log(qb)),
        links.Link(
            "zhao",
            _zhao_link,
            lambda f: links.bisection_link_inverse(_zhao_link, f),
            lambda q, qb: (q * qb) ** -2.0,
        ),
        default_link="logit",
        bayes_risk_closed=lambda p: 1.0 + (1 - 2 * p) * links.logit(p),
    ),
    "tailored": ScoringRule(
        "tailored", tailored_weight, _tailored_loss1, TAILORED_LINK, bayes_risk_closed=_tailored_bayes
    ),
}


def get_rule(name: str | ScoringRule) -> ScoringRule:
    """A registered rule by name (or the rule itself)."""
    if isinstance(name, ScoringRule):
        return name
    if name not in RULES:
        raise ValueError(f"unknown loss {name!r}; registered rules: {sorted(RULES)}")
    return RULES[name]


def register_rule(rule: ScoringRule) -> ScoringRule:
    """Add a rule (e.g. from ``rule_from_weight``) to the registry so every learner can use it by name."""
    RULES[rule.name] = rule
    return rule


# --- the generic recipe: any w -> rule, numerically --------------------------------------------------------


def _integrate_logit_space(integrand_q: Callable[[float, float], float], q: float) -> float:
    """int_{1/2}^{q} g(t) dt, computed as int_0^{logit q} g(t) t (1-t) ds (smooth even where g blows up)."""
    from scipy.integrate import IntegrationWarning, quad

    s_end = float(np.log(q) - np.log1p(-q))

    def in_s(s):
        t = 1.0 / (1.0 + np.exp(-s))
        tb = 1.0 / (1.0 + np.exp(s))
        return integrand_q(t, tb) * t * tb

    with warnings.catch_warnings():
        # quad flags roundoff once it is at machine precision; the tests bound the actual error
        warnings.simplefilter("ignore", IntegrationWarning)
        value, _ = quad(in_s, 0.0, s_end, epsabs=0.0, epsrel=1e-10, limit=200)
    return value


def rule_from_weight(weight: PairFn, name: str = "custom") -> ScoringRule:
    """The symmetric proper rule with weight ``w(q, 1-q)`` (w > 0, w(q) = w(1-q)), built numerically.

    l(q,1) = int_q^{1/2} (1-t) w(t) dt, psi(q) = int_{1/2}^q w(t) dt, the inverse link by bisection. So the
    losses equal a closed form's up to an additive constant (l(1/2, y) = 0 here).
    """

    def loss1(q, qb):
        q = np.atleast_1d(np.asarray(q, dtype=np.float64))
        return np.array([-_integrate_logit_space(lambda t, tb: tb * weight(t, tb), float(x)) for x in q])

    def psi(q):
        q = np.atleast_1d(np.asarray(q, dtype=np.float64))
        return np.array([_integrate_logit_space(weight, float(x)) for x in q])

    link = links.Link(name, psi, lambda f: links.bisection_link_inverse(psi, f), weight)
    return ScoringRule(name, weight, loss1, link)


# --- curvature matching ---


def ipw_error_bound(p, q) -> Array:
    """D(p, q): squared bias plus second-moment error of IPW when q replaces p, for outcomes |Y| <= 1.

    Treated arm: bias (p - q)^2 / q^2, second moment (p - q)^2 / (p q^2); the control arm mirrors it with
    1 - p, 1 - q. D(p, p) = 0 and D >= 0.
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    d2 = (p - q) ** 2
    return d2 / q**2 + d2 / (p * q**2) + d2 / (1 - q) ** 2 + d2 / ((1 - p) * (1 - q) ** 2)


def curvature_weight(error: Callable[[Array, Array], Array], p, rel_step: float = 1e-4) -> Array:
    """w(p) = d^2/dq^2 D(p, q) at q = p, by a central second difference (step rel_step * min(p, 1-p))."""
    p = _as_prob(p)
    h = rel_step * np.minimum(p, 1.0 - p)
    return (error(p, p + h) - 2.0 * error(p, p) + error(p, p - h)) / h**2


def rule_from_error(error: Callable[[Array, Array], Array], name: str = "matched") -> ScoringRule:
    """Curvature matching: the rule whose regret matches the downstream error D to second order."""
    return rule_from_weight(lambda q, qb: curvature_weight(error, q), name)
