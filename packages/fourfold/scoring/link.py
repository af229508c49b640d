"""Links between propensities q in (0, 1) and raw scores f in R, and the loss in raw-score space.

Every inverse returns ``(m, side)`` in float64: ``m = min(q, 1 - q)`` and ``side = -1`` where q = m
(f < 0), ``+1`` where q = 1 - m. Keeping m instead of q keeps ``1/(1-q)`` and ``q - y`` exact near 1.

The tailored ATE-IPW link is ``psi(q) = (2q - 1)(u^2 + 2u)`` with ``u = 1/(q(1-q))``; its inverse solves the
depressed quartic ``u^4 - 12u^2 - 16u - f^2 = 0`` (u >= 4) by Newton from above, which converges
monotonically and has no propensity floor. Ferrari's closed form is kept as a cross-check only: it loses
accuracy beyond |f| ~ 1e4 and saturates near q ~ 3.5e-4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


def to_q(m: Array, side: Array) -> Array:
    """The propensity q from ``(m, side)``."""
    return np.where(side < 0, m, 1.0 - m)


def q_and_complement(m: Array, side: Array) -> tuple[Array, Array]:
    """``(q, 1 - q)``, each exact (no cancellation) from ``(m, side)``."""
    return np.where(side < 0, m, 1.0 - m), np.where(side < 0, 1.0 - m, m)


def split_q(q) -> tuple[Array, Array]:
    """``(m, side)`` for propensities q (the inverse of ``to_q``)."""
    q = np.asarray(q, dtype=np.float64)
    side = np.where(q < 0.5, -1.0, 1.0)
    return np.minimum(q, 1.0 - q), side


def _as_scores(f) -> Array:
    f = np.asarray(f, dtype=np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError("raw scores must be finite; got NaN or inf (check the model's outputs)")
    return f


def _side(f: Array) -> Array:
    return np.where(f < 0, -1.0, 1.0)


def m_from_u(u: Array) -> Array:
    """``min(q, 1-q)`` from ``u = 1/(q(1-q)) >= 4``, written without cancellation."""
    return (2.0 / u) / (1.0 + np.sqrt(np.maximum(1.0 - 4.0 / u, 0.0)))


# --- tailored ATE-IPW link -------------------------------------------------------------------------------


def tailored_link(q) -> Array:
    """psi(q) = 1/(1-q)^2 - 1/q^2 + 2/(1-q) - 2/q, strictly increasing, psi(1/2) = 0."""
    q = np.asarray(q, dtype=np.float64)
    qbar = 1.0 - q
    u = 1.0 / (q * qbar)
    return (q - qbar) * (u * u + 2.0 * u)


def _quartic_newton_step(e, f2):
    p = e * (144.0 + e * (84.0 + e * (16.0 + e))) - f2
    dp = 144.0 + e * (168.0 + e * (48.0 + 4.0 * e))
    return p / dp


def tailored_excess_newton(f, max_iter: int = 100, start=None) -> Array:
    """e = u - 4 >= 0 where u >= 4 is the root of ``u^4 - 12u^2 - 16u - f^2``, by Newton from above.

    In e the quartic reads ``P(e) = e^4 + 16e^3 + 84e^2 + 144e - f^2`` (no cancellation for small f, so
    q - 1/2 stays exact near f = 0). P is increasing and convex on e >= 0, so from a start above the root
    the iterates decrease monotonically. The default start is the smaller of two upper bounds, tightened
    by fixed-point steps; that start, or a warm ``start`` (any e >= 0, e.g. the previous boosting round's
    root), takes one free Newton step first, which lands above the root by convexity (or stays on it).
    For |f| > 1e100, e = sqrt|f| - 4.
    """
    a = np.abs(_as_scores(f))
    huge = a > 1e100
    a_work = np.where(huge, 0.0, a)
    f2 = a_work * a_work
    if start is None:
        # Upper bounds on the root (P > 0 there): 2 + sqrt|f| (large f) and f^2/144 (small f) ...
        e = np.minimum(2.0 + np.sqrt(a_work), f2 / 144.0)
        # ... tightened by u <- sqrt(6 + sqrt(36 + 16u + f^2)), which decreases towards the root. For tiny
        # |f| the "- 4" cancels and can land below the root, which the free step below undoes.
        for _ in range(2):
            e = np.minimum(e, np.sqrt(6.0 + np.sqrt(36.0 + 16.0 * (e + 4.0) + f2)) - 4.0)
    else:
        e = np.where(huge, 0.0, np.maximum(np.asarray(start, dtype=np.float64), 0.0))
    e = np.maximum(e - _quartic_newton_step(e, f2), 0.0)  # from any e >= 0 this lands above the root
    for _ in range(max_iter):
        # From above the step is positive; a negative one is rounding noise at the root.
        step = np.maximum(_quartic_newton_step(e, f2), 0.0)
        e = e - step
        # Quadratic convergence: after a step of relative size 1e-9 the error is ~1e-18 relative.
        if np.all(step <= 1e-9 * e):
            break
    return np.where(huge, np.sqrt(a) - 4.0, np.maximum(e, 0.0))


def tailored_u_newton(f) -> Array:
    """The root u >= 4 of ``u^4 - 12u^2 - 16u - f^2`` (see ``tailored_excess_newton``)."""
    return 4.0 + tailored_excess_newton(f)


def tailored_link_inverse(f) -> tuple[Array, Array]:
    """``(m, side)`` with psi(q) = f, by Newton on the quartic in float64 (no floor on m)."""
    f = _as_scores(f)
    e = tailored_excess_newton(f)
    u = 4.0 + e
    return (2.0 / u) / (1.0 + np.sqrt(e / u)), _side(f)


def tailored_grad_hess(f, y, start=None) -> tuple[Array, Array, Array]:
    """``q - y``, ``1/w(q) = 1/(2u(u^2 - 2u - 2))`` and the root e = u - 4 for the tailored rule with its
    canonical link, straight from the quartic's root (the fast path of boosting objectives; ``start`` is
    a warm start for the root, e.g. the previous round's)."""
    f = _as_scores(f)
    e = tailored_excess_newton(f, start=start)
    u = 4.0 + e
    m = (2.0 / u) / (1.0 + np.sqrt(e / u))
    treated = np.asarray(y) > 0.5
    negative = f < 0
    # q - y with q = m (f < 0) or 1 - m (f >= 0), exact in every case
    residual = np.where(treated, np.where(negative, m - 1.0, -m), np.where(negative, m, 1.0 - m))
    with np.errstate(over="ignore"):  # |f| > ~1e200: 1/w underflows to 0 either way
        return residual, 1.0 / (2.0 * u * (u * u - 2.0 * u - 2.0)), e


