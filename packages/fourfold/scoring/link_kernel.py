"""The tailored link's boosting objective, compiled (numba): the quartic's root, q - y and 1/w per row.

``link.tailored_grad_hess`` computes the same in numpy, where every Newton step costs a dozen array
temporaries; XGBoost calls this once per boosting round. Here a branch-free pass runs a fixed number of
Newton steps on every row (SIMD-friendly), then any row whose last step was not yet negligible (the
stopping rule of ``link.tailored_excess_newton``: a step of at most 1e-9 e, after which the error is
~1e-18 relative) finishes with the per-row loop. The accuracy is therefore the numpy path's.
Compiled on first use and cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FIXED_STEPS = 4  # warm-started rows converge in 2-3 steps; the rest finish in the per-row loop
MAX_NEWTON_STEPS = 100
HUGE = 1e100  # beyond this |f|, e = sqrt|f| - 4 (f^2 would overflow)


@njit(cache=True, inline="always")
def _newton_step(e, f2):
    p = e * (144.0 + e * (84.0 + e * (16.0 + e))) - f2
    dp = 144.0 + e * (168.0 + e * (48.0 + 4.0 * e))
    return p / dp


@njit(cache=True)
def _finish_root(a, e):
    """Newton from any e >= 0 to the root e = u - 4 of the quartic for |f| = a (the per-row slow path)."""
    if a > HUGE:
        return np.sqrt(a) - 4.0
    f2 = a * a
    e = max(e - _newton_step(e, f2), 0.0)  # one free step from any e >= 0 lands above the root (convexity)
    for _ in range(MAX_NEWTON_STEPS):
        step = max(_newton_step(e, f2), 0.0)
        e -= step
        if step <= 1e-9 * e:
            break
    return max(e, 0.0)


@njit(cache=True, error_model="numpy")
def _fixed_steps(f, start, excess, last_step):
    for i in range(f.shape[0]):
        a = abs(f[i])
        f2 = a * a
        e = start[i]
        step = 0.0
        for k in range(FIXED_STEPS):
            step = _newton_step(e, f2)
            if k > 0:
                step = max(step, 0.0)  # from above the root steps are >= 0; less is rounding noise
            e = max(e - step, 0.0)
        excess[i] = e
        last_step[i] = step


@njit(cache=True, error_model="numpy")
def _outputs(f, y, excess, grad, hess):
    for i in range(f.shape[0]):
        e = excess[i]
        u = 4.0 + e
        m = (2.0 / u) / (1.0 + np.sqrt(e / u))
        q = m if f[i] < 0.0 else 1.0 - m
        grad[i] = q - 1.0 if y[i] > 0.5 else q  # q - y; for f < 0 and y = 1, m - 1 is exact
        hess[i] = 1.0 / (2.0 * u * (u * u - 2.0 * u - 2.0))


@njit(cache=True)
def _cold_start(f):
    """The upper bounds of ``link.tailored_excess_newton``: min(2 + sqrt|f|, f^2/144), tightened twice."""
    start = np.empty(f.shape[0])
    for i in range(f.shape[0]):
        a = min(abs(f[i]), HUGE)
        f2 = a * a
        e = min(2.0 + np.sqrt(a), f2 / 144.0)
        for _ in range(2):
            e = min(e, np.sqrt(6.0 + np.sqrt(36.0 + 16.0 * (e + 4.0) + f2)) - 4.0)
        start[i] = e
    return start


@njit(cache=True)
def _tailored_grad_hess(f, y, start):
    n = f.shape[0]
    excess, last_step = np.empty(n), np.empty(n)
    _fixed_steps(f, start, excess, last_step)
    for i in range(n):
        if not (last_step[i] <= 1e-9 * excess[i]) or abs(f[i]) > HUGE:
            excess[i] = _finish_root(abs(f[i]), excess[i] if np.isfinite(excess[i]) else 0.0)
    grad, hess = np.empty(n), np.empty(n)
    _outputs(f, y, excess, grad, hess)
    return grad, hess, excess


def tailored_grad_hess_compiled(f, y, start=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q - y, 1/w(q), e)`` for the tailored rule with its canonical link, as ``link.tailored_grad_hess``
    (same start, step and stopping rule); ``start`` is a warm start for e >= 0, e.g. the previous round's."""
    f = np.ascontiguousarray(f, dtype=np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError("raw scores must be finite; got NaN or inf (check the model's outputs)")
    y = np.ascontiguousarray(y, dtype=np.float64)
    if start is None or np.shape(start) != f.shape:
        start = _cold_start(f)
    else:
        start = np.maximum(np.ascontiguousarray(start, dtype=np.float64), 0.0)
    return _tailored_grad_hess(f, y, start)
