"""Pre-training: target-only labels, the schedule, a few steps lower the loss, the cache and its checks."""

import pytest
import torch

from fourfold.critical.arithmetic import prompt, scratchpad
from fourfold.critical.losses import IGNORE, target_loss, warmup_cosine
from fourfold.critical.pretrain import (
    AdditionExamples,
    PretrainSpec,
    cached_model_path,
    collate,
    pretrained_model,
    training_pairs,
)
from fourfold.critical.tokenizer import CharTokenizer


def test_labels_cover_the_target_only():
    tok = CharTokenizer()
    batch = collate(list(AdditionExamples(tok, [(12, 3), (456, 78)])), tok.pad_id)
    for i, (a, b) in enumerate([(12, 3), (456, 78)]):
        labelled = batch["labels"][i][batch["labels"][i] != IGNORE]
        assert tok.decode(labelled) == scratchpad(a, b)
        assert batch["attention_mask"][i].sum() == len(prompt(a, b) + scratchpad(a, b))


def test_target_loss_ignores_masked_positions():
    logits = torch.randn(1, 4, 41)
    labels = torch.tensor([[IGNORE, 3, IGNORE, 5]])
    expected = 0.5 * (
        torch.nn.functional.cross_entropy(logits[0, 0:1], labels[0, 1:2])
        + torch.nn.functional.cross_entropy(logits[0, 2:3], labels[0, 3:4])
    )
    assert float(target_loss(logits, labels)) == pytest.approx(float(expected), rel=1e-5)


def test_warmup_then_cosine():
    values = [warmup_cosine(s, 10, 100) for s in range(120)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[100] == pytest.approx(0.1) and values[119] == pytest.approx(0.1)


def test_spec_validation_and_pairs_are_seeded():
    with pytest.raises(ValueError, match="N"):
        PretrainSpec(0, 0.0, 10, 4, 1e-3, 1, 0.0, "micro", 0).validate()
    spec = PretrainSpec(2, 0.1, 5, 4, 1e-3, 1, 0.0, "micro", 0)
    assert training_pairs(spec) == training_pairs(spec) and len(training_pairs(spec)) == 20


def test_a_few_pretraining_steps_lower_the_loss_and_the_cache_is_reused(tmp_path, trainer_cfg):
    tok = CharTokenizer()
    spec = PretrainSpec(2, 0.0, 30, 16, 3e-3, 3, 0.0, "micro", 0)
    data = collate(list(AdditionExamples(tok, training_pairs(spec)[:64])), tok.pad_id)

    def loss_of(model):
        with torch.no_grad():
            out = model(input_ids=data["input_ids"], attention_mask=data["attention_mask"])
            return float(target_loss(out.logits, data["labels"]))

    from fourfold.critical.model import build_model

    torch.manual_seed(spec.seed)
    before = loss_of(build_model("micro", tok.vocab_size))
    model, info = pretrained_model(spec, tok, tmp_path, trainer_cfg)
    after = loss_of(model)
    assert after < 0.7 * before
    assert cached_model_path(tmp_path, spec).is_file()
    again, _ = pretrained_model(spec, tok, tmp_path, trainer_cfg)  # loaded, not retrained
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))
    # a cached checkpoint whose size does not match the spec is an error before compute
    cached_model_path(tmp_path, spec).replace(cached_model_path(tmp_path, spec).with_name("keep.pt"))
    wrong = PretrainSpec(2, 0.0, 30, 16, 3e-3, 3, 0.0, "tiny", 0)
    cached_model_path(tmp_path, wrong).parent.mkdir(parents=True)
    cached_model_path(tmp_path, spec).with_name("keep.pt").replace(cached_model_path(tmp_path, wrong))
    with pytest.raises(ValueError, match="architecture"):
        pretrained_model(wrong, tok, tmp_path, trainer_cfg)


def test_too_long_examples_fail_before_compute(tmp_path, trainer_cfg):
    spec = PretrainSpec(9, 0.0, 5, 4, 1e-3, 1, 0.0, "micro", 0)
    with pytest.raises(ValueError, match="positions"):
        pretrained_model(spec, CharTokenizer(), tmp_path, trainer_cfg)


def test_a_snapshot_is_the_run_stopped_at_that_step(tmp_path, trainer_cfg):
    """``stop_at = k`` trains the first k steps of the full run (same data, same schedule), so the weights
    kept at step k of the full run (``snapshot_every``) are exactly that checkpoint."""
    from fourfold.critical.model import load_checkpoint
    from fourfold.critical.pretrain import snapshot_path

    tok = CharTokenizer()
    full = PretrainSpec(2, 0.1, 6, 4, 3e-3, 2, 0.01, "micro", 0, both_fraction=0.5)
    pretrained_model(full, tok, tmp_path / "a", trainer_cfg, snapshot_every=2)
    snapshot, _, extra = load_checkpoint(snapshot_path(tmp_path / "a", full, 4), tok, "micro")
    assert extra["spec"]["stop_at"] == 4 and extra["snapshot_of"] == full.name
    stopped = PretrainSpec(2, 0.1, 6, 4, 3e-3, 2, 0.01, "micro", 0, both_fraction=0.5, stop_at=4)
    assert stopped.name != full.name and "_stop4_" in stopped.name
    model, _ = pretrained_model(stopped, tok, tmp_path / "b", trainer_cfg)
    final, _ = pretrained_model(full, tok, tmp_path / "a", trainer_cfg)
    for (name, p), q in zip(model.named_parameters(), snapshot.parameters()):
        assert torch.equal(p, q), name
    assert any(not torch.equal(q, r) for q, r in zip(snapshot.parameters(), final.parameters()))
    with pytest.raises(ValueError, match="stop_at"):
        PretrainSpec(2, 0.1, 6, 4, 3e-3, 2, 0.01, "micro", 0, stop_at=7).validate()


def test_names_of_specs_made_before_stop_at_are_unchanged():
    spec = PretrainSpec(3, 0.05, 2000, 32, 2e-3, 100, 0.01, "tiny", 0, both_fraction=0.2)
    assert spec.name == "N3_mix0.05_both0.2_tiny_2000steps_345650d5"  # the cached quick reference