def tailored_link_inverse_ferrari(f) -> tuple[Array, Array]:
    """The closed-form (Ferrari) inverse: a cross-check, accurate for |f| up to about 1e3."""
    f = _as_scores(f)
    a_coef = f * f / 4.0 - 3.0
    b_coef = f * f / 2.0 - 2.0
    disc = (b_coef / 2.0) ** 2 + (a_coef / 3.0) ** 3
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        v_cardano = np.cbrt(-b_coef / 2.0 + sq) + np.cbrt(-b_coef / 2.0 - sq)
        k = np.sqrt(np.maximum(-a_coef / 3.0, 0.0))
        arg = np.clip(-b_coef / (2.0 * k**3), -1.0, 1.0)
        v_trig = 2.0 * k * np.cos(np.arccos(arg) / 3.0)
    v = np.where(disc > 0, v_cardano, v_trig)
    z = 4.0 * (v + 2.0)
    rz = np.sqrt(z)
    u = 0.5 * (rz + np.sqrt(24.0 - z + 32.0 / rz))
    return m_from_u(u), _side(f)


# --- other closed-form links -------------------------------------------------------------------------------


def logit(q) -> Array:
    """log(q / (1 - q))."""
    q = np.asarray(q, dtype=np.float64)
    return np.log(q) - np.log1p(-q)


