"""The training objectives as pure functions on tensors (no Lightning, no config): pre-training's
target-only next-token loss and its learning-rate schedule; RL's advantages (GAE with a critic, a
batch-mean or leave-one-out baseline) and the loss of the brief's section 4.3, with the KL to the frozen
reference as a per-token loss term weighted by w.

RL shapes: B episodes, T steps; ``mask`` [B, T] is True on the actions inside each episode. The only reward
is terminal (on the last action of each episode); gamma = 1 by default.

``lit`` wires these to Lightning; the stage drivers (``pretrain``, ``rl``) sit over both.
"""

import math
from dataclasses import dataclass

import torch

from fourfold.critical.kl import kl_estimate

IGNORE = -100  # label of the positions the pre-training loss skips (prompt and padding)


def target_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the target tokens (labels != -100); logits [B, L, V]."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=IGNORE
    )


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, floor: float = 0.1) -> float:
    """LR multiplier: linear warmup to 1, then cosine decay to ``floor`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


AGGREGATIONS = ("token", "sequence")


@dataclass(frozen=True)
class LossConfig:
    """Coefficients of the RL loss (see ``rl_loss``)."""

    kl_coef: float = 5.0  # alpha
    entropy_coef: float = 5e-4
    value_coef: float = 0.1
    estimator: str = "k2"
    aggregation: str = "token"  # token: mean over all valid tokens; sequence: per-episode mean, then mean


def terminal_rewards(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Place each episode's reward on its last action: [B] -> [B, T]."""
    mask = mask.bool()
    last = mask.long().cumsum(-1).argmax(-1)  # index of the last True in each row
    out = torch.zeros(mask.shape, dtype=torch.float32)
    has_action = mask.any(-1)
    out[has_action, last[has_action]] = rewards.float()[has_action]
    return out


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
):
    """Generalised advantage estimation with terminal rewards ``rewards`` [B] and values [B, T].

    The value after an episode's last action is 0. Returns (advantages, returns = advantages + values), both
    [B, T] and 0 outside ``mask``.
    """
    mask_f = mask.float()
    values = values.detach().float() * mask_f
    step_rewards = terminal_rewards(rewards, mask)
    advantages = torch.zeros_like(values)
    running = torch.zeros(values.shape[0])
    next_value = torch.zeros(values.shape[0])
    for t in range(values.shape[1] - 1, -1, -1):
        delta = step_rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        running = running * mask_f[:, t]
        advantages[:, t] = running
        next_value = values[:, t]
    return advantages, (advantages + values) * mask_f


def baseline_advantages(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """REINFORCE with a batch-mean baseline: every action of episode i gets r_i - mean(r)."""
    centred = rewards.float() - rewards.float().mean()
    return centred[:, None] * mask.float()


def leave_one_out_advantages(rewards: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """REINFORCE leave-one-out (RLOO): episodes come in consecutive groups of ``group_size`` samples of the
    same prompt; episode i gets r_i minus the mean reward of the other k - 1 samples of its prompt, on
    every action. The baseline does not depend on episode i's own action, so the gradient stays unbiased;
    a prompt whose k samples all succeed (or all fail) contributes no policy gradient."""
    rewards = rewards.float()
    k = int(group_size)
    if k < 2 or rewards.numel() % k:
        raise ValueError(
            f"RLOO needs groups of >= 2 samples that divide the batch, got k={k}, B={rewards.numel()}"
        )
    groups = rewards.view(-1, k)
    others = (groups.sum(-1, keepdim=True) - groups) / (k - 1)
    return (groups - others).reshape(-1)[:, None] * mask.float()


def _aggregate(per_token: torch.Tensor, mask: torch.Tensor, aggregation: str) -> torch.Tensor:
    mask_f = mask.float()
    if aggregation == "token":
        return (per_token * mask_f).sum() / mask_f.sum().clamp_min(1.0)
    if aggregation == "sequence":
        per_episode = (per_token * mask_f).sum(-1) / mask_f.sum(-1).clamp_min(1.0)
        return per_episode.mean()
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def rl_loss(
    logp: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    logp_ref: torch.Tensor,
    weights: torch.Tensor,
    cfg: LossConfig,
    values: torch.Tensor | None = None,
    returns: torch.Tensor | None = None,
):
    """The loss -log pi(a|s) A + c_v (V - R)^2 - c_ent H + alpha w k(pi, pi_ref), over the valid tokens.

    ``advantages``, ``returns`` and ``weights`` are treated as constants. Returns (loss, stats) where
    stats holds detached floats of each term.
    """
    policy = -logp * advantages.detach()
    kl = kl_estimate(logp, logp_ref.detach(), cfg.estimator)
    weighted_kl = weights.detach() * kl
    terms = {
        "policy_loss": _aggregate(policy, mask, cfg.aggregation),
        "entropy": _aggregate(entropy, mask, cfg.aggregation),
        "kl": _aggregate(kl, mask, cfg.aggregation),
        "weighted_kl": _aggregate(weighted_kl, mask, cfg.aggregation),
    }
    loss = terms["policy_loss"] - cfg.entropy_coef * terms["entropy"] + cfg.kl_coef * terms["weighted_kl"]
    if values is not None:
        value_loss = _aggregate((values - returns.detach()) ** 2, mask, cfg.aggregation)
        terms["value_loss"] = value_loss
        loss = loss + cfg.value_coef * value_loss
    stats = {k: float(v.detach()) for k, v in terms.items()}
    stats["loss"] = float(loss.detach())
    return loss, stats
