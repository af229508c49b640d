"""Advantages against closed forms, the loss's masking and KL weighting, and RL resume through fit."""

import copy

import pytest
import torch

from fourfold.critical.losses import LossConfig, baseline_advantages, gae, rl_loss, terminal_rewards


def masks():
    return torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)


def test_terminal_rewards_sit_on_the_last_action():
    r = terminal_rewards(torch.tensor([1.0, 2.0]), masks())
    assert r.tolist() == [[0, 0, 1, 0, 0], [0, 0, 0, 0, 2]]


def test_gae_lambda_one_is_return_minus_value_and_lambda_zero_is_td():
    torch.manual_seed(0)
    mask, rewards, values = masks(), torch.tensor([1.0, 0.0]), torch.randn(2, 5)
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    expected = (rewards[:, None] - values) * mask
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, rewards[:, None] * mask, atol=1e-6)
    adv0, _ = gae(rewards, values, mask, gamma=1.0, lam=0.0)
    v = values * mask
    next_v = torch.cat([v[:, 1:], torch.zeros(2, 1)], dim=1)
    td = (terminal_rewards(rewards, mask) + next_v - v) * mask
    assert torch.allclose(adv0, td, atol=1e-6)


def test_baseline_advantages_are_centred_and_masked():
    adv = baseline_advantages(torch.tensor([1.0, 0.0]), masks())
    assert adv[0, :3].tolist() == [0.5] * 3 and adv[0, 3:].tolist() == [0, 0]
    assert adv[1].tolist() == [-0.5] * 5


def loss_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(2, 5, generator=g)).requires_grad_(True)
    return dict(
        logp=logp,
        entropy=torch.rand(2, 5, generator=g),
        mask=masks(),
        advantages=torch.randn(2, 5, generator=g),
        logp_ref=-torch.rand(2, 5, generator=g),
    )


def test_tokens_after_the_end_do_not_change_the_loss_or_get_gradient():
    inputs = loss_inputs()
    weights = torch.ones(2, 5)
    cfg = LossConfig(kl_coef=5.0, entropy_coef=0.1)
    loss, _ = rl_loss(**inputs, weights=weights, cfg=cfg)
    loss.backward()
    assert (inputs["logp"].grad[0, 3:] == 0).all()
    altered = loss_inputs()
    for key in ("entropy", "advantages", "logp_ref"):
        altered[key][0, 3:] = 123.0
    loss2, _ = rl_loss(**altered, weights=weights, cfg=cfg)
    assert float(loss2.detach()) == pytest.approx(float(loss.detach()))


def test_kl_term_is_weighted_and_its_gradient_is_w_times_log_ratio():
    inputs = loss_inputs(1)
    inputs["advantages"] = torch.zeros(2, 5)
    inputs["entropy"] = torch.zeros(2, 5)
    weights = torch.rand(2, 5)
    cfg = LossConfig(kl_coef=2.0, entropy_coef=0.0)
    loss, stats = rl_loss(**inputs, weights=weights, cfg=cfg)
    loss.backward()
    n = float(masks().sum())
    expected = 2.0 * weights * (inputs["logp"] - inputs["logp_ref"]).detach() * masks() / n
    assert torch.allclose(inputs["logp"].grad, expected, atol=1e-6)
    assert stats["weighted_kl"] <= stats["kl"] + 1e-9


def test_sequence_aggregation_weights_episodes_equally():
    inputs = loss_inputs(2)
    cfg = LossConfig(kl_coef=0.0, entropy_coef=0.0, aggregation="sequence")
    loss, _ = rl_loss(**inputs, weights=torch.ones(2, 5), cfg=cfg)
    per_token = -inputs["logp"] * inputs["advantages"]
    expected = 0.5 * (per_token[0, :3].mean() + per_token[1].mean())
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def rl_setup(tmp_path, name, algorithm="a2c"):
    import numpy as np

    from fourfold.critical.arithmetic import eval_pairs
    from fourfold.critical.lit import RLSettings
    from fourfold.critical.model import Critic, build_model
    from fourfold.critical.tokenizer import CharTokenizer

    torch.manual_seed(0)
    policy = build_model("micro", 41)
    critic = Critic(policy.config.n_embd)
    settings = RLSettings(
        n_digits=1,
        plus_k=1,
        episodes=4,
        temperature=1.0,
        kl_mode="prioritized",
        beta=2.0,
        algorithm=algorithm,
        lr=1e-2,
        eval_every=100,
        eval_pairs=eval_pairs(np.random.default_rng(0), 2, 2),
        seed=3,
        curves_path=str(tmp_path / name / "curves.jsonl"),
    )
    return policy, copy.deepcopy(policy), CharTokenizer(), settings, critic


