"""The prioritized KL inside TRL's GRPOTrainer: bitwise the stock trainer at exponent 0, the exact change of
the loss at a positive exponent, positions of left-padded prompts, the guard on TRL's source, a smoke run."""

import inspect
import math
import re
import time
from pathlib import Path

import pytest
import torch

trl = pytest.importorskip(
    "trl", reason="TRL is an optional extra: pip install 'fourfold[trl]' (make install does)"
)
datasets = pytest.importorskip("datasets", reason="TRL's datasets dependency is missing")

from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from fourfold.critical import trl as ftrl  # noqa: E402
from fourfold.critical.arithmetic import is_correct, prompt, scratchpad  # noqa: E402
from fourfold.critical.evaluation import certainty_at_critical_and_ordinary  # noqa: E402
from fourfold.critical.hf import StopRule, export_reference, load_causal_lm  # noqa: E402
from fourfold.critical.kl import beta_rule, certainty, certainty_from_logits  # noqa: E402
from fourfold.critical.model import build_model  # noqa: E402
from fourfold.critical.tokenizer import CharTokenizer  # noqa: E402

PAIRS = [(1, 2), (12, 345), (7, 88), (100, 5)]  # prompts of unequal length: left padding


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random micro GPT-2 with its (tied) token embedding scaled by 10: its certainty J is spread over
    about 0.6-0.9 instead of ~0.002, so weights J^beta are neither ~0 nor ~1 and the tests see them."""
    torch.manual_seed(0)
    tok = CharTokenizer()
    model = build_model("micro", tok.vocab_size)
    with torch.no_grad():
        model.transformer.wte.weight.mul_(10.0)
    return export_reference((model, tok), tmp_path_factory.mktemp("m") / "ref")


def reward(completions, a, b, **_):
    return [float(is_correct(text, x, y)) for text, x, y in zip(completions, a, b)]


def dataset(pairs):
    return datasets.Dataset.from_dict(
        {"prompt": [prompt(a, b) for a, b in pairs], "a": [a for a, _ in pairs], "b": [b for _, b in pairs]}
    )


def config(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=24, learning_rate=1e-3, beta=0.5, loss_type="bnpo", scale_rewards="none",
        bf16=False, gradient_checkpointing=False, use_cpu=True, report_to="none", save_strategy="no",
        logging_steps=1, disable_tqdm=True, seed=0,
    )  # fmt: skip
    settings.update(overrides)
    return GRPOConfig(**settings)


def trainer(cls, model_dir, tmp_path, pairs=PAIRS, args=None, **kwargs):
    torch.manual_seed(0)
    model, tok = load_causal_lm(model_dir)
    t = cls(model=model, reward_funcs=reward, args=args or config(tmp_path), train_dataset=dataset(pairs),
            processing_class=tok, **kwargs)  # fmt: skip
    t.current_gradient_accumulation_steps = 1  # set by Trainer's loop; _compute_loss divides by it
    return t


def batch(trainer_, pairs=PAIRS, seed=0):
    """One generation batch (num_generations completions per prompt), as the training loop makes it."""
    torch.manual_seed(seed)
    rows = [
        {"prompt": prompt(a, b), "a": a, "b": b} for a, b in pairs for _ in range(trainer_.num_generations)
    ]
    return trainer_._generate_and_score_completions(rows)


def loss_and_grads(trainer_, inputs, method=None):
    trainer_.model.zero_grad()
    loss = (method or type(trainer_)._compute_loss)(trainer_, trainer_.model, inputs)
    loss.backward()
    return loss.detach(), {
        n: p.grad.clone() for n, p in trainer_.model.named_parameters() if p.grad is not None
    }


def perturb(model, scale=0.3, seed=1):
    """Move the policy away from the reference (the KL is 0 while they are equal)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


# --- the guard on TRL's source ------------------------------------------------------------------------------


def test_trl_version_and_the_expression_the_subclass_relies_on():
    """Fails loudly when a TRL upgrade moves what the subclass hooks into; then port the subclass."""
    pinned = re.search(
        r'trl = \["trl==([^"]+)"\]', (Path(__file__).parents[2] / "pyproject.toml").read_text()
    )
    assert pinned and pinned.group(1) == ftrl.TESTED_TRL_VERSION == trl.__version__
    loss_source = inspect.getsource(GRPOTrainer._compute_loss)
    assert loss_source.count(ftrl.RELIED_ON) == 1
    # every other use of the coefficient is a comparison with 0 (the subclass's beta compares as a float)
    others = loss_source.replace(ftrl.RELIED_ON, "").count("self.beta")
    assert others == loss_source.count("self.beta != 0.0")
    # the reference is scored through the overridden method, without entropies, on the generation batch
    generation = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert re.search(
        r"ref_per_token_logps, _, _ = self\._get_per_token_logps_and_entropies\(\s*self\.ref_model,",
        generation,
    )
    assert 'output["ref_per_token_logps"] = ref_per_token_logps' in generation
    assert "return completion_ids, logprobs" in inspect.getsource(GRPOTrainer._generate_single_turn)
    assert 'outputs=("log_probs", "entropy")' in inspect.getsource(GRPOTrainer.__init__)
    ftrl.check_trl_compatibility()


