"""KL estimators on the sampled token, the reference's certainty J, and the prioritized KL weight J^beta.

With r = pi_ref(a|s) / pi_theta(a|s) on the sampled token a (Schulman's note):
k1 = -log r, k2 = (log r)^2 / 2, k3 = (r - 1) - log r.

Certainty of a distribution p over |V| symbols, in [0, 1], 1 for one-hot and 0 for uniform:
- ``shannon`` (the paper, Eq. 2): J = (log|V| - H(p)) / log|V|;
- ``max_prob`` (the authors' code): J = 1 + log max_a p(a) / log|V|.
The prioritized weight is w = (1 - c) J^beta + c, computed without gradient.
"""

import math

import torch

CERTAINTY_KINDS = ("shannon", "max_prob")
KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_estimate(logp: torch.Tensor, logp_ref: torch.Tensor, estimator: str = "k2") -> torch.Tensor:
    """Per-token KL estimate from the policy's and the reference's log-probability of the sampled token."""
    log_r = logp_ref - logp
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r**2
    if estimator == "k3":
        return torch.expm1(log_r) - log_r
    raise ValueError(f"KL estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


def certainty(probs: torch.Tensor, kind: str = "shannon") -> torch.Tensor:
    """Certainty J in [0, 1] of distributions over the last axis (probabilities summing to 1)."""
    probs = torch.as_tensor(probs)
    log_v = math.log(probs.shape[-1])
    if kind == "shannon":
        entropy = -(torch.special.xlogy(probs, probs)).sum(-1)
        j = (log_v - entropy) / log_v
    elif kind == "max_prob":
        j = 1.0 + torch.log(probs.max(-1).values) / log_v
    else:
        raise ValueError(f"certainty kind must be one of {CERTAINTY_KINDS}, got {kind!r}")
    return j.clamp(0.0, 1.0)


def certainty_from_logits(logits: torch.Tensor, kind: str = "shannon", temperature: float = 1.0):
    """Certainty J of ``softmax(logits / temperature)`` over the last axis (|V| = the logits' width)."""
    if temperature <= 0:
        raise ValueError(f"certainty temperature must be > 0, got {temperature}")
    return certainty(torch.softmax(logits.float() / temperature, dim=-1), kind)


def check_beta(beta: float) -> float:
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta (the prioritized KL exponent) must be finite and >= 0, got {beta}")
    return float(beta)


def kl_weight(
    ref_logits: torch.Tensor,
    beta: float,
    kind: str = "shannon",
    temperature: float = 1.0,
    intercept: float = 0.0,
) -> torch.Tensor:
    """The prioritized weight w = (1 - c) * J_ref^beta + c per position, detached (it carries no gradient)."""
    check_beta(beta)
    if not 0.0 <= intercept <= 1.0:
        raise ValueError(f"intercept must be in [0, 1], got {intercept}")
    with torch.no_grad():
        j = certainty_from_logits(ref_logits.detach(), kind, temperature)
        return ((1.0 - intercept) * j.pow(beta) + intercept).detach()


def token_weights(
    mode: str,
    ref_logits: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
    kind: str = "shannon",
    temperature: float = 1.0,
) -> torch.Tensor:
    """Per-position KL weights for an RL condition (all detached):

    - ``standard``: 1 everywhere;
    - ``prioritized``: J_ref^beta;
    - ``uniform``: a constant equal to the mean prioritized weight over the valid (``mask``) positions of
      this batch, so it relaxes the KL by the same amount overall but not at chosen places;
    - ``none``: 0 (no KL).
    """
    shape = ref_logits.shape[:-1]
    if mode == "standard":
        return torch.ones(shape)
    if mode == "none":
        return torch.zeros(shape)
    w = kl_weight(ref_logits, beta, kind, temperature)
    if mode == "prioritized":
        return w
    if mode == "uniform":
        mask = mask.to(w.dtype)
        mean = (w * mask).sum() / mask.sum().clamp_min(1.0)
        return torch.full(shape, float(mean))
    raise ValueError(f"KL mode must be 'standard', 'prioritized', 'uniform' or 'none', got {mode!r}")


def beta_rule(j_ordinary, keep: float = 0.9, quantile: float = 0.1) -> float:
    """The largest beta that leaves the KL essentially intact on ordinary tokens: w = J^beta >= ``keep``
    on all but the least certain ``quantile`` of them, i.e. beta = log(keep) / log(J_q) with J_q the
    ``quantile`` of the reference's certainty on ordinary (non-critical) tokens. Tokens less certain than
    that get w < keep, falling fast with J (the brief's section 6.3 aim: w ~ 1 on ordinary tokens, ~ 0 at
    critical ones)."""
    import numpy as np

    j = np.asarray(j_ordinary, dtype=float)
    if j.size == 0 or not 0 < keep < 1 or not 0 < quantile < 1:
        raise ValueError("beta_rule needs certainty values, 0 < keep < 1 and 0 < quantile < 1")
    j_q = float(np.quantile(j, quantile))
    if not 0 < j_q < 1:
        raise ValueError(f"the {quantile} quantile of J is {j_q}: no finite beta can be derived from it")
    return float(np.log(keep) / np.log(j_q))