def run_rl(tmp_path, name, iterations, trainer_cfg):
    """A fresh process's view: rebuild the models, then fine-tune in ``tmp_path/name``."""
    from fourfold.critical.rl import fine_tune

    policy, ref, tok, settings, critic = rl_setup(tmp_path, name)
    metrics = fine_tune(
        policy,
        ref,
        tok,
        settings,
        iterations=iterations,
        run_dir=tmp_path / name,
        trainer_cfg=trainer_cfg,
        critic=critic,
        checkpoint_every=1,
    )
    return metrics, policy, ref


def test_rl_resumes_from_last_checkpoint(tmp_path, trainer_cfg):
    first, _, _ = run_rl(tmp_path, "resumed", 2, trainer_cfg)
    assert first["global_step"] == 2
    second, policy, ref = run_rl(tmp_path, "resumed", 3, trainer_cfg)
    assert second["global_step"] == 3  # 2 restored + 1 new
    _, straight, ref2 = run_rl(tmp_path, "straight", 3, trainer_cfg)
    for p, q in zip(policy.parameters(), straight.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    for p, q in zip(ref.parameters(), ref2.parameters()):
        assert torch.equal(p, q)  # the reference never moves


def test_invalid_rl_settings_fail_before_compute():
    from fourfold.critical.lit import RLSettings

    with pytest.raises(ValueError, match="beta"):
        RLSettings(n_digits=3, beta=-1.0).validate(512)
    with pytest.raises(ValueError, match="N and k"):
        RLSettings(n_digits=0).validate(512)
    with pytest.raises(ValueError, match="positions"):
        RLSettings(n_digits=6, plus_k=1).validate(512)


def test_leave_one_out_advantages_match_a_brute_force_loop():
    from fourfold.critical.losses import leave_one_out_advantages

    g = torch.Generator().manual_seed(4)
    rewards = (torch.rand(12, generator=g) > 0.5).float()
    mask = torch.rand(12, 7, generator=g) > 0.3
    k = 3
    adv = leave_one_out_advantages(rewards, mask, k)
    for i in range(12):
        group = range(k * (i // k), k * (i // k) + k)
        others = [float(rewards[j]) for j in group if j != i]
        expected = float(rewards[i]) - sum(others) / len(others)
        assert torch.allclose(adv[i], expected * mask[i].float())


def test_leave_one_out_gives_no_signal_to_unanimous_groups_and_rejects_bad_groups():
    from fourfold.critical.losses import leave_one_out_advantages

    mask = torch.ones(4, 2, dtype=torch.bool)
    adv = leave_one_out_advantages(torch.tensor([1.0, 1.0, 0.0, 0.0]), mask, 2)
    assert (adv == 0).all()
    with pytest.raises(ValueError, match="groups"):
        leave_one_out_advantages(torch.ones(5), torch.ones(5, 2, dtype=torch.bool), 2)


def test_rl_settings_check_the_group_layout():
    from fourfold.critical.lit import RLSettings

    with pytest.raises(ValueError, match="multiple of group_size"):
        RLSettings(n_digits=2, episodes=10, group_size=4).validate(512)
    with pytest.raises(ValueError, match="group_size >= 2"):
        RLSettings(n_digits=2, episodes=8, group_size=1, baseline="rloo").validate(512)
    RLSettings(n_digits=2, episodes=8, group_size=1, baseline="batch").validate(512)


def test_the_optimizer_knob_picks_sgd_or_adam_and_rejects_others():
    from fourfold.critical.lit import RLLit, RLSettings
    from fourfold.critical.model import build_model
    from fourfold.critical.tokenizer import CharTokenizer

    with pytest.raises(ValueError, match="optimizer"):
        RLSettings(n_digits=2, optimizer="rmsprop").validate(512)
    tok = CharTokenizer()
    for name, kind in (("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)):
        model = build_model("micro", tok.vocab_size)
        settings = RLSettings(n_digits=1, episodes=4, group_size=2, optimizer=name, lr=0.5, warmup_steps=2)
        module = RLLit(model, build_model("micro", tok.vocab_size), tok, settings)
        [opt], [sched] = module.configure_optimizers()
        assert isinstance(opt, kind) and opt.param_groups[0]["lr"] == 0.25  # warm-up: step 1 of 2


def test_an_sgd_step_moves_the_weights_by_lr_times_the_gradient():
    """Plain SGD: theta' = theta - lr * grad, so weights without gradient stay put (unlike Adam's first
    step, which moves every weight with a non-zero gradient by about lr, whatever its size)."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    grad = torch.tensor([0.5, 0.0, 1e-6])
    sgd = torch.optim.SGD([w], lr=0.1)
    w.grad = grad.clone()
    sgd.step()
    assert torch.allclose(w.detach(), torch.tensor([1.0 - 0.05, -2.0, 3.0 - 1e-7]))
    v = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    adam = torch.optim.Adam([v], lr=0.1)
    v.grad = grad.clone()
    adam.step()
    step = (torch.tensor([1.0, -2.0, 3.0]) - v.detach()).abs()
    assert torch.allclose(step[[0, 2]], torch.tensor([0.1, 0.1]), rtol=0.1) and step[1] == 0


def test_momentum_is_an_sgd_knob_in_zero_one():
    from fourfold.critical.lit import RLSettings

    RLSettings(n_digits=2, optimizer="sgd", momentum=0.9).validate(512)
    for bad in (dict(optimizer="adam", momentum=0.9), dict(optimizer="sgd", momentum=1.0)):
        with pytest.raises(ValueError, match="momentum"):
            RLSettings(n_digits=2, **bad).validate(512)


def test_head_parameters_are_the_tied_embedding_and_the_layer_norms():
    from fourfold.critical.lit import trainable_parameters
    from fourfold.critical.model import build_model

    model = build_model("micro", 41)
    head = {id(p) for p in trainable_parameters(model, "head")}
    assert id(model.lm_head.weight) in head  # tied to the token embedding
    for name, p in model.named_parameters():
        assert (id(p) in head) == ("wte" in name or "ln_" in name), name
    assert len(trainable_parameters(model, "all")) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="trainable"):
        trainable_parameters(model, "mlp")


def test_lr_zero_is_the_frozen_control_with_the_same_episodes(tmp_path, trainer_cfg):
    """lr 0 leaves the policy equal to the reference and logs the success of the very episodes a learning
    run of the same seed samples at its first iteration (same prompts, same random numbers)."""
    import dataclasses
    import json

    from fourfold.critical.rl import fine_tune

    policy, ref, tok, settings, _ = rl_setup(tmp_path, "frozen", "reinforce")
    frozen = dataclasses.replace(settings, lr=0.0, group_size=2)
    metrics = fine_tune(policy, ref, tok, frozen, iterations=2, run_dir=tmp_path / "frozen",
                        trainer_cfg=trainer_cfg)  # fmt: skip
    assert metrics["global_step"] == 2
    for p, q in zip(policy.parameters(), ref.parameters()):
        assert torch.equal(p, q)
    policy2, ref2, _, settings2, _ = rl_setup(tmp_path, "learning", "reinforce")
    learning = dataclasses.replace(settings2, group_size=2)
    fine_tune(policy2, ref2, tok, learning, iterations=1, run_dir=tmp_path / "learning",
              trainer_cfg=trainer_cfg)  # fmt: skip

    def first_success(name):
        rows = [json.loads(x) for x in (tmp_path / name / "curves.jsonl").read_text().splitlines()]
        return [r["success"] for r in rows if r["kind"] == "train" and r["step"] == 0]

    assert first_success("frozen") == first_success("learning")
    with pytest.raises(ValueError, match="lr must be >= 0"):
        dataclasses.replace(settings, lr=-1.0).validate(512)
