"""gradnoise.agreement: closed forms for identical, orthogonal and independent random gradients."""

import numpy as np
import pytest
import torch

from fourfold.critical.gradnoise import agreement


def test_identical_gradients_agree_fully():
    g = torch.randn(1, 50).repeat(4, 1)
    a = agreement(g)
    assert np.isclose(a["cosine_mean"], 1.0) and np.isclose(a["mean_norm_ratio"], 1.0)


def test_orthogonal_gradients_have_zero_cosine_and_ratio_one_over_sqrt_n():
    g = torch.eye(4) * 3.0  # equal norms, pairwise orthogonal: |mean| = 3 * sqrt(4) / 4
    a = agreement(g)
    assert np.isclose(a["cosine_mean"], 0.0) and np.isclose(a["cosine_sd"], 0.0)
    assert np.isclose(a["mean_norm_ratio"], 1 / np.sqrt(4))


def test_independent_noise_in_high_dimension_is_close_to_the_orthogonal_case():
    g = torch.randn(6, 200_000, generator=torch.Generator().manual_seed(0))
    a = agreement(g)
    assert abs(a["cosine_mean"]) < 0.01 and np.isclose(a["mean_norm_ratio"], 1 / np.sqrt(6), rtol=0.01)


def test_a_shared_signal_raises_both_measures():
    gen = torch.Generator().manual_seed(1)
    signal = torch.randn(1, 10_000, generator=gen)
    g = signal + torch.randn(6, 10_000, generator=gen)  # signal and noise of equal size: cosine 1/2
    assert np.isclose(agreement(g)["cosine_mean"], 0.5, atol=0.03)


def test_one_gradient_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        agreement(torch.ones(1, 3))
