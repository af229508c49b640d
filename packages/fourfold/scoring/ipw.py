"""Inverse-propensity-weighted ATE estimators (Horvitz-Thompson, Hajek, AIPW) with their diagnostics.

Nothing is clipped or trimmed unless asked: ``clip=c`` moves propensities into [c, 1-c], ``trim=c`` drops
units outside it, and the diagnostics say how many units either touched. Standard errors are the sample
standard deviation of each estimator's influence function over sqrt(n) (propensities treated as known).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METHODS = ("ht", "hajek", "aipw")
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class ATEResult:
    """An ATE estimate with its standard error, 95% interval and diagnostics."""

    estimate: float
    se: float
    method: str
    diagnostics: dict[str, float] = field(default_factory=dict)

    @property
    def ci(self) -> tuple[float, float]:
        """The normal 95% confidence interval."""
        return self.estimate - Z_95 * self.se, self.estimate + Z_95 * self.se

    def as_dict(self) -> dict[str, float]:
        low, high = self.ci
        return {"estimate": self.estimate, "se": self.se, "ci_low": low, "ci_high": high, **self.diagnostics}


def check_treatment(t, n: int | None = None) -> np.ndarray:
    """The treatment as a float array of 0/1; raises on anything else, on one class, or on a wrong length."""
    t = np.asarray(t)
    if t.ndim != 1:
        raise ValueError(f"treatment must be a 1-d array, got shape {t.shape}")
    if n is not None and len(t) != n:
        raise ValueError(
            f"treatment has {len(t)} entries but the outcome has {n}: pass arrays of equal length"
        )
    if len(t) == 0:
        raise ValueError("no rows: the treatment array is empty")
    if t.dtype == bool:
        t = t.astype(np.float64)
    values = np.unique(t)
    if not np.all(np.isin(values, (0, 1))):
        raise ValueError(f"treatment must be binary 0/1, got values {values[:5]}; encode it as 0/1")
    if len(values) < 2:
        raise ValueError("treatment has a single class: the ATE needs treated and control units")
    return t.astype(np.float64)


def check_propensity(q, n: int, used: np.ndarray | None = None) -> np.ndarray:
    """Propensities as float64 with length n, finite, and in (0, 1) wherever ``used`` (default: all) is
    True; raises with the fix otherwise. Units a trim drops may sit at exactly 0 or 1."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (n,):
        raise ValueError(f"propensity must have shape ({n},), got {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("propensity contains NaN or inf")
    inside = q if used is None else q[used]
    if np.any((inside <= 0) | (inside >= 1)):
        bad = int(np.sum((inside <= 0) | (inside >= 1)))
        raise ValueError(
            f"{bad} propensities lie outside (0, 1): IPW divides by them. Fix the model, or ask for "
            "clip=c or trim=c explicitly"
        )
    return q


def ipw_weights(t, q, *, normalize: bool = False) -> np.ndarray:
    """Unit weights T/q (treated) and (1-T)/(1-q) (control); with ``normalize`` each arm sums to 1."""
    t, q = np.asarray(t, dtype=np.float64), np.asarray(q, dtype=np.float64)
    w = np.where(t > 0.5, 1.0 / q, 1.0 / (1.0 - q))
    if normalize:
        w = np.where(t > 0.5, w / w[t > 0.5].sum(), w / w[t < 0.5].sum())
    return w


def effective_sample_size(weights) -> float:
    """Kish's ESS (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w * w)) if len(w) else 0.0


def _outcome_arrays(outcome, n: int) -> tuple[np.ndarray, np.ndarray]:
    if outcome is None:
        raise ValueError(
            "method='aipw' needs outcome=(mu0, mu1): predicted outcomes under control and treatment"
        )
    mu = np.asarray(outcome, dtype=np.float64)
    if mu.shape == (n, 2):
        mu = mu.T
    if mu.shape != (2, n) or not np.all(np.isfinite(mu)):
        raise ValueError(f"outcome must be finite (mu0, mu1) with {n} entries each, got shape {mu.shape}")
    return mu[0], mu[1]


def ate(
    y,
    t,
    propensity,
    method: str = "ht",
    outcome=None,
    *,
    clip: float | None = None,
    trim: float | None = None,
):
    """Estimate the ATE by IPW.

    Args:
        y: outcomes, shape (n,). t: treatment 0/1, shape (n,). propensity: P(T=1|x) in (0, 1), shape (n,).
        method: "ht" (Horvitz-Thompson), "hajek" (arm-normalised weights) or "aipw" (doubly robust).
        outcome: for AIPW, ``(mu0, mu1)`` predicted outcomes (shape (2, n) or (n, 2)).
        clip: move propensities into [clip, 1 - clip] (counted in ``n_clipped``).
        trim: drop units whose propensity lies outside [trim, 1 - trim] (counted in ``n_trimmed``).

    Returns:
        ``ATEResult`` with estimate, se, ci and diagnostics: ess, ess_treated, ess_control, min/max
        propensity (after clipping), n_clipped, n_trimmed, n_used.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise ValueError("outcome y must be a finite 1-d array")
    n = len(y)
    if n == 0:
        raise ValueError("no rows: y, t and propensity are empty")
    t = check_treatment(t, n)
    raw = np.asarray(propensity, dtype=np.float64)
    n_clipped = n_trimmed = 0
    keep = np.ones(n, dtype=bool)
    for name, value in (("clip", clip), ("trim", trim)):
        if value is not None and not 0 < value < 0.5:
            raise ValueError(f"{name} must lie in (0, 0.5), got {value}")
    if trim is not None:
        keep = (raw >= trim) & (raw <= 1 - trim)
        n_trimmed = int(n - keep.sum())
    if clip is not None:
        clipped = np.clip(raw, clip, 1 - clip)
        n_clipped = int(np.sum((clipped != raw) & keep))
        raw = clipped
    q = check_propensity(raw, n, used=keep)[keep]
    y, t = y[keep], t[keep]
    if len(np.unique(t)) < 2:
        raise ValueError("trimming left a single treatment arm: lower trim")
    m = len(y)
    w = ipw_weights(t, q)
    treated = t > 0.5
    if method == "ht":
        contrib = np.where(treated, y * w, -y * w)
        estimate = float(contrib.mean())
        influence = contrib - estimate
    elif method == "hajek":
        s1, s0 = (w * treated).mean(), (w * ~treated).mean()
        mu1 = np.sum(w * treated * y) / np.sum(w * treated)
        mu0 = np.sum(w * ~treated * y) / np.sum(w * ~treated)
        estimate = float(mu1 - mu0)
        influence = np.where(treated, w * (y - mu1) / s1, -w * (y - mu0) / s0)
    else:
        mu0, mu1 = _outcome_arrays(outcome, n)
        mu0, mu1 = mu0[keep], mu1[keep]
        contrib = mu1 - mu0 + np.where(treated, (y - mu1) * w, -(y - mu0) * w)
        estimate = float(contrib.mean())
        influence = contrib - estimate
    se = float(np.std(influence, ddof=1) / np.sqrt(m)) if m > 1 else float("nan")
    ess_t, ess_c = effective_sample_size(w[treated]), effective_sample_size(w[~treated])
    diagnostics = {
        "ess": ess_t + ess_c,
        "ess_treated": ess_t,
        "ess_control": ess_c,
        "min_propensity": float(q.min()),
        "max_propensity": float(q.max()),
        "n_clipped": float(n_clipped),
        "n_trimmed": float(n_trimmed),
        "n_used": float(m),
    }
    return ATEResult(estimate, se, method, diagnostics)


def ate_from_weights(y, t, weights) -> ATEResult:
    """Hajek-type estimate from unit weights (e.g. entropy balancing; normalised per arm), with the
    influence-function SE (weights treated as fixed) and ESS diagnostics; no propensities exist here."""
    y, t, w = np.asarray(y, float), np.asarray(t) > 0.5, np.asarray(weights, float)
    w1, w0 = w[t] / w[t].sum(), w[~t] / w[~t].sum()
    mu1, mu0 = w1 @ y[t], w0 @ y[~t]
    n = len(y)
    influence = np.zeros(n)
    influence[t] = w1 * n * (y[t] - mu1)
    influence[~t] = -w0 * n * (y[~t] - mu0)
    se = float(np.std(influence, ddof=1) / np.sqrt(n))
    ess_t, ess_c = effective_sample_size(w1), effective_sample_size(w0)
    diagnostics = {
        "ess": ess_t + ess_c,
        "ess_treated": ess_t,
        "ess_control": ess_c,
        "min_propensity": np.nan,
        "max_propensity": np.nan,
        "n_clipped": 0.0,
        "n_trimmed": 0.0,
        "n_used": float(n),
    }
    return ATEResult(float(mu1 - mu0), se, "hajek", diagnostics)


def weighted_mean_difference(x, t, weights) -> np.ndarray:
    """Per column of x: weighted treated mean minus weighted control mean (weights normalised per arm)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t) > 0.5
    w = np.asarray(weights, dtype=np.float64)
    return (w[t] @ x[t]) / w[t].sum() - (w[~t] @ x[~t]) / w[~t].sum()


def cross_fitted_outcomes(x, t, y, *, folds: int = 2, seed: int = 0) -> np.ndarray:
    """``(mu0, mu1)`` from per-arm linear regressions, each unit predicted by models fit on other folds."""
    from sklearn.linear_model import LinearRegression

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    t = np.asarray(t) > 0.5
    n = len(y)
    fold = np.random.default_rng(seed).permutation(n) % folds
    mu = np.zeros((2, n))
    for k in range(folds):
        train, test = fold != k, fold == k
        for arm in (0, 1):
            rows = train & (t == bool(arm))
            model = LinearRegression().fit(x[rows], y[rows]) if rows.sum() > x.shape[1] else None
            mu[arm, test] = model.predict(x[test]) if model is not None else y[rows].mean()
    return mu
