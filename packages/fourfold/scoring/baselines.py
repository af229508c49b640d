"""The comparison methods: scoring-rule propensity models (with optional clip, trim or calibration) and
covariate balancing (over-identified CBPS by GMM, entropy balancing by its convex dual).

Every method returns a ``MethodOutput``: propensities (for rule-based models) or unit weights (for entropy
balancing), plus the clip/trim it asks ``ipw.ate`` for, so no post-processing is hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fourfold.scoring.ipw import check_treatment


@dataclass(frozen=True)
class Method:
    """A way to get IPW weights: a rule (+ link) for a propensity model, or a balancing solver."""

    name: str
    loss: str | None = None  # registered rule for a propensity model
    link: str | None = None  # None = the rule's default link
    clip: float | None = None
    trim: float | None = None
    calibration: str | None = None  # "isotonic" | "sigmoid" (Platt), fitted by 3-fold cross-validation
    balancing: str | None = None  # "cbps_over" | "ebal": learner-free, linear in the covariates

    @property
    def needs_learner(self) -> bool:
        return self.balancing is None


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("tailored", loss="tailored"),
        Method("tailored_logit", loss="tailored", link="logit"),  # ablation: tailored loss, logit link
        Method("log", loss="log"),
        Method("log_clip01", loss="log", clip=0.01),
        Method("log_clip05", loss="log", clip=0.05),
        Method("log_trim01", loss="log", trim=0.01),
        Method("log_isotonic", loss="log", calibration="isotonic", clip=1e-3),  # isotonic can return 0 or 1
        Method("log_platt", loss="log", calibration="sigmoid"),
        Method("brier", loss="brier"),
        Method("zhao", loss="zhao"),  # with a linear learner: just-identified CBPS (exact HT balance)
        Method("cbps_over", balancing="cbps_over"),
        Method("ebal", balancing="ebal"),
    ]
}


@dataclass(frozen=True)
class MethodOutput:
    propensity: np.ndarray | None
    weights: np.ndarray | None
    clip: float | None = None
    trim: float | None = None
    diverged: bool = False  # the propensity model's fit ran away (``PropensityClassifier.diverged_``)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {sorted(METHODS)}")
    return METHODS[name]


def fit_method(name: str, x, t, learner: str = "linear", learner_params: dict | None = None) -> MethodOutput:
    """Fit method ``name`` on covariates x and treatment t; return propensities or weights."""
    from fourfold.scoring.learners import PropensityClassifier

    method = get_method(name)
    x = np.asarray(x, dtype=np.float64)
    t = check_treatment(t, len(x))
    if method.balancing == "cbps_over":
        return MethodOutput(cbps_over(x, t), None)
    if method.balancing == "ebal":
        return MethodOutput(None, entropy_balance(x, t))
    model = PropensityClassifier(
        learner=learner, loss=method.loss, link=method.link, **(learner_params or {})
    )
    if method.calibration:
        from sklearn.calibration import CalibratedClassifierCV

        calibrated = CalibratedClassifierCV(model, method=method.calibration, cv=3).fit(x, t)
        q = calibrated.predict_proba(x)[:, 1]
        return MethodOutput(q, None, method.clip, method.trim)
    q = model.fit(x, t).propensity(x)
    return MethodOutput(q, None, method.clip, method.trim, diverged=model.diverged_)


# --- over-identified CBPS (Imai & Ratkovic 2014), ATE version ---------------------------------------------


def _with_intercept(x):
    mean, sd = x.mean(0), x.std(0)
    return np.column_stack([np.ones(len(x)), (x - mean) / np.where(sd > 0, sd, 1.0)])


def cbps_objective(a, t, b) -> tuple[float, np.ndarray]:
    """The continuously-updated GMM criterion of ATE CBPS and its exact gradient in b.

    ``a`` is the design with an intercept column, ``b`` logistic coefficients. Moments: the likelihood
    score ``(T - q) a`` and HT balance ``(T/q - (1-T)/(1-q)) a``, averaged; S is their model-implied
    covariance ``[[q(1-q) aa', aa'], [aa', aa'/(q(1-q))]]``; the criterion is ``g' S^-1 g``.
    """
    from scipy.special import expit

    n = len(a)

    def gram(s):
        return (a * s[:, None]).T @ a / n

    q = expit(a @ b)
    v = q * (1 - q)
    g = np.r_[a.T @ (t - q), a.T @ (t / q - (1 - t) / (1 - q))] / n
    dr = -t * (1 - q) / q - (1 - t) * q / (1 - q)
    jac = np.vstack([-gram(v), gram(dr)])
    sigma = np.block([[gram(v), gram(np.ones(n))], [gram(np.ones(n)), gram(1 / v)]])
    h = np.linalg.lstsq(sigma, g, rcond=None)[0]
    h1, h2 = np.split(h, 2)
    # d(g' S^-1 g) = 2 G' S^-1 g - (S^-1 g)' dS (S^-1 g); dS comes from v = q(1-q) and 1/v
    curvature = v * (1 - 2 * q) * (a @ h1) ** 2 - (1 - 2 * q) / v * (a @ h2) ** 2
    return float(g @ h), 2 * jac.T @ h - a.T @ curvature / n


def cbps_over(x, t) -> np.ndarray:
    """Propensities of over-identified CBPS for the ATE (Imai & Ratkovic 2014): a logistic model fitted by
    minimising ``cbps_objective`` (continuously-updated GMM) with BFGS from the logistic MLE. Covariates
    are standardised, with an intercept.
    """
    from scipy.optimize import minimize
    from scipy.special import expit

    from fourfold.scoring.learners import PropensityClassifier

    a = _with_intercept(np.asarray(x, dtype=np.float64))
    t = np.asarray(t, dtype=np.float64)
    mle = PropensityClassifier(loss="log").fit(a[:, 1:], t)
    start = np.r_[mle.intercept_, mle.coef_]
    result = minimize(
        lambda b: cbps_objective(a, t, b),
        start,
        jac=True,
        method="BFGS",
        options={"gtol": 1e-9, "maxiter": 1000},
    )
    best = result.x if result.fun <= cbps_objective(a, t, start)[0] else start
    return expit(a @ best)


# --- entropy balancing (Hainmueller 2012), ATE version ---


def balance_arm(x_arm, target, max_iter: int = 200, tol: float = 1e-10) -> np.ndarray:
    """Weights on the rows of x_arm, summing to 1, closest to uniform in KL, with weighted means = target.

    Solves the convex dual ``min_lambda log sum_i exp(lambda . (x_i - target))`` by Newton with step
    halving; the weights are its softmax. Raises if the target lies outside the arm's convex hull.
    """
    c = np.asarray(x_arm, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    lam = np.zeros(c.shape[1])

    def dual(lam):
        s = c @ lam
        top = s.max()
        return top + np.log(np.exp(s - top).sum())

    value = dual(lam)
    for _ in range(max_iter):
        s = c @ lam
        w = np.exp(s - s.max())
        w /= w.sum()
        grad = w @ c  # the weighted mean minus the target
        if np.max(np.abs(grad)) < tol:
            return w
        hess = (c * w[:, None]).T @ c - np.outer(grad, grad)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        for _ in range(60):
            new_value = dual(lam - step)
            if new_value <= value:
                break
            step /= 2
        lam, value = lam - step, new_value
    raise ValueError(
        "entropy balancing did not converge: the covariate means are (nearly) outside one arm's convex "
        "hull; drop or coarsen the offending covariates"
    )


def entropy_balance(x, t) -> np.ndarray:
    """ATE weights: each arm reweighted so its covariate means equal the whole sample's (sum 1 per arm).

    Covariates constant within an arm cannot be balanced by reweighting it and are left out.
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t) > 0.5
    varies = (x[t].std(0) > 0) & (x[~t].std(0) > 0)
    x = x[:, varies]
    mean, sd = x.mean(0), x.std(0)
    z = (x - mean) / sd
    weights = np.empty(len(x))
    target = np.zeros(x.shape[1])
    weights[t] = balance_arm(z[t], target)
    weights[~t] = balance_arm(z[~t], target)
    return weights
