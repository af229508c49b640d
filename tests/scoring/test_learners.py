"""PropensityClassifier: first-order conditions (moment matching, Zhao's exact balance), agreement with
scikit-learn's logistic regression, XGBoost objective and start margin, loss decrease for every learner,
the MLP's exact gradient, the scikit-learn estimator checks, and bad input."""

import numpy as np
import pytest

from fourfold.scoring import PropensityClassifier
from fourfold.scoring.ipw import ipw_weights, weighted_mean_difference
from fourfold.scoring.link import raw_loss_grad_hess
from fourfold.scoring.rules import RULES


def design(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 5.0, 0.2] + [0.0, 10.0, -1.0]
    z = (x - [0.0, 10.0, -1.0]) / [1.0, 5.0, 0.2]
    p = 1 / (1 + np.exp(-(-z[:, 0] + 0.5 * z[:, 1] - 0.25 * z[:, 2])))
    return x, (rng.random(n) < p).astype(float)


def test_linear_tailored_first_order_condition_is_moment_matching():
    x, t = design()
    model = PropensityClassifier(learner="linear", loss="tailored").fit(x, t)
    q = model.propensity(x)
    z = (x - x.mean(0)) / x.std(0)
    np.testing.assert_allclose((q - t) @ np.column_stack([np.ones(len(t)), z]) / len(t), 0.0, atol=1e-8)


def test_linear_zhao_balances_covariates_exactly():
    x, t = design()
    model = PropensityClassifier(learner="linear", loss="zhao").fit(x, t)
    w = ipw_weights(t, model.propensity(x))
    np.testing.assert_allclose(weighted_mean_difference(x, t, w), 0.0, atol=1e-8)
    assert w[t > 0].sum() == pytest.approx(w[t < 1].sum(), rel=1e-7)  # the intercept's moment


def test_linear_log_loss_matches_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    x, t = design()
    ours = PropensityClassifier(learner="linear", loss="log").fit(x, t).propensity(x)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(x, t).predict_proba(x)[:, 1]
    np.testing.assert_allclose(ours, reference, rtol=1e-5)


def test_lbfgs_and_newton_agree():
    x, t = design()
    a = PropensityClassifier(loss="tailored", solver="newton").fit(x, t).propensity(x)
    b = PropensityClassifier(loss="tailored", solver="lbfgs", tol=1e-10).fit(x, t).propensity(x)
    np.testing.assert_allclose(a, b, rtol=1e-4)


def test_l2_shrinks_the_coefficients():
    x, t = design()
    free = PropensityClassifier(loss="log").fit(x, t)
    ridge = PropensityClassifier(loss="log", alpha=1.0).fit(x, t)
    assert np.linalg.norm(ridge.coef_) < 0.7 * np.linalg.norm(free.coef_)


@pytest.mark.parametrize("loss", ["tailored", "log", "zhao", "brier"])
def test_xgboost_objective_is_the_rule_gradient_and_hessian(loss):
    from fourfold.scoring.learners import xgboost_objective

    class Labels:
        def get_label(self):
            return np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)

    rule = RULES[loss]
    link = rule.link()
    margin = link(np.array([0.1, 0.4, 0.5, 0.93]))
    grad, hess = xgboost_objective(rule, link)(margin.astype(np.float32), Labels())
    h = 1e-4 * np.maximum(1, np.abs(margin))
    y = Labels().get_label().astype(float)
    fd = (
        raw_loss_grad_hess(rule, link, margin + h, y)[0] - raw_loss_grad_hess(rule, link, margin - h, y)[0]
    ) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-3)
    assert np.all(hess > 0)


@pytest.mark.parametrize("base_margin", ["zero", "prior"])
def test_xgboost_zero_round_model_starts_at_the_set_margin(base_margin):
    x, t = design()
    model = PropensityClassifier(learner="xgboost", n_estimators=0, base_margin=base_margin).fit(x, t)
    q = model.propensity(x)
    expected = 0.5 if base_margin == "zero" else t.mean()
    np.testing.assert_allclose(q, expected, rtol=1e-6)


def test_xgboost_regularisation_is_scaled_for_tiny_hessians():
    x, t = design()
    tailored = PropensityClassifier(learner="xgboost", n_estimators=1).fit(x, t)
    log = PropensityClassifier(learner="xgboost", loss="log", n_estimators=1).fit(x, t)
    assert log.min_child_weight_ == pytest.approx(1.0)
    q = t.mean()
    assert tailored.min_child_weight_ == pytest.approx(1 / RULES["tailored"].weight(q) / (q * (1 - q)))


def mean_loss(model, x, t):
    return raw_loss_grad_hess(model.rule_, model.link_, model.decision_function(x), t)[0].mean()


@pytest.mark.parametrize("learner", ["linear", "xgboost", "mlp"])
@pytest.mark.parametrize("loss", ["tailored", "log"])
def test_each_learner_lowers_its_loss(learner, loss):
    x, t = design(n=300)
    kwargs = {"lr": 0.01} if learner == "mlp" else {}
    start = PropensityClassifier(learner="xgboost", loss=loss, n_estimators=0, base_margin="prior").fit(x, t)
    model = PropensityClassifier(learner=learner, loss=loss, **kwargs).fit(x, t)
    assert mean_loss(model, x, t) < mean_loss(start, x, t) - 1e-3