def test_certainty_from_entropy_is_kl_certainty():
    probs = torch.softmax(3 * torch.randn(50, 41, generator=torch.Generator().manual_seed(0)), -1)
    entropy = -(probs * probs.log()).sum(-1)
    torch.testing.assert_close(ftrl.certainty_from_entropy(entropy, 41), certainty(probs, "shannon"))


def test_weighted_coefficient_is_beta_except_on_the_kl_tensor():
    w = torch.tensor([[0.5, 1.0]])
    beta = ftrl._TokenWeightedCoefficient(0.2, w)
    assert beta != 0.0 and beta == 0.2 and 2 * beta == pytest.approx(0.4)
    kl = torch.tensor([[2.0, 3.0]])
    assert torch.equal(beta * kl, 0.2 * (w * kl))


# --- the loss ---------------------------------------------------------------------------------------------


def test_exponent_zero_is_bitwise_the_stock_trainer(model_dir, tmp_path):
    stock = trainer(GRPOTrainer, model_dir, tmp_path)
    same_pairs = [(12, 34), (56, 78)]  # equal prompt lengths: no left padding, so positions agree too
    for pairs, fix in ((same_pairs, True), (PAIRS, False)):
        ours = trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, kl_priority_exponent=0.0,
                       positions_from_mask=fix)  # fmt: skip
        for t in (stock, ours):
            perturb(t.model)
        inputs = batch(stock, pairs)
        loss_s, grads_s = loss_and_grads(stock, inputs)
        loss_o, grads_o = loss_and_grads(ours, inputs)
        assert float(loss_s) != 0.0
        assert torch.equal(loss_s, loss_o)
        assert grads_s.keys() == grads_o.keys() and all(torch.equal(grads_s[k], grads_o[k]) for k in grads_s)
        stock = trainer(GRPOTrainer, model_dir, tmp_path)


def test_positive_exponent_changes_the_loss_by_the_weighted_kl(model_dir, tmp_path):
    exponent, args = 3.0, config(tmp_path, beta=0.5, temperature=1.5)
    t = trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, args=args, kl_priority_exponent=exponent)
    perturb(t.model)
    inputs = batch(t)
    loss_p, _ = loss_and_grads(t, inputs)
    loss_s, _ = loss_and_grads(t, inputs, method=GRPOTrainer._compute_loss)  # the stock loss, same models

    # Independently: full forward passes (correct positions), the reference's entropy at T, TRL's k3.
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    pos = (mask.cumsum(-1) - 1).clamp_min(0)
    n = inputs["completion_ids"].shape[1]
    reference, _ = load_causal_lm(model_dir)
    with torch.no_grad():
        logits = {
            name: m(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -n - 1 : -1].float() / 1.5
            for name, m in (("policy", t.model), ("reference", reference))
        }
    actions = inputs["completion_ids"][..., None]
    logp = torch.log_softmax(logits["policy"], -1).gather(-1, actions).squeeze(-1)
    logp_ref = torch.log_softmax(logits["reference"], -1).gather(-1, actions).squeeze(-1)
    j = certainty(torch.softmax(logits["reference"], -1), "shannon")
    kl = torch.exp(logp_ref - logp) - (logp_ref - logp) - 1
    cmask = inputs["completion_mask"].float()
    expected = 0.5 * (((j**exponent - 1) * kl * cmask).sum() / cmask.sum())

    torch.testing.assert_close(inputs["ref_certainty"] * cmask, j * cmask, atol=1e-5, rtol=1e-5)
    w = j**exponent
    assert 0.05 < float(w[cmask.bool()].mean()) < 0.95 and abs(float(expected)) > 1e-3  # the test has teeth
    torch.testing.assert_close(loss_p - loss_s, expected, atol=1e-6, rtol=1e-4)


# --- the traps --------------------------------------------------------------------------------------------


def test_left_padded_batch_scores_like_each_prompt_alone(model_dir, tmp_path):
    tok = load_causal_lm(model_dir)[1]
    texts = [(prompt(a, b), scratchpad(a, b)[:12]) for a, b in PAIRS]

    def scores(t, rows):
        ids = [tok.encode(p + c) for p, c in rows]
        length = max(map(len, ids))
        input_ids = torch.tensor([[tok.pad_token_id] * (length - len(x)) + x for x in ids])
        attention = torch.tensor([[0] * (length - len(x)) + [1] * len(x) for x in ids])
        with torch.no_grad():
            return t._get_per_token_logps_and_entropies(t.ref_model, input_ids, attention, 12)[0]

    ours = trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, kl_priority_exponent=1.0)
    alone = torch.cat([scores(ours, [row]) for row in texts])
    torch.testing.assert_close(scores(ours, texts), alone, atol=1e-5, rtol=1e-5)
    # TRL's own scoring gives the padded rows shifted positions (the trap this fixes)
    plain = trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, kl_priority_exponent=1.0,
                    positions_from_mask=False)  # fmt: skip
    assert (scores(plain, texts) - alone).abs().max() > 1e-2


