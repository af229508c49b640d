"""The MLP learner stops on convergence: the stopping rule on a scripted loss sequence, the warning at the
epoch budget, a hidden-layer-free MLP reaching the linear learner's Newton optimum, repeatable fits, and
the web page's case (300 rows, 2 standardised covariates, true ATE 2.0) where the tailored fit used to stop
unconverged at 50 epochs with propensities in 0.42-0.55."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from fourfold.scoring import PropensityClassifier
from fourfold.scoring.convergence import page_case
from fourfold.scoring.ipw import ate
from fourfold.scoring.link import raw_loss_grad_hess
from fourfold.scoring.lit import StopWhenConverged


def run_stopper(losses, patience, min_delta):
    """Feed ``losses`` (one per epoch) to the callback until it stops; the module's state is its epoch."""
    stop = StopWhenConverged("val_loss", patience=patience, min_delta=min_delta)
    trainer = SimpleNamespace(callback_metrics={}, current_epoch=0, should_stop=False)
    module = SimpleNamespace()
    for epoch, value in enumerate(losses):
        trainer.current_epoch, trainer.callback_metrics["val_loss"] = epoch, torch.tensor(value)
        module.state_dict = lambda epoch=epoch: {"epoch": torch.tensor(epoch + 1)}
        stop.on_train_epoch_end(trainer, module)
        if trainer.should_stop:
            break
    return stop


def test_stopper_waits_patience_epochs_without_a_min_delta_improvement_and_keeps_the_best():
    # improvements of 1.0, then 0.05 and 0.03 (below min_delta 0.1, but new bests), then a rise
    stop = run_stopper([5.0, 4.0, 3.95, 3.92, 4.5, 3.0], patience=3, min_delta=0.1)
    assert stop.converged and not stop.diverged
    assert stop.epochs == 5  # epochs 3, 4 and 5 did not improve on 4.0 by 0.1: the 3.0 is never seen
    assert stop.best_epoch == 4 and stop.best == pytest.approx(3.92)
    assert int(stop.best_state["epoch"]) == 4


def test_stopper_runs_on_while_the_loss_keeps_improving_and_stops_on_nan():
    stop = run_stopper([3.0, 2.0, 1.0, 0.5], patience=2, min_delta=0.1)
    assert not stop.converged and stop.epochs == 4 and stop.best_epoch == 4
    stop = run_stopper([3.0, 2.0, float("nan"), 0.5], patience=2, min_delta=0.1)
    assert stop.diverged and stop.epochs == 3 and stop.best_epoch == 2


def test_stopper_rejects_a_meaningless_budget():
    with pytest.raises(ValueError, match="patience"):
        StopWhenConverged("val_loss", patience=0, min_delta=0.0)


@pytest.mark.parametrize(("loss", "unit"), [("log", 1.0), ("tailored", 12.0)])
def test_mlp_without_hidden_layers_converges_to_the_linear_optimum(loss, unit):
    # no hidden layer: the MLP is the linear model, the loss is convex, and its optimum is the linear
    # learner's Newton solution; trained on the training loss until it stops improving (unit: the rule's
    # loss per log-loss unit near q = 1/2, w(1/2) / 4)
    x, t, _ = page_case(0)
    linear = PropensityClassifier(loss=loss).fit(x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        mlp = PropensityClassifier(
            learner="mlp", loss=loss, hidden=(), validation_fraction=0, lr=0.05, min_delta=1e-7
        ).fit(x, t)
    assert mlp.converged_

    def mean_loss(model):
        return raw_loss_grad_hess(model.rule_, model.link_, model.decision_function(x), t)[0].mean()

    assert 0 <= mean_loss(mlp) - mean_loss(linear) < 1e-4 * unit
    np.testing.assert_allclose(mlp.propensity(x), linear.propensity(x), atol=1e-2)


def test_mlp_warns_in_one_sentence_when_the_epoch_budget_ends_unconverged():
    x, t, _ = page_case(0)
    expected = r"max_epochs=3 while its held-out loss was still improving"
    with pytest.warns(ConvergenceWarning, match=expected) as w:
        model = PropensityClassifier(learner="mlp", loss="tailored", max_epochs=3).fit(x, t)
    message = str(w[0].message)
    assert message.endswith(".") and message.count(". ") == 0 and "raise max_epochs" in message
    assert not model.converged_ and model.n_iter_ == 3


def test_mlp_fits_repeat_exactly_whatever_the_thread_count():
    x, t, _ = page_case(1)
    threads = torch.get_num_threads()
    fits = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            model = PropensityClassifier(learner="mlp", loss="tailored", max_epochs=15, patience=None)
            fits.append(model.fit(x, t).propensity(x))
            assert model.n_iter_ == 15 and model.converged_  # a fixed budget ran out: no warning
            assert torch.get_num_threads() == n  # the fit restores the caller's setting
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(fits[0], fits[1])


def check_page_case(seed: int) -> None:
    """Both fits converge; the tailored propensities spread as the log-loss ones do (the unconverged
    50-epoch fit had a standard deviation near 0.03), and its Hajek interval covers the true ATE 2.0."""
    x, t, y = page_case(seed)
    spread, cover = {}, {}
    for loss in ("log", "tailored"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model = PropensityClassifier(learner="mlp", loss=loss, random_state=seed).fit(x, t)
        q = model.propensity(x)
        spread[loss] = q.std(), np.quantile(q, 0.95) - np.quantile(q, 0.05)
        low, high = ate(y, t, q, method="hajek").ci
        cover[loss] = low <= 2.0 <= high
    assert spread["tailored"][0] >= 0.75 * spread["log"][0], spread
    assert spread["tailored"][1] >= 0.75 * spread["log"][1], spread
    assert cover["tailored"], seed


def test_page_case_tailored_mlp_spreads_like_log_loss_and_covers_the_ate():
    check_page_case(0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 8))
def test_page_case_over_seeds(seed):
    check_page_case(seed)