def logit_inverse(f) -> tuple[Array, Array]:
    """``(m, side)`` of the sigmoid, m = e^-|f| / (1 + e^-|f|) (exact for every finite f, never overflows)."""
    f = _as_scores(f)
    small = np.exp(-np.abs(f))
    return small / (1.0 + small), _side(f)


def exponential_link(q) -> Array:
    """Canonical link of boosting's exponential rule: 2(2q - 1)/sqrt(q(1-q))."""
    q = np.asarray(q, dtype=np.float64)
    return 2.0 * (2.0 * q - 1.0) / np.sqrt(q * (1.0 - q))


def exponential_link_inverse(f) -> tuple[Array, Array]:
    """``(m, side)``: q(1-q) = 1/(4 + f^2/4), solved without cancellation."""
    f = _as_scores(f)
    return m_from_u(4.0 + f * f / 4.0), _side(f)


def bisection_link_inverse(link: Callable[[Array], Array], f, iterations: int = 80) -> tuple[Array, Array]:
    """Monotone root finding for any strictly increasing link with psi(1/2) = 0: bisection in logit space.

    The bracket is logit q in [-745, 0] (m >= 5e-324): 80 halvings reach double precision in logit q, i.e.
    relative precision ~1e-16 in m. Raises if f lies outside the link's range.
    """
    f = _as_scores(f)
    a = np.abs(f)
    # psi is odd about 1/2 for every symmetric rule: solve psi(m) = -|f| for m <= 1/2.
    lo = np.full(a.shape, -745.0)
    hi = np.zeros(a.shape)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        lowest = link(1.0 / (1.0 + np.exp(-lo)))
        if np.any(lowest > -a):
            raise ValueError(
                f"score(s) outside the link's range (|f| up to {float(-np.max(lowest)):.4g}): "
                "use a link that maps onto the whole real line, such as 'logit'"
            )
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = link(1.0 / (1.0 + np.exp(-mid))) < -a
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
    s = 0.5 * (lo + hi)
    return 1.0 / (1.0 + np.exp(-s)), _side(f)


@dataclass(frozen=True)
class Link:
    """A strictly increasing map q -> f with its inverse ``(m, side)`` and ``dq/df`` at q."""

    name: str
    forward: Callable[[Array], Array]
    inverse: Callable[[Array], tuple[Array, Array]]
    # df/dq as a function of (q, 1 - q); the canonical link of a rule has df/dq = w(q)
    slope: Callable[[Array, Array], Array]

    def __call__(self, q) -> Array:
        return self.forward(np.asarray(q, dtype=np.float64))

    def inverse_q(self, f) -> Array:
        """The propensity q for raw scores f."""
        return to_q(*self.inverse(f))


LOGIT = Link("logit", logit, logit_inverse, lambda q, qb: 1.0 / (q * qb))


# --- the loss in raw-score space ---------------------------------------------------------------------------


def raw_loss_grad_hess(rule, link: Link, f, y) -> tuple[Array, Array, Array]:
    """Per-sample loss ``l(psi^-1(f), y)``, its gradient and a positive Hessian in f (float64 arrays).

    With the rule's canonical link (df/dq = w) the gradient is ``q - y`` and the Hessian ``1/w(q)``, both
    exact. With another link the gradient is ``(q - y) w(q) dq/df`` and the Hessian returned is the
    expected (Fisher) one, ``w(q) (dq/df)^2``, which stays positive where the exact one need not.
    """
    f = _as_scores(f)
    y = np.asarray(y, dtype=np.float64)
    q, qbar = q_and_complement(*link.inverse(f))
    loss = rule.loss_pair(q, qbar, y)
    residual = np.where(y > 0.5, -qbar, q)  # q - y, exact for y in {0, 1}
    w = rule.weight_pair(q, qbar)
    if link.name == rule.canonical_link.name:
        with np.errstate(divide="ignore"):
            return loss, residual, 1.0 / w
    dq_df = 1.0 / link.slope(q, qbar)
    return loss, residual * w * dq_df, w * dq_df * dq_df