def test_a_policy_built_in_memory_is_refused_with_the_fix(tmp_path):
    tok = CharTokenizer()
    model = build_model("micro", tok.vocab_size)
    from fourfold.critical.hf import fast_tokenizer

    with pytest.raises(ValueError, match="save_pretrained"):
        ftrl.PrioritizedKLGRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=config(tmp_path),
            train_dataset=dataset(PAIRS),
            processing_class=fast_tokenizer(tok),
        )


def test_bad_arguments_are_refused(model_dir, tmp_path):
    with pytest.raises(ValueError, match="certainty"):
        trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, certainty="max_prob")
    with pytest.raises(ValueError, match="beta"):
        trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, kl_priority_exponent=-1.0)
    with pytest.raises(ValueError, match="GRPOConfig.beta"):
        trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, args=config(tmp_path, beta=0.0),
                kl_priority_exponent=2.0)  # fmt: skip


def test_completion_stop_cuts_completions_where_the_rule_says(model_dir, tmp_path):
    first_line = StopRule(lambda text: text.index("\n") + 1 if "\n" in text else None, trigger="\n")
    t = trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, completion_stop=first_line,
                args=config(tmp_path, max_completion_length=60))  # fmt: skip
    out = batch(t)
    tok = t.processing_class
    lengths = out["completion_mask"].sum(-1).tolist()
    texts = [tok.decode(row[:n]) for row, n in zip(out["completion_ids"].tolist(), lengths)]
    assert any("\n" in text for text in texts)
    for text, n in zip(texts, lengths):
        assert text.count("\n") <= 1 and ("\n" not in text or text.endswith("\n")), text
        assert "\n" in text or "%" in text or n == 60


# --- beta by the rule -------------------------------------------------------------------------------------


def test_beta_by_rule_matches_the_lightning_rule_on_correct_scratchpads(model_dir):
    reference, tok = load_causal_lm(model_dir)
    char_model = build_model("micro", 41)
    char_model.load_state_dict(reference.state_dict())
    pairs = [(1234, 56), (7, 8901), (345, 6789), (12, 34), (5000, 5000)]
    j_crit, j_ord = certainty_at_critical_and_ordinary(char_model.eval(), CharTokenizer(), pairs, 3)
    expected = beta_rule(torch.cat([torch.as_tensor(j_crit), torch.as_tensor(j_ord)]).numpy(), 0.9, 0.1)
    got = ftrl.beta_by_rule(
        reference, tok, [prompt(a, b) for a, b in pairs], [scratchpad(a, b) for a, b in pairs]
    )
    assert got == pytest.approx(expected, rel=1e-4)
    sampled = ftrl.beta_by_rule(reference, tok, [prompt(a, b) for a, b in pairs], max_new_tokens=20, seed=3)
    assert math.isfinite(sampled) and sampled > 0
    with pytest.raises(ValueError, match="one per prompt"):
        ftrl.beta_by_rule(reference, tok, ["Input:"], [])


def test_certainty_of_the_reference_matches_full_logits(model_dir):
    reference, tok = load_causal_lm(model_dir)
    ids = torch.tensor([tok.encode(prompt(12, 34) + scratchpad(12, 34))])
    with torch.no_grad():
        logits = reference(ids).logits[0, :-1]
    from fourfold.critical.tokens import sequence_certainty

    torch.testing.assert_close(
        sequence_certainty(reference, ids.tolist(), tok.pad_token_id, temperature=2.0)[0],
        certainty_from_logits(logits, "shannon", 2.0),
    )


# --- a smoke run ------------------------------------------------------------------------------------------


def test_three_steps_on_cpu_under_30_seconds(model_dir, tmp_path):
    t = trainer(ftrl.PrioritizedKLGRPOTrainer, model_dir, tmp_path, kl_priority_exponent=2.0,
                args=config(tmp_path, max_steps=3))  # fmt: skip
    start = time.perf_counter()
    t.train()
    seconds = time.perf_counter() - start
    steps = [h for h in t.state.log_history if "loss" in h]
    assert len(steps) == 3 and seconds < 30
    for h in steps:
        assert math.isfinite(h["loss"])
        assert 0.0 <= h["kl_weight/min"] <= h["kl_weight/p10"] <= 1.0
        assert h["kl_weight/min"] <= h["kl_weight/mean"] <= 1.0
