"""Benchmark data: shapes, Kang-Schafer's propensity and null effect, the overlap knob, the vendored ACIC,
IHDP and LaLonde files, Hill's surfaces, and the ACIC folder loader on a fixture."""

import numpy as np
import pytest

from fourfold.scoring import datasets


def test_kang_schafer_shapes_propensity_and_null_effect():
    rng = np.random.default_rng(0)
    data = datasets.kang_schafer(20000, rng)
    assert data.x.shape == (20000, 4) and data.ate == 0.0
    z = data.x
    np.testing.assert_allclose(
        data.propensity, 1 / (1 + np.exp(z[:, 0] - 0.5 * z[:, 1] + 0.25 * z[:, 2] + 0.1 * z[:, 3]))
    )
    assert abs(data.t.mean() - data.propensity.mean()) < 0.02
    # the outcome does not depend on T given Z: regression of Y on Z leaves no treatment effect
    a = np.column_stack([np.ones(len(z)), z, data.t])
    coef = np.linalg.lstsq(a, data.y, rcond=None)[0]
    assert abs(coef[-1]) < 0.1


def test_kang_schafer_misspecified_covariates_are_the_published_transforms():
    a = datasets.kang_schafer(50, np.random.default_rng(3))
    b = datasets.kang_schafer(50, np.random.default_rng(3), misspecified=True)
    z = a.x
    np.testing.assert_allclose(b.x[:, 0], np.exp(z[:, 0] / 2))
    np.testing.assert_allclose(b.x[:, 3], (z[:, 1] + z[:, 3] + 20) ** 2)
    np.testing.assert_array_equal(a.t, b.t)


def test_overlap_strength_pushes_propensities_to_the_edges():
    mild = datasets.overlap_simulation(5000, np.random.default_rng(0), strength=0.5)
    hard = datasets.overlap_simulation(5000, np.random.default_rng(0), strength=4.0)
    assert np.mean(np.minimum(hard.propensity, 1 - hard.propensity) < 0.02) > 0.1
    assert np.min(np.minimum(mild.propensity, 1 - mild.propensity)) > 0.05
    assert hard.ate == 1.0


def test_acic_vendored_instance():
    data = datasets.acic2016(1)
    assert data.x.shape[0] == 4802 and len(data.t) == 4802
    assert 0.1 < data.t.mean() < 0.4 and np.all(np.isfinite(data.x))
    with pytest.raises(ValueError, match="1..10"):
        datasets.acic2016(11)


def test_acic_folder_loader(tmp_path):
    import pandas as pd

    pd.DataFrame({"x_1": [1.0, 2.0, 3.0], "x_2": ["A", "B", "A"]}).to_csv(tmp_path / "x.csv", index=False)
    pd.DataFrame(
        {"z": [1, 0, 1], "y0": [0.0, 1.0, 2.0], "y1": [5.0, 6.0, 7.0], "mu0": [0.0, 1, 2], "mu1": [2.0, 3, 4]}
    ).to_csv(tmp_path / "zymu_7.csv", index=False)
    data = datasets.acic2016(7, folder=tmp_path)
    np.testing.assert_array_equal(data.y, [5.0, 1.0, 7.0])
    assert data.ate == 2.0 and data.x.shape == (3, 2)
    with pytest.raises(FileNotFoundError, match="zymu_<k>"):
        datasets.acic2016(8, folder=tmp_path)


@pytest.mark.parametrize("surface", ["A", "B"])
def test_ihdp_surfaces(surface):
    data = datasets.ihdp(surface, np.random.default_rng(0))
    assert data.x.shape == (747, 25) and data.t.sum() == 139
    if surface == "A":
        assert data.ate == 4.0
    else:
        assert np.isfinite(data.ate)


def test_ihdp_surface_b_sets_the_effect_on_the_treated_to_four():
    # Recompute the expected outcomes with the same draw: the CATT is 4 by construction.
    rng = np.random.default_rng(5)
    x, t = datasets.ihdp_covariates()
    beta = np.random.default_rng(5).choice([0, 0.1, 0.2, 0.3, 0.4], size=25, p=[0.6, 0.1, 0.1, 0.1, 0.1])
    mu0, linear = np.exp((x + 0.5) @ beta), x @ beta
    omega = np.mean((linear - mu0)[t > 0]) - 4.0
    assert np.mean((linear - omega - mu0)[t > 0]) == pytest.approx(4.0)
    data = datasets.ihdp("B", rng)
    assert data.ate == pytest.approx(np.mean(linear - omega - mu0))


def test_lalonde_cps():
    data = datasets.lalonde("cps")
    assert data.t.sum() == 185 and len(data.t) == 185 + 15992 and data.x.shape[1] == 10
    assert data.ate == pytest.approx(1794.34, abs=1)  # Dehejia-Wahba experimental difference in means


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("twins", np.random.default_rng(0))