def test_mlp_backward_is_q_minus_y_over_n():
    import torch

    from fourfold.scoring.link import torch_raw_loss

    rule = RULES["tailored"]
    f = torch.tensor([-300.0, -2.0, 0.0, 5.0, 1e4], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    torch_raw_loss(rule, rule.canonical_link, f, y).backward()
    q = rule.canonical_link.inverse_q(f.detach().numpy())
    np.testing.assert_allclose(f.grad.numpy(), (q - y.numpy()) / 5, rtol=1e-12, atol=1e-15)


def _failed_estimator_checks(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(estimator, on_fail=None, on_skip=None)
    return [r["check_name"] for r in results if r["status"] == "failed"]


@pytest.mark.filterwarnings("ignore::fourfold.scoring.learners.SeparationWarning")  # blobs separate
def test_scikit_learn_estimator_checks():
    for estimator in (PropensityClassifier(), PropensityClassifier(learner="xgboost", n_estimators=5)):
        assert not _failed_estimator_checks(estimator)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::fourfold.scoring.learners.SeparationWarning")
def test_scikit_learn_estimator_checks_mlp():
    # about 45 s: every check fits a fresh Lightning trainer
    assert not _failed_estimator_checks(
        PropensityClassifier(learner="mlp", max_epochs=60, lr=0.02, hidden=(16,))
    )


@pytest.mark.parametrize(
    "params",
    [
        {"learner": "linear"},
        {"learner": "xgboost", "n_estimators": 5},
        {"learner": "mlp", "max_epochs": 3, "patience": None},
    ],
    ids=["linear", "xgboost", "mlp"],
)
def test_fitted_model_survives_pickle_and_joblib(params, tmp_path):
    import pickle

    import joblib

    x, t = design(n=200)
    model = PropensityClassifier(**params).fit(x, t)
    expected = model.predict_proba(x)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(x), expected)
    joblib.dump(model, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(x), expected)


@pytest.mark.parametrize(
    ("kwargs", "fit_args", "message"),
    [
        ({"learner": "forest"}, None, "unknown learner"),
        ({"loss": "hinge"}, None, "unknown loss"),
        ({}, "nan", "NaN"),
        ({}, "single", "two classes"),
        ({}, "multi", "binary"),
        ({}, "length", "inconsistent"),
    ],
)
def test_bad_input(kwargs, fit_args, message):
    x, t = design(n=50)
    if fit_args == "nan":
        x[3, 1] = np.nan
    elif fit_args == "single":
        t[:] = 1
    elif fit_args == "multi":
        t[:3] = 2
    elif fit_args == "length":
        t = t[:-1]
    with pytest.raises(ValueError, match=message):
        PropensityClassifier(**kwargs).fit(x, t)


def separated_design(quasi: bool):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2))
    t = (x[:, 0] > 0).astype(float)
    if quasi:  # a block of overlapping units at x0 = 0: only some units are perfectly predicted
        x = np.r_[x, np.column_stack([np.zeros(20), rng.normal(size=20)])]
        t = np.r_[t, np.tile([0.0, 1.0], 10)]
    return x, t


@pytest.mark.parametrize("quasi", [False, True], ids=["complete", "quasi"])
@pytest.mark.parametrize("loss", ["tailored", "log"])
def test_separation_is_reported_once_with_the_fix(loss, quasi):
    import warnings

    from fourfold.scoring.learners import SeparationWarning, separates

    x, t = separated_design(quasi)
    A = np.column_stack([np.ones(len(t)), x])
    assert separates(A, t)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PropensityClassifier(loss=loss).fit(x, t)
    assert [w.category for w in caught] == [SeparationWarning]
    assert "alpha" in str(caught[0].message) and "xgboost" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        penalised = PropensityClassifier(loss=loss, alpha=1.0).fit(x, t)
    assert np.abs(penalised.coef_).max() < 10


def test_no_separation_warning_on_overlapping_arms_with_extreme_propensities():
    import warnings

    from fourfold.scoring.learners import separates

    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 1)) * 4
    t = (rng.random(2000) < 1 / (1 + np.exp(-3 * x[:, 0]))).astype(float)
    assert not separates(np.column_stack([np.ones(len(t)), x]), t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = PropensityClassifier(loss="log").fit(x, t)
    assert model.propensity(x).min() < 1e-6  # extreme fits alone do not trigger the warning


def test_a_runaway_fit_is_flagged_diverged_and_a_convex_one_is_not():
    from fourfold.scoring.datasets import load

    data = load("overlap_2.5", np.random.default_rng(0), n=1000)
    with np.errstate(all="ignore"):
        runaway = PropensityClassifier(loss="tailored", link="logit").fit(data.x, data.t)
        canonical = PropensityClassifier(loss="tailored").fit(data.x, data.t)
        logistic = PropensityClassifier(loss="log").fit(data.x, data.t)
    # the tailored loss through a logit link is unbounded below: Newton runs off, its gradient grows
    assert runaway.diverged_ and runaway.n_iter_ == runaway.max_iter
    assert not canonical.diverged_ and not logistic.diverged_
