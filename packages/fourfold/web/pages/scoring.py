"""The scoring page: fit a propensity model with the chosen learner and loss and with the comparison loss
(log-loss, or the tailored rule when log-loss was chosen), then the ATE by HT, Hajek and AIPW with 95%
intervals, the propensity histograms and the weight diagnostics of each."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourfold.scoring import RULES, PropensityClassifier, ate
from fourfold.web.plots import propensity_histograms
from fourfold.web.uploads import UploadError

LEARNERS = ("linear", "xgboost", "mlp")
METHODS = ("ht", "hajek", "aipw")
MAX_ROWS = 20_000
MAX_COVARIATES = 200
MLP_EPOCHS = 50  # the page's MLP budget: seconds, not the experiment's minutes


@dataclass
class Estimate:
    loss: str
    method: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float


@dataclass
class WeightDiagnostics:
    loss: str
    ess: float
    ess_treated: float
    ess_control: float
    min_propensity: float
    max_propensity: float
    max_weight: float


@dataclass
class ScoringResult:
    n_rows: int
    n_treated: int
    covariates: list[str]
    learner: str
    losses: list[str]
    estimates: list[Estimate]
    diagnostics: list[WeightDiagnostics]
    histogram_uri: str


def read_table(path: Path, treatment: str, outcome: str):
    """(x (n, d), t (n,), y (n,), covariate names) from a CSV with a header row."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise UploadError(
            f"CSV: cannot parse the file ({' '.join(str(err).split())}); "
            "expected comma-separated values with a header row"
        ) from err
    for role, column in (("treatment", treatment), ("outcome", outcome)):
        if column not in frame.columns:
            raise UploadError(
                f"CSV: no {role} column {column!r}; the columns are {', '.join(map(str, frame.columns[:20]))}"
            )
    if not 20 <= len(frame) <= MAX_ROWS:
        raise UploadError(f"CSV: {len(frame)} rows; the page takes 20 to {MAX_ROWS} rows")
    covariates = [c for c in frame.columns if c not in (treatment, outcome)]
    if not covariates:
        raise UploadError("CSV: no covariate column besides the treatment and the outcome")
    if len(covariates) > MAX_COVARIATES:
        raise UploadError(f"CSV: {len(covariates)} covariates; the page takes at most {MAX_COVARIATES}")
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = [c for c in frame.columns if numeric[c].isna().any()]
    if bad:
        row = int(numeric[bad[0]].isna().to_numpy().argmax())
        raise UploadError(
            f"CSV: column {bad[0]!r} has an empty or non-numeric value (data row {row + 1}); "
            "every value must be a number"
        )
    t = numeric[treatment].to_numpy(dtype=np.float64)
    if not np.isin(t, (0.0, 1.0)).all() or len(np.unique(t)) != 2:
        raise UploadError(f"CSV: treatment column {treatment!r} must hold 0 and 1 (both), one per row")
    x = numeric[covariates].to_numpy(dtype=np.float64)
    y = numeric[outcome].to_numpy(dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise UploadError("CSV: covariates and outcome must be finite numbers")
    return x, t, y, [str(c) for c in covariates]


def compared_losses(loss: str) -> list[str]:
    if loss not in RULES:
        raise UploadError(f"unknown loss {loss!r}; choose one of {', '.join(RULES)}")
    return [loss, "tailored" if loss == "log" else "log"]


def estimate_ate(x, t, y, covariates: list[str], learner: str, loss: str) -> ScoringResult:
    from fourfold.scoring.ipw import cross_fitted_outcomes  # AIPW's outcome model (not in the top-level API)

    if learner not in LEARNERS:
        raise UploadError(f"unknown learner {learner!r}; choose one of {', '.join(LEARNERS)}")
    losses = compared_losses(loss)
    outcome = cross_fitted_outcomes(x, t, y)
    estimates, diagnostics, propensities = [], [], {}
    for name in losses:
        extra = {"epochs": MLP_EPOCHS} if learner == "mlp" else {}
        model = PropensityClassifier(learner=learner, loss=name, **extra).fit(x, t)
        q = np.clip(model.predict_proba(x)[:, 1], 1e-12, 1 - 1e-12)
        propensities[name] = q
        for method in METHODS:
            result = ate(y, t, q, method=method, outcome=outcome if method == "aipw" else None)
            low, high = result.ci
            estimates.append(Estimate(name, method, result.estimate, result.se, low, high))
            if method == "ht":
                d = result.diagnostics
                weights = np.where(t > 0.5, 1 / q, 1 / (1 - q))
                diagnostics.append(
                    WeightDiagnostics(
                        name,
                        d["ess"],
                        d["ess_treated"],
                        d["ess_control"],
                        float(q.min()),
                        float(q.max()),
                        float(weights.max()),
                    )
                )
    return ScoringResult(
        n_rows=len(y),
        n_treated=int(t.sum()),
        covariates=covariates,
        learner=learner,
        losses=losses,
        estimates=estimates,
        diagnostics=diagnostics,
        histogram_uri=propensity_histograms(propensities, t),
    )