def raw_grad_hess(rule, link: Link, f, y) -> tuple[Array, Array]:
    """Gradient and Hessian of ``raw_loss_grad_hess`` without the loss value (for boosting objectives)."""
    if link.name == "tailored" and rule.canonical_link.name == "tailored":
        return tailored_grad_hess(f, y)[:2]
    f = _as_scores(f)
    y = np.asarray(y, dtype=np.float64)
    q, qbar = q_and_complement(*link.inverse(f))
    residual = np.where(y > 0.5, -qbar, q)
    w = rule.weight_pair(q, qbar)
    if link.name == rule.canonical_link.name:
        return residual, 1.0 / w
    dq_df = 1.0 / link.slope(q, qbar)
    return residual * w * dq_df, w * dq_df * dq_df


def tailored_raw_loss_grad(f, y) -> tuple[Array, Array]:
    """L(f, y) = (q - y) f - u - 2 ln u + 4 and its gradient q - y, with q = psi^-1(f), u = 1/(q(1-q))
    (the tailored rule on its canonical link; the fast path of the torch loss)."""
    f = _as_scores(f)
    e = tailored_excess_newton(f)
    u = 4.0 + e
    m = (2.0 / u) / (1.0 + np.sqrt(e / u))
    treated = np.asarray(y) > 0.5
    negative = f < 0
    residual = np.where(treated, np.where(negative, m - 1.0, -m), np.where(negative, m, 1.0 - m))
    return residual * f - u - 2.0 * np.log(u) + 4.0, residual


def tailored_raw_loss(f, y) -> Array:
    """L(f, y) = (q - y) f - u - 2 ln u + 4 with q = psi^-1(f), u = 1/(q(1-q)) (the tailored rule)."""
    return tailored_raw_loss_grad(f, y)[0]


# --- torch glue ---


_TORCH_FUNCTION = None


def _torch_function():
    """The autograd Function (built once, on first use, so importing this module needs no torch)."""
    global _TORCH_FUNCTION
    if _TORCH_FUNCTION is None:
        import torch

        class RawScoreLoss(torch.autograd.Function):
            @staticmethod
            def forward(ctx, f, y, rule, link):
                f64 = f.detach().to("cpu", torch.float64).numpy().reshape(-1)
                y64 = y.detach().to("cpu", torch.float64).numpy().reshape(-1)
                if link.name == "tailored" and rule.canonical_link.name == "tailored":
                    loss, grad = tailored_raw_loss_grad(f64, y64)
                else:
                    loss, grad, _ = raw_loss_grad_hess(rule, link, f64, y64)
                scaled = torch.from_numpy(grad / max(len(f64), 1)).to(device=f.device, dtype=f.dtype)
                ctx.save_for_backward(scaled.reshape(f.shape))
                return torch.as_tensor(loss.mean(), dtype=f.dtype, device=f.device)

            @staticmethod
            def backward(ctx, grad_output):
                (grad,) = ctx.saved_tensors
                return grad_output * grad, None, None, None

        _TORCH_FUNCTION = RawScoreLoss
    return _TORCH_FUNCTION


def torch_raw_loss(rule, link: Link, scores, targets):
    """Mean raw-score loss as a torch scalar whose gradient w.r.t. ``scores`` is the exact per-sample
    gradient over N (``(q - y)/N`` for the canonical link), computed in float64 by ``raw_loss_grad_hess``.
    """
    return _torch_function().apply(scores, targets, rule, link)
