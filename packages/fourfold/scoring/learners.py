"""``PropensityClassifier``: one scikit-learn estimator that fits P(T=1|x) with any registered scoring rule.

Learners: ``linear`` (Newton/Fisher scoring with step halving, or L-BFGS; optional L2 on standardised
inputs), ``mlp`` (torch, trained through ``fourfold.core.train.fit`` until its held-out loss stops
improving) and ``xgboost`` (native API with the rule's gradient and Hessian as a custom objective). Scores
live in the link's space; ``predict_proba`` always maps them through the rule's inverse link, never through
a sigmoid the link does not use.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from fourfold.scoring.link import q_and_complement, raw_grad_hess, raw_loss_grad_hess, to_q
from fourfold.scoring.rules import get_rule

LEARNERS = ("linear", "mlp", "xgboost")
# A fitted q this close to 0 or 1, or a coefficient this large on standardised inputs, makes the linear
# learner test for separation (the tailored link approaches 0 and 1 slowly: q ~ 1e-6 at |f| ~ 1e11).
EXTREME_PROPENSITY = 1e-4
LARGE_COEFFICIENT = 50.0


class SeparationWarning(UserWarning):
    """The covariates (quasi-)separate treated from control units: an unpenalised linear fit diverges."""


def separates(A: np.ndarray, t: np.ndarray) -> bool:
    """True when some direction b has (2t - 1) * (A b) >= 0 for every row and > 0 for at least one:
    (quasi-)complete separation, under which the unpenalised maximum-score fit does not exist
    (Albert and Anderson 1984). Decided by the linear programme of Konis (2007): maximise
    sum_i s_i a_i.b subject to s_i a_i.b >= 0 and -1 <= b <= 1; separation iff the optimum is positive."""
    from scipy.optimize import linprog

    signed = A * np.where(t > 0.5, 1.0, -1.0)[:, None]
    scale = np.abs(signed).max(axis=0)
    signed = signed / np.where(scale > 0, scale, 1.0)
    result = linprog(
        -signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(len(signed)),
        bounds=[(-1.0, 1.0)] * signed.shape[1],
        method="highs",
    )
    return bool(result.status == 0 and -result.fun > 1e-7 * len(signed))


class PropensityClassifier(ClassifierMixin, BaseEstimator):
    """Binary classifier trained with a proper scoring rule; ``predict_proba[:, 1]`` is the propensity.

    Args:
        learner: "linear", "mlp" or "xgboost".
        loss: a registered rule name ("tailored", "log", "brier", "zhao", "exponential", ...).
        link: "canonical" or "logit"; None takes the rule's default (canonical for tailored and log).
        alpha: L2 strength on the linear weights (not the intercept), on standardised inputs.
        solver: linear solver, "newton" (Fisher scoring, step halving) or "lbfgs".
        max_iter, tol: linear solver budget and gradient tolerance.
        hidden, lr, batch_size: MLP settings (ReLU layers, Adam's learning rate, minibatch size).
        max_epochs, patience, min_delta, validation_fraction: the MLP trains until its loss on a held-out
            stratified ``validation_fraction`` of the rows (the training loss when that is 0, or when the
            rows cannot spare two units of each arm) has gone ``patience`` epochs without improving by
            ``min_delta`` (in log-loss units: times the rule's w(p) p (1 - p) at the treated share p), and
            keeps the weights of its best epoch; at ``max_epochs`` unconverged it warns
            (``ConvergenceWarning``). ``patience=None`` trains exactly ``max_epochs`` epochs and keeps the
            last weights (the authors' fixed schedule).
        output_scale, bias_init: f = output_scale * net(x). "auto" scales by the link's slope relative to
            the logit's at the treated share (1 for a logit link, w(p) p (1 - p) for a canonical one: 12 for
            the tailored rule at p = 1/2), so the network works in logit-like units and the tailored fit
            converges in about as many epochs as the log-loss one (1.3x, not 3x). bias_init "zero" or
            "prior" (the last bias starts at link(mean T), the intercept-only optimum).
        n_estimators, max_depth, learning_rate, min_child_weight, reg_lambda, max_delta_step, base_margin:
            XGBoost settings. ``min_child_weight``/``reg_lambda`` None = 1 in log-loss units: scaled by the
            rule's Hessian over the log-loss Hessian at the treated share (1/12 for tailored at 1/2), since
            scaling grad and hess by c equals dividing both by c. ``base_margin`` "zero" or "prior".
        random_state: seed of the MLP (weights, validation split, shuffling) and XGBoost. Both train on one
            CPU thread, so that a seed gives the same model whatever the machine's thread settings.
        trainer: Lightning Trainer kwargs for the MLP (default: CPU, no progress bar).

    Fitted attributes besides scikit-learn's: ``n_iter_`` (solver iterations, MLP epochs or trees);
    ``diverged_``, True when the linear fit ended with a larger gradient than it started from (it ran away
    from every stationary point, so its coefficients are wherever ``max_iter`` stopped them) or the MLP's
    loss became NaN or infinite; for the MLP ``best_epoch_`` and ``converged_``.
    """

    def __init__(
        self,
        learner="linear",
        loss="tailored",
        link=None,
        alpha=0.0,
        solver="newton",
        max_iter=100,
        tol=1e-8,
        hidden=(64, 32),
        lr=1e-3,
        max_epochs=1000,
        patience=20,
        min_delta=1e-4,
        validation_fraction=0.2,
        batch_size=2048,
        output_scale="auto",
        bias_init="prior",
        n_estimators=100,
        max_depth=3,
        learning_rate=0.1,
        min_child_weight=None,
        reg_lambda=None,
        max_delta_step=0.0,
        base_margin="zero",
        random_state=0,
        trainer=None,
    ):
        self.learner = learner
        self.loss = loss
        self.link = link
        self.alpha = alpha
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.hidden = hidden
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.output_scale = output_scale
        self.bias_init = bias_init
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.max_delta_step = max_delta_step
        self.base_margin = base_margin
        self.random_state = random_state
        self.trainer = trainer

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _rule_and_link(self):
        rule = get_rule(self.loss)
        return rule, rule.link(self.link)

    @property
    def rule_(self):
        """The fitted scoring rule (looked up by name, so the estimator pickles)."""
        return self._rule_and_link()[0]

    @property
    def link_(self):
        """The fitted link."""
        return self._rule_and_link()[1]

    # --- fitting -----------------------------------------------------------------------------------------

    def fit(self, X, y):
        """Fit on covariates X (n, d) and a binary label y (treatment); returns self."""
        if self.learner not in LEARNERS:
            raise ValueError(f"unknown learner {self.learner!r}; use one of {LEARNERS}")
        link = self._rule_and_link()[1]
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=True)
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        classes = np.unique(y)
        if len(classes) != 2 or kind != "binary":
            raise ValueError(
                f"Only binary classification is supported. The label must have exactly two classes, got "
                f"{len(classes)} class(es) ({kind}); a propensity model needs treated and control units"
            )
        self.classes_ = classes
        t = (y == self.classes_[1]).astype(np.float64)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (X - self.mean_) / self.scale_
        prior = float(np.clip(t.mean(), 1e-6, 1 - 1e-6))
        self.prior_score_ = float(link(np.array([prior]))[0])
        self.n_iter_ = self.n_estimators
        self.diverged_ = False
        # A diverging (separated) linear fit overflows on its way; it is reported once (SeparationWarning).
        with np.errstate(over="ignore", divide="ignore"):
            getattr(self, f"_fit_{self.learner}")(Z, t)
        return self

    def _fit_linear(self, Z, t):
        n, d = Z.shape
        A = np.hstack([np.ones((n, 1)), Z])
        penalty = np.r_[0.0, np.full(d, float(self.alpha))]
        beta = np.r_[self.prior_score_, np.zeros(d)]

        def objective(b):
            loss, grad, hess = raw_loss_grad_hess(self.rule_, self.link_, A @ b, t)
            value = loss.mean() + 0.5 * np.sum(penalty * b * b)
            return value, A.T @ grad / n + penalty * b, hess

        start_gradient = np.abs(objective(beta)[1]).max()
        if self.solver == "lbfgs":
            from scipy.optimize import minimize

            result = minimize(
                lambda b: objective(b)[:2],
                beta,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": self.max_iter * 10, "gtol": self.tol},
            )
            beta, self.n_iter_ = result.x, result.nit
        elif self.solver == "newton":
            value, grad, hess = objective(beta)
            for iteration in range(1, self.max_iter + 1):
                self.n_iter_ = iteration
                H = (A * hess[:, None]).T @ A / n + np.diag(penalty)
                step = np.linalg.solve(H + 1e-12 * np.trace(H) * np.eye(d + 1), grad)
                for _ in range(60):  # step halving keeps every iterate a descent
                    new = beta - step
                    new_value, new_grad, new_hess = objective(new)
                    if np.isfinite(new_value) and new_value <= value:
                        break
                    step = step / 2
                else:
                    break
                beta, value, grad, hess = new, new_value, new_grad, new_hess
                if np.max(np.abs(grad)) < self.tol:
                    break
        else:
            raise ValueError(f"unknown solver {self.solver!r}; use 'newton' or 'lbfgs'")
        self.intercept_, self.coef_ = float(beta[0]), beta[1:]
        # A convex fit only ever lowers its gradient (to 0, or towards 0 along a separating direction); one
        # that ends steeper than it started ran away from every stationary point, as the tailored loss
        # through a logit link does (it is unbounded below): its estimates are where the budget ran out.
        self.diverged_ = not np.abs(objective(beta)[1]).max() <= max(start_gradient, self.tol)
        self._warn_if_separated(A, t)

    def _warn_if_separated(self, A, t):
        q, qbar = q_and_complement(*self.link_.inverse(A @ np.r_[self.intercept_, self.coef_]))
        n_extreme = int(np.sum(np.minimum(q, qbar) < EXTREME_PROPENSITY))
        suspicious = n_extreme > 0 or np.abs(self.coef_).max(initial=0.0) > LARGE_COEFFICIENT
        if self.alpha > 0 or not suspicious or not separates(A, t):
            return
        warnings.warn(
            f"the covariates (quasi-)perfectly separate treated from control units: {n_extreme} of "
            f"{len(t)} fitted propensities lie within {EXTREME_PROPENSITY:g} of 0 or 1 and the "
            f"unpenalised fit diverges (largest |coefficient| {np.abs(self.coef_).max():.3g} on "
            "standardised inputs), so IPW weights explode. Add an L2 penalty (alpha=1.0, say), use "
            "learner='xgboost', or drop the covariates that separate the arms.",
            SeparationWarning,
            stacklevel=4,
        )

    def _fit_mlp(self, Z, t):
        from fourfold.scoring.mlp import train_mlp

        net, self.output_scale_, stop = train_mlp(self, Z, t)
        # Keep only the plain network, in float64 so that a row's score does not depend on its batch: the
        # LightningModule holds the rule's lambdas and its trainer, neither of which pickles.
        self.net_ = net.double().eval()
        self.n_iter_, self.best_epoch_, self.diverged_ = stop.epochs, stop.best_epoch, stop.diverged
        self.converged_ = stop.converged or self.patience is None
        if not self.converged_:
            warnings.warn(
                f"the MLP reached max_epochs={self.max_epochs} while its "
                + ("held-out loss " if stop.monitor == "val_loss" else "training loss ")
                + ("had become NaN or infinite" if stop.diverged else "was still improving")
                + ", so its propensities are not a converged fit: raise max_epochs (or lr).",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _xgb_regularisation(self, t_mean):
        q = np.array([t_mean])
        rule_hess = raw_loss_grad_hess(self.rule_, self.link_, self.link_(q), np.zeros(1))[2][0]
        ratio = rule_hess / (t_mean * (1 - t_mean))
        mcw = ratio if self.min_child_weight is None else self.min_child_weight
        lam = ratio if self.reg_lambda is None else self.reg_lambda
        return float(mcw), float(lam)

    def _fit_xgboost(self, Z, t):
        import xgboost as xgb

        self.margin_start_ = self.prior_score_ if self.base_margin == "prior" else 0.0
        if self.base_margin not in ("zero", "prior"):
            raise ValueError(f"base_margin must be 'zero' or 'prior', got {self.base_margin!r}")
        self.min_child_weight_, self.reg_lambda_ = self._xgb_regularisation(
            float(np.clip(t.mean(), 1e-6, 1 - 1e-6))
        )
        params = {
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "min_child_weight": self.min_child_weight_,
            "lambda": self.reg_lambda_,
            "max_delta_step": self.max_delta_step,
            "tree_method": "hist",
            "nthread": 1,
            "seed": self.random_state,
            "disable_default_eval_metric": True,
        }
        dtrain = xgb.DMatrix(Z, label=t, base_margin=np.full(len(t), self.margin_start_))
        self.booster_ = xgb.train(
            params, dtrain, num_boost_round=self.n_estimators, obj=xgboost_objective(self.rule_, self.link_)
        )

    # --- prediction --------------------------------------------------------------------------------------

    def decision_function(self, X):
        """Raw scores f (the link's space), shape (n,)."""
        check_is_fitted(self, "classes_")
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        Z = (X - self.mean_) / self.scale_
        if self.learner == "linear":
            return Z @ self.coef_ + self.intercept_
        if self.learner == "mlp":
            import torch

            with torch.no_grad():
                scores = self.net_(torch.as_tensor(Z, dtype=torch.float64)).reshape(-1)
            return self.output_scale_ * scores.numpy()
        import xgboost as xgb

        dmat = xgb.DMatrix(Z, base_margin=np.full(len(Z), self.margin_start_))
        return self.booster_.predict(dmat, output_margin=True).astype(np.float64)

    def predict_proba(self, X):
        """``[[1 - q, q]]`` with q = link^-1(f) in float64."""
        check_is_fitted(self, "classes_")
        m, side = self.link_.inverse(self.decision_function(X))
        q = to_q(m, side)
        return np.column_stack([np.where(side < 0, 1.0 - m, m), q])

    def predict(self, X):
        """The more likely class label."""
        check_is_fitted(self, "classes_")
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def propensity(self, X):
        """P(T = 1 | x), shape (n,)."""
        return self.predict_proba(X)[:, 1]


def xgboost_objective(rule, link):
    """XGBoost custom objective: gradient and (positive) Hessian of the rule's raw-score loss.

    For the tailored rule the compiled kernel (``link_kernel``) computes both, and the quartic's roots of
    one round warm-start the next (margins move little).
    """
    from fourfold.scoring.link_kernel import tailored_grad_hess_compiled

    warm = {}

    def objective(margin, dtrain):
        margin = margin.astype(np.float64)
        label = dtrain.get_label()
        if link.name == "tailored" and rule.canonical_link.name == "tailored":
            grad, hess, warm["e"] = tailored_grad_hess_compiled(margin, label, start=warm.get("e"))
            return grad, hess
        return raw_grad_hess(rule, link, margin, label)

    return objective
