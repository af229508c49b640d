"""The scoring page: fit a propensity model with the chosen learner and loss and with the comparison loss
(log-loss, or the tailored rule when log-loss was chosen), then the ATE by HT, Hajek and AIPW with 95%
intervals, the propensity histograms and the weight diagnostics of each.

The page does not answer without overlap: when more than ``REFUSE_SHARE`` of the units have a fitted
propensity within ``OVERLAP_BOUND`` of 0 or 1 under a fit, treated and control units cannot be compared
and the request is refused with that reason; above ``WARN_SHARE`` the results carry a warning. The
library's own warnings (the linear learner's separation test, the MLP stopping unconverged) are shown as
warnings on the page, and estimates that are not finite numbers are refused. The learners run with the
library's defaults (the MLP stops when its loss has converged).
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fourfold.scoring import RULES, PropensityClassifier, ate
from fourfold.scoring.learners import SeparationWarning
from fourfold.web.plots import propensity_histograms
from fourfold.web.uploads import UploadError

LEARNERS = ("linear", "xgboost", "mlp")
METHODS = ("ht", "hajek", "aipw")
METHOD_NAMES = {"ht": "Horvitz-Thompson", "hajek": "Hájek", "aipw": "AIPW"}
MAX_ROWS = 20_000
MAX_COVARIATES = 200
OVERLAP_BOUND = 0.01  # a unit "lacks overlap" when min(q, 1 - q) < this (an IPW weight over 100)
WARN_SHARE = 0.05  # warn when more units than this share lack overlap under a fit
REFUSE_SHARE = 0.5  # refuse when more than this share do
_FITTING = threading.Lock()  # warnings are captured process-wide: one fit at a time


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
    warnings: list[str] = field(default_factory=list)


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
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.std(np.column_stack([x, y]), axis=0)
    if not np.isfinite(spread).all():
        column = ([*covariates, outcome])[int(np.flatnonzero(~np.isfinite(spread))[0])]
        raise UploadError(f"CSV: column {column!r} holds values too large to compute with; rescale it")
    return x, t, y, [str(c) for c in covariates]


def compared_losses(loss: str) -> list[str]:
    if loss not in RULES:
        raise UploadError(f"unknown loss {loss!r}; choose one of {', '.join(RULES)}")
    return [loss, "tailored" if loss == "log" else "log"]


def page_warning(caught: warnings.WarningMessage, learner: str, loss: str) -> str | None:
    """The page's sentence for a warning the library raised while fitting (None: not the page's concern)."""
    if issubclass(caught.category, SeparationWarning):
        return (
            f"The covariates (quasi-)perfectly separate treated from control units ({learner} learner, "
            f"{loss} loss): the fit diverges and IPW weights explode; drop the covariates that separate "
            "the arms, or choose the xgboost learner."
        )
    if issubclass(caught.category, ConvergenceWarning):
        return (
            f"The {learner} fit with the {loss} loss stopped at its limit before its loss settled, so its "
            "propensities may be off; compare them with another learner."
        )
    return None


@dataclass
class Fit:
    q: np.ndarray  # fitted P(T=1|x) of every unit
    notes: list[str]  # the page's warnings
    separated: bool  # the library found (quasi-)separation


def fit_propensities(x, t, learner: str, loss: str) -> Fit:
    with _FITTING, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PropensityClassifier(learner=learner, loss=loss).fit(x, t)
        q = model.predict_proba(x)[:, 1]
    notes = [note for w in caught if (note := page_warning(w, learner, loss)) is not None]
    separated = any(issubclass(w.category, SeparationWarning) for w in caught)
    return Fit(np.clip(q, 1e-12, 1 - 1e-12), list(dict.fromkeys(notes)), separated)


def check_overlap(fit: Fit, loss: str) -> str | None:
    """A warning when more than WARN_SHARE of units lack overlap; ``UploadError`` above REFUSE_SHARE."""
    q = fit.q
    share = float(np.mean(np.minimum(q, 1 - q) < OVERLAP_BOUND))
    where = (
        f"{share:.0%} of the units have a fitted propensity within {OVERLAP_BOUND:g} of 0 or 1 ({loss} loss)"
    )
    if share > REFUSE_SHARE:
        cause = "the covariates separate treated from control units and " if fit.separated else ""
        raise UploadError(
            f"no overlap: {cause}{where}, so the arms cannot be compared and an IPW estimate would only "
            "restate the raw difference; drop the covariates that separate the arms"
        )
    if share > WARN_SHARE:
        return (
            f"Weak overlap: {where}; their weights exceed {1 / OVERLAP_BOUND:g} and dominate the estimates."
        )
    return None


def estimate_ate(x, t, y, covariates: list[str], learner: str, loss: str) -> ScoringResult:
    from fourfold.scoring.ipw import cross_fitted_outcomes  # AIPW's outcome model (not in the top-level API)

    if learner not in LEARNERS:
        raise UploadError(f"unknown learner {learner!r}; choose one of {', '.join(LEARNERS)}")
    losses = compared_losses(loss)
    fits = {name: fit_propensities(x, t, learner, name) for name in losses}
    notes = [note for fit in fits.values() for note in fit.notes]
    for name, fit in fits.items():
        if (note := check_overlap(fit, name)) is not None:
            notes.append(note)
    propensities = {name: fit.q for name, fit in fits.items()}
    outcome = cross_fitted_outcomes(x, t, y)
    estimates, diagnostics = [], []
    for name, q in propensities.items():
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
    bad = [e for e in estimates if not np.isfinite([e.estimate, e.se, e.ci_low, e.ci_high]).all()]
    if bad:
        raise UploadError(
            f"the {METHOD_NAMES[bad[0].method]} estimate with the {bad[0].loss} loss is not a finite number: "
            "the data overflow the computation; rescale the covariates and the outcome"
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
        warnings=list(dict.fromkeys(notes)),
    )
