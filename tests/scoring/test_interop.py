"""PropensityClassifier inside EconML and DoWhy (the optional ``[causal]`` extra; skipped without it)."""

import numpy as np
import pytest

from fourfold.scoring.datasets import kang_schafer

pytest.importorskip("econml")
pytest.importorskip("dowhy")


@pytest.fixture(scope="module")
def data():
    return kang_schafer(600, np.random.default_rng(1), misspecified=True)


@pytest.mark.parametrize("loss", ["tailored", "log"])
def test_dowhy_weighting_with_our_model_is_our_hajek_estimate(data, loss):
    from fourfold.scoring.interop import dowhy_ipw_ate, fourfold_hajek_ate

    assert dowhy_ipw_ate(data, loss) == pytest.approx(fourfold_hajek_ate(data, loss), rel=1e-8)


def test_econml_dr_learner_fits_our_model_on_each_fold(data):
    from econml.dr import LinearDRLearner
    from sklearn.linear_model import LinearRegression

    from fourfold.scoring import PropensityClassifier
    from fourfold.scoring.interop import econml_dr_ate

    learner = LinearDRLearner(
        model_propensity=PropensityClassifier(loss="tailored", alpha=1e-3),
        model_regression=LinearRegression(),
        cv=2,
        random_state=0,
    ).fit(data.y, data.t.astype(int), W=data.x)
    fitted = [m for fold in learner.models_propensity for m in fold]
    assert len(fitted) == 2 and all(isinstance(m, PropensityClassifier) and m.rule_.name == "tailored"
                                    for m in fitted)  # fmt: skip
    assert np.isfinite(econml_dr_ate(data, "tailored"))
