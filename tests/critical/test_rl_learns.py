"""End to end, the RL pieces used by ``RLLit`` (sampling, teacher-forced log-probs, baseline advantages,
the section 4.3 loss) raise a plainly learnable reward: 1 when the first generated character is '7'.

An independent check of sign, alignment and temperature: a bug in any of them leaves the reward flat or
drives it down, which is what the arithmetic RL runs show and what this test rules out as the cause.
"""

import torch

from fourfold.critical.arithmetic import prompt
from fourfold.critical.losses import LossConfig, baseline_advantages, rl_loss
from fourfold.critical.model import build_model
from fourfold.critical.rollout import action_log_probs, sample, teacher_forced
from fourfold.critical.tokenizer import CharTokenizer


def success_rate(model, tok, prompts, generator, temperature):
    with torch.no_grad():
        rollout = sample(model, tok, prompts, 2, temperature=temperature, generator=generator)
    return rollout, torch.tensor([float(t[:1] == "7") for t in rollout.texts])


def test_policy_gradient_raises_a_learnable_reward():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok, model = CharTokenizer(), build_model("micro", 41)
    model.train()
    prompts = [prompt(a, a + 1) for a in range(32)]
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    no_kl = LossConfig(kl_coef=0.0, entropy_coef=0.0)
    temperature = 1.5
    start = success_rate(model, tok, prompts * 8, torch.Generator().manual_seed(1), temperature)[1].mean()
    for _ in range(40):
        rollout, rewards = success_rate(model, tok, prompts * 2, generator, temperature)
        mask = rollout.action_mask
        logp, entropy = action_log_probs(teacher_forced(model, rollout), rollout.actions, temperature)
        advantages, weights = baseline_advantages(rewards, mask), torch.ones_like(logp)
        loss, _ = rl_loss(logp, entropy, mask, advantages, logp.detach(), weights, no_kl)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    end = success_rate(model, tok, prompts * 8, torch.Generator().manual_seed(1), temperature)[1].mean()
    assert start < 0.15  # a random 41-way first character is rarely '7'
    assert end > start + 0.3, (float(start), float(end))
