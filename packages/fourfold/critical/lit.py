"""Lightning glue: the pre-training module and the RL module (manual optimisation). Both train through
``fourfold.core.train.fit``; the math lives in ``losses``, ``rollout`` and ``kl``. The stage drivers
(``pretrain``, ``rl``) import this module; it imports neither of them."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch

from fourfold.critical.arithmetic import (
    is_correct,
    max_continuation_length,
    operand_case,
    prompt,
    reward,
    rl_pairs,
)
from fourfold.critical.digit_index import offset_indices
from fourfold.critical.evaluation import (
    critical_token_probability,
    first_error_positions,
    greedy_accuracy,
    probability_at,
)
from fourfold.critical.kl import token_weights
from fourfold.critical.losses import (
    LossConfig,
    baseline_advantages,
    gae,
    leave_one_out_advantages,
    rl_loss,
    target_loss,
    warmup_cosine,
)
from fourfold.critical.model import context_length
from fourfold.critical.rollout import action_log_probs, reference_outputs, sample, teacher_forced

OPTIMIZERS = ("adam", "sgd")
TRAINABLE = ("all", "head", "norms")


def trainable_parameters(model, which: str) -> list:
    """The policy's parameters that RL updates: ``all``; ``norms``: every normalisation layer's gain and
    bias (LayerNorm, or RMSNorm for ``rope``; a few thousand numbers; the final one sets the scale of the
    logits, i.e. how sharp the next-token distribution is); ``head``: the norms plus the token embedding
    (tied to the output layer)."""
    if which not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {which!r}")
    if which == "all":
        return list(model.parameters())
    chosen = {id(p) for m in model.modules() if type(m).__name__.endswith("Norm") for p in m.parameters()}
    if which == "head":
        chosen.add(id(model.get_input_embeddings().weight))
    return [p for p in model.parameters() if id(p) in chosen]


class PretrainLit(L.LightningModule):
    """Target-only next-token loss, AdamW, linear warmup then cosine decay, gradient clipping by Trainer."""

    def __init__(self, model, lr: float, weight_decay: float, warmup_steps: int, total_steps: int):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay = lr, weight_decay
        self.warmup_steps, self.total_steps = warmup_steps, total_steps

    def training_step(self, batch, batch_idx):
        extra = {}
        if "digit_offset" in batch:  # digit-index models: indices shifted by each example's offset
            index = self.model.base_model.digit_indices(batch["input_ids"])
            extra["digit_index"] = offset_indices(index, batch["digit_offset"])
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra)
        loss = target_loss(out.logits, batch["labels"])
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, self.warmup_steps, self.total_steps)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class Snapshots(L.Callback):
    """Calls ``save(step, model)`` every ``every`` optimiser steps of a ``PretrainLit`` run."""

    def __init__(self, every: int, save):
        self.every, self.save = every, save

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % self.every == 0:
            self.save(int(trainer.global_step), pl_module.model)


@dataclass
class RLSettings:
    """Everything an RL run needs besides the models (``run.py`` fills it from the config)."""

    n_digits: int
    plus_k: int = 1
    episodes: int = 64  # per iteration (one optimiser step)
    temperature: float = 1.0  # sampling and KL temperature
    reward_kind: str = "binary"
    kl_mode: str = "prioritized"  # standard | prioritized | uniform | none
    beta: float = 150.0
    certainty_kind: str = "shannon"
    certainty_temperature: float = 1.0
    algorithm: str = "reinforce"  # reinforce | a2c
    baseline: str = "rloo"  # reinforce's baseline: rloo (leave-one-out within a prompt's group) | batch
    group_size: int = 4  # samples per prompt; ``episodes`` = prompts x group_size
    optimizer: str = "adam"  # adam | sgd (plain gradient steps: no per-weight normalisation)
    trainable: str = "all"  # all | norms: the LayerNorms only | head: norms + tied token embedding
    momentum: float = 0.0  # sgd's heavy-ball momentum (averages gradients over ~1/(1-m) steps)
    lr: float = 1e-4
    warmup_steps: int = 0  # linear learning-rate warm-up over the first iterations
    gamma: float = 1.0
    gae_lambda: float = 0.95
    loss: LossConfig = field(default_factory=LossConfig)
    eval_every: int = 10
    eval_pairs: list = field(default_factory=list)  # fixed RL-distribution set, greedy
    comfort_pairs: list = field(default_factory=list)  # fixed in-distribution set, greedy
    seed: int = 0
    curves_path: str | None = None

    def validate(self, n_positions: int) -> "RLSettings":
        if self.n_digits < 1 or self.plus_k < 1:
            raise ValueError(f"N and k must be >= 1, got N={self.n_digits}, k={self.plus_k}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.algorithm not in ("reinforce", "a2c"):
            raise ValueError(f"algorithm must be 'reinforce' or 'a2c', got {self.algorithm!r}")
        if self.baseline not in ("rloo", "batch"):
            raise ValueError(f"baseline must be 'rloo' or 'batch', got {self.baseline!r}")
        if self.group_size < 1 or self.episodes % self.group_size:
            raise ValueError(
                f"episodes ({self.episodes}) must be a multiple of group_size ({self.group_size})"
            )
        if self.algorithm == "reinforce" and self.baseline == "rloo" and self.group_size < 2:
            raise ValueError("the rloo baseline needs group_size >= 2 samples per prompt")
        if self.lr < 0:
            raise ValueError(f"lr must be >= 0 (0: the frozen control), got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not 0.0 <= self.momentum < 1.0 or (self.momentum and self.optimizer != "sgd"):
            raise ValueError(f"momentum must be in [0, 1) and only with optimizer sgd, got {self.momentum}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.kl_mode not in ("standard", "prioritized", "uniform", "none"):
            raise ValueError(f"kl_mode must be standard|prioritized|uniform|none, got {self.kl_mode!r}")
        digits = self.n_digits + self.plus_k
        nines = 10**digits - 1
        need = len(prompt(nines, nines)) + self.max_new_tokens
        if need > n_positions:
            raise ValueError(
                f"{digits}-digit episodes need {need} positions but the model has {n_positions}: "
                "use a smaller N+k or a model with more positions"
            )
        return self

    @property
    def max_new_tokens(self) -> int:
        return max_continuation_length(self.n_digits + self.plus_k)


class RLLit(L.LightningModule):
    """One training step = collect ``episodes`` episodes with the policy, then one optimiser step on the
    section 4.3 loss. The reference model is frozen (no grad, eval mode, not in the optimiser)."""

    def __init__(self, policy, reference, tokenizer, settings: RLSettings, critic=None):
        super().__init__()
        self.automatic_optimization = False
        self.policy, self.reference, self.critic = policy, reference, critic
        self.reference.requires_grad_(False)
        self.reference.eval()
        self.tokenizer = tokenizer
        self.failures = None  # {eval pair: (offset, char)} where the reference's greedy answer goes wrong
        self.settings = settings.validate(context_length(policy))
        if settings.algorithm == "a2c" and critic is None:
            raise ValueError("algorithm 'a2c' needs a critic head")

    def configure_optimizers(self):
        policy_params = trainable_parameters(self.policy, self.settings.trainable)
        params = policy_params + (list(self.critic.parameters()) if self.critic else [])
        # Adam divides each weight's step by its own gradient scale, so with a fresh state every weight moves
        # by about lr per step, signal or noise; SGD moves along the estimated policy gradient only.
        if self.settings.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=self.settings.lr, momentum=self.settings.momentum)
        else:
            opt = torch.optim.Adam(params, lr=self.settings.lr)
        warmup = max(1, self.settings.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
        return [opt], [sched]

    def on_train_epoch_start(self):
        self.reference.eval()

    def _write(self, record: dict) -> None:
        if self.settings.curves_path:
            path = Path(self.settings.curves_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def evaluate(self) -> dict:
        s = self.settings
        was_training = self.policy.training
        self.policy.eval()
        stats = {"step": int(self.global_step), "kind": "eval"}
        # One greedy pass over both fixed sets (the in-distribution episodes end early; no second loop).
        every = list(s.eval_pairs) + list(s.comfort_pairs)
        correct = greedy_accuracy(self.policy, self.tokenizer, every, batch_size=len(every)) if every else []
        if s.eval_pairs:
            on_rl = correct[: len(s.eval_pairs)]
            stats["acc_rl"] = float(on_rl.mean())
            cases = np.array([operand_case(a, b, s.n_digits) for a, b in s.eval_pairs])
            for case in ("one_long", "both_long"):
                if (cases == case).any():
                    stats[f"acc_rl_{case}"] = float(on_rl[cases == case].mean())
            stats["critical_prob"] = critical_token_probability(
                self.policy, self.tokenizer, s.eval_pairs, s.n_digits, s.temperature
            )
            if self.failures is None:  # where the frozen reference's greedy answers go wrong (fixed)
                self.failures = first_error_positions(self.reference, self.tokenizer, s.eval_pairs)
            stats["failure_prob"] = probability_at(
                self.policy, self.tokenizer, s.eval_pairs, self.failures, s.temperature
            )
        if s.comfort_pairs:
            stats["acc_comfort"] = float(correct[len(s.eval_pairs) :].mean())
        self.policy.train(was_training)
        self._write(stats)
        return stats

    def collect(self, step: int):
        s = self.settings
        rng = np.random.default_rng([s.seed, step])
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        prompts = rl_pairs(rng, s.episodes // s.group_size, s.n_digits, s.plus_k)
        pairs = [pair for pair in prompts for _ in range(s.group_size)]  # consecutive groups per prompt
        rollout = sample(
            self.policy,
            self.tokenizer,
            [prompt(a, b) for a, b in pairs],
            s.max_new_tokens,
            temperature=s.temperature,
            generator=generator,
        )
        correct = np.array([is_correct(t, a, b) for t, (a, b) in zip(rollout.texts, pairs)])
        cases = np.array([operand_case(a, b, s.n_digits) for a, b in pairs])
        success = {"success": float(correct.mean())}
        for case in ("one_long", "both_long"):
            if (cases == case).any():
                success[f"success_{case}"] = float(correct[cases == case].mean())
        return rollout, torch.as_tensor(reward(correct, s.reward_kind)), success

    def loss(self, rollout, rewards):
        """The RL loss of one collected batch: the policy gradient with the configured advantages, the
        weighted KL to the reference, the entropy bonus and the critic's loss; (loss, stats, KL weights)."""
        s = self.settings
        mask = rollout.action_mask
        logits, hidden = teacher_forced(self.policy, rollout, output_hidden=True)
        logp, entropy = action_log_probs(logits, rollout.actions, s.temperature)
        # The reference's pass also runs without a KL term (weights 0): its KL is how far the policy moved.
        ref = reference_outputs(self.reference, rollout, s.temperature)
        weights = token_weights(
            s.kl_mode, ref.logits, mask, s.beta, s.certainty_kind, s.certainty_temperature
        )
        logp_ref = ref.logp
        values = returns = None
        if s.algorithm == "a2c":
            critic_device = next(self.critic.parameters()).device
            values = self.critic(hidden.to(critic_device)).float().cpu()
            advantages, returns = gae(rewards, values, mask, s.gamma, s.gae_lambda)
        elif s.baseline == "rloo":
            advantages = leave_one_out_advantages(rewards, mask, s.group_size)
        else:
            advantages = baseline_advantages(rewards, mask)
        loss, stats = rl_loss(logp, entropy, mask, advantages, logp_ref, weights, s.loss, values, returns)
        return loss, stats, weights

    def training_step(self, batch, batch_idx):
        s = self.settings
        step = int(self.global_step)
        if step % s.eval_every == 0:
            self.evaluate()
        rollout, rewards, success = self.collect(step)
        mask = rollout.action_mask
        if s.lr == 0:
            # The frozen control: the reference's own success on the same prompts and random numbers as
            # every other condition of this seed. No gradient; the empty step only advances the counter.
            opt = self.optimizers()
            opt.zero_grad()
            opt.step()
            self.lr_schedulers().step()
            episode_len = float(mask.sum(-1).float().mean())
            self._write({"step": step, "kind": "train", **success, "episode_len": episode_len})
            return
        loss, stats, weights = self.loss(rollout, rewards)
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        params = [p for group in opt.optimizer.param_groups for p in group["params"] if p.grad is not None]
        stats["grad_norm"] = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
        stats["lr"] = float(opt.optimizer.param_groups[0]["lr"])
        opt.step()
        self.lr_schedulers().step()
        valid_w = weights[mask].float()
        if valid_w.numel() == 0:
            valid_w = torch.zeros(1)
        q = torch.quantile(valid_w, torch.tensor([0.1, 0.5, 0.9]))
        stats.update(
            step=step,
            kind="train",
            **success,
            episode_len=float(mask.sum(-1).float().mean()),
            w_mean=float(valid_w.mean()),
            w_p10=float(q[0]),
            w_p50=float(q[1]),
            w_p90=float(q[2]),
            w_below_half=float((valid_w < 0.5).float().mean()),
        )
        self._write(stats)
        self.log_dict({k: v for k, v in stats.items() if k not in ("kind", "step")}, prog_bar=False)

    def on_train_end(self):
        self.evaluate()
