"""KL estimators, certainty J, the prioritized weight: closed forms, the brief's gate values, autograd."""

import math

import pytest
import torch

from fourfold.critical import certainty, kl_weight
from fourfold.critical.kl import kl_estimate, token_weights


def top_p_logits(p_max: float, vocab: int = 40, rest: str = "uniform") -> torch.Tensor:
    """Log-probabilities of a distribution with top-1 mass p_max, the rest uniform or on 2 tokens."""
    probs = torch.zeros(vocab, dtype=torch.float64)
    probs[0] = p_max
    if rest == "uniform":
        probs[1:] = (1 - p_max) / (vocab - 1)
    else:
        probs[1:3] = (1 - p_max) / 2
        probs[3:] = 1e-300
    return probs.log()


@pytest.mark.parametrize("kind", ["shannon", "max_prob"])
def test_certainty_range_and_extremes(kind):
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(100, 41) * 3, dim=-1)
    j = certainty(probs, kind)
    assert ((j >= 0) & (j <= 1)).all()
    one_hot = torch.zeros(41)
    one_hot[5] = 1.0
    assert float(certainty(one_hot, kind)) == pytest.approx(1.0)
    assert float(certainty(torch.full((41,), 1 / 41), kind)) == pytest.approx(0.0, abs=1e-6)


def test_shannon_certainty_matches_entropy_formula():
    probs = torch.tensor([0.5, 0.25, 0.25, 0.0])
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert float(certainty(probs, "shannon")) == pytest.approx(1 - entropy / math.log(4), rel=1e-6)
    assert float(certainty(probs, "max_prob")) == pytest.approx(1 + math.log(0.5) / math.log(4), rel=1e-6)


@pytest.mark.parametrize(
    ("p_max", "expected", "tol"),
    [(0.9999, 1.0, 0.01), (0.999, 0.96, 0.01), (0.99, 0.66, 0.01), (0.97, 0.29, 0.01), (0.9, 0.01, 0.01)],
)
def test_gate_values_max_prob_beta_150(p_max, expected, tol):
    """Brief section 6.3, max-probability form at T = 1, |V| = 40."""
    w = kl_weight(top_p_logits(p_max), beta=150, kind="max_prob")
    assert float(w) == pytest.approx(expected, abs=tol)
    assert float(kl_weight(top_p_logits(0.7), beta=150, kind="max_prob")) < 1e-6


def test_gate_values_shannon_beta_150():
    assert float(kl_weight(top_p_logits(0.99, rest="two"), 150, "shannon")) == pytest.approx(0.08, abs=0.01)
    assert float(kl_weight(top_p_logits(0.99), 150, "shannon")) == pytest.approx(0.02, abs=0.006)


@pytest.mark.parametrize(
    ("margin", "expected", "tol"), [(20, 5e-5, 3e-5), (30, 0.42, 0.01), (40, 0.93, 0.01)]
)
def test_gate_values_code_form_temperature_4(margin, expected, tol):
    logits = torch.zeros(40, dtype=torch.float64)
    logits[0] = margin
    w = kl_weight(logits, beta=150, kind="max_prob", temperature=4.0)
    assert float(w) == pytest.approx(expected, abs=tol)


def test_weights_carry_no_gradient():
    logits = torch.randn(4, 7, 41, requires_grad=True)
    w = kl_weight(logits, beta=10)
    assert not w.requires_grad and w.grad_fn is None
    for mode in ("standard", "prioritized", "uniform", "none"):
        assert not token_weights(mode, logits, torch.ones(4, 7, dtype=torch.bool), 10.0).requires_grad


def test_uniform_weight_matches_mean_prioritized_weight_on_valid_tokens():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, 41) * 4
    mask = torch.rand(3, 5) > 0.3
    prioritized = token_weights("prioritized", logits, mask, 20.0)
    uniform = token_weights("uniform", logits, mask, 20.0)
    assert torch.allclose(uniform, uniform.flatten()[0].expand_as(uniform))
    assert float(uniform[0, 0]) == pytest.approx(float(prioritized[mask].mean()), rel=1e-5)
    assert token_weights("none", logits, mask, 20.0).sum() == 0
    assert (token_weights("standard", logits, mask, 20.0) == 1).all()


def test_invalid_beta_is_rejected():
    with pytest.raises(ValueError, match="beta"):
        kl_weight(torch.zeros(3), beta=-1)


def test_estimators_closed_forms():
    logp = torch.tensor([-0.5, -2.0])
    logp_ref = torch.tensor([-1.0, -1.0])
    log_r = logp_ref - logp
    assert torch.allclose(kl_estimate(logp, logp_ref, "k1"), -log_r)
    assert torch.allclose(kl_estimate(logp, logp_ref, "k2"), 0.5 * log_r**2)
    assert torch.allclose(kl_estimate(logp, logp_ref, "k3"), log_r.exp() - 1 - log_r)
    # k1 and k3 are unbiased for KL(pi || ref) when a ~ pi: check by exact expectation on a small vocab
    pi = torch.softmax(torch.tensor([1.0, 0.2, -0.5]), 0)
    ref = torch.softmax(torch.tensor([0.1, 0.3, 0.0]), 0)
    exact = float((pi * (pi.log() - ref.log())).sum())
    for est in ("k1", "k3"):
        assert float((pi * kl_estimate(pi.log(), ref.log(), est)).sum()) == pytest.approx(exact, rel=1e-5)


def test_k2_gradient_against_autograd():
    """d/dz of k2 = (log pi - log ref) * d log pi / dz, with d log pi(a) / dz = (onehot(a) - pi) / T."""
    torch.manual_seed(2)
    temperature = 2.0
    z = torch.randn(6, 41, dtype=torch.float64, requires_grad=True)
    ref_logp = torch.log_softmax(torch.randn(6, 41, dtype=torch.float64) / temperature, -1)
    actions = torch.randint(0, 41, (6,))
    logp_all = torch.log_softmax(z / temperature, -1)
    logp = logp_all.gather(-1, actions[:, None]).squeeze(-1)
    kl_estimate(logp, ref_logp.gather(-1, actions[:, None]).squeeze(-1), "k2").sum().backward()
    pi = logp_all.exp().detach()
    onehot = torch.nn.functional.one_hot(actions, 41).double()
    diff = (logp - ref_logp.gather(-1, actions[:, None]).squeeze(-1)).detach()
    expected = diff[:, None] * (onehot - pi) / temperature
    assert torch.allclose(z.grad, expected, atol=1e-10)


def test_beta_rule_puts_the_quantile_token_at_the_kept_weight():
    import numpy as np

    from fourfold.critical.kl import beta_rule

    j = np.linspace(0.9, 1.0, 1001)
    beta = beta_rule(j, keep=0.9, quantile=0.1)
    j_q = np.quantile(j, 0.1)
    assert j_q**beta == pytest.approx(0.9)
    assert np.mean(j**beta >= 0.9 - 1e-12) == pytest.approx(0.9, abs=2e-3)
    with pytest.raises(ValueError, match="no finite beta"):
        beta_rule(np.ones(10))
