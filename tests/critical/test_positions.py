"""Position schemes (``critical.model.positions``, issue 19): each builds, trains a step, decodes
incrementally as the full forward pass does, and its sampler's log-probs equal the teacher-forced ones on
left-padded batches; digit indices match hand-computed ones and an independent string implementation."""

import re

import numpy as np
import pytest
import torch

from fourfold.critical.arithmetic import prompt, scratchpad
from fourfold.critical.digit_index import (
    DIGIT_INDEX_SIZE,
    offset_indices,
    text_digit_indices,
    training_offsets,
)
from fourfold.critical.losses import target_loss
from fourfold.critical.model import (
    POSITIONS,
    architecture,
    build_model,
    context_length,
    load_checkpoint,
    position_scheme,
    save_checkpoint,
)
from fourfold.critical.pretrain import PretrainSpec, collate, training_examples
from fourfold.critical.rollout import action_log_probs, left_pad, position_ids, sample, teacher_forced
from fourfold.critical.tokenizer import CharTokenizer

TOK = CharTokenizer()
PROMPTS = [prompt(1, 2), prompt(1234, 56789), prompt(12, 345)]  # three lengths: left padding


def micro(positions, seed=0):
    torch.manual_seed(seed)
    return build_model("micro", TOK.vocab_size, positions=positions).eval()


def digits_with_index(text: str) -> list[tuple[str, int]]:
    return [(c, i) for c, i in zip(text, text_digit_indices(text)) if c.isdigit()]


def test_digit_indices_of_a_scratchpad_by_hand():
    assert digits_with_index(prompt(1234, 56)) == [("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 1), ("6", 2)]
    first = "[1,2,8] + [3,6,7] , A=[] , C=0 , 8+7+0=15 , A->5 , C->1"
    assert digits_with_index(first) == [
        ("1", 1), ("2", 2), ("8", 3), ("3", 1), ("6", 2), ("7", 3),  # the two digit lists
        ("0", 1), ("8", 1), ("7", 1), ("0", 1), ("1", 1), ("5", 2), ("5", 1), ("1", 1),
    ]  # fmt: skip
    assert digits_with_index("[] + [] , A=[4,9,5] C=0 , END") == [("4", 1), ("9", 2), ("5", 3), ("0", 1)]
    assert digits_with_index("</scratch>\n1 9 9 8\n") == [("1", 1), ("9", 2), ("9", 3), ("8", 4)]
    # A 4-digit list of a model pre-trained on 3 digits: its 4th element has index 4, as in the operand.
    text = prompt(1234, 5) + scratchpad(1234, 5)
    line = text.split("\n")[4]
    assert line.startswith("[1,2,3,4] + [5]") and digits_with_index(line)[:5] == [
        ("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 1)]  # fmt: skip
    assert [i for c, i in zip(text, text_digit_indices(text)) if not c.isdigit()] == [0] * sum(
        not c.isdigit() for c in text
    )


def string_indices(text: str) -> list[int]:
    """An independent implementation: a run is a regex match, a digit then (a separator and) digits."""
    out = [0] * len(text)
    for run in re.finditer(r"\d(?:[, ]?\d)*", text):
        k = 0
        for offset, char in enumerate(run.group()):
            if char.isdigit():
                k += 1
                out[run.start() + offset] = k
    return out


def test_digit_indices_equal_an_independent_string_implementation_on_random_additions():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = (int(x) for x in rng.integers(0, 10 ** rng.integers(1, 9, size=2)))
        text = prompt(a, b) + scratchpad(a, b)
        assert text_digit_indices(text) == string_indices(text), (a, b)
    # and on left-padded batches: padding is not a digit, rows are independent
    ids, _ = left_pad([TOK.encode(prompt(7, 89) + scratchpad(7, 89)), TOK.encode(prompt(1, 2))], TOK.pad_id)
    model = micro("digit_index")
    batch = model.base_model.digit_indices(ids)
    alone = model.base_model.digit_indices(ids[1:, -len(prompt(1, 2)) :])
    assert (
        batch[1, -len(prompt(1, 2)) :].tolist() == alone[0].tolist()
        and (batch[1, : -len(prompt(1, 2))] == 0).all()
    )


def test_a_digit_run_past_the_table_shares_its_last_row():
    """A sampling model may write 40 digits in a row: no error, and the incremental decoder still agrees."""
    from fourfold.critical.decoding import decoder

    model = micro("digit_index")
    ids = torch.tensor([TOK.encode(prompt(12, 34) + "\n<scratch>\n[" + "1" * 40)])
    assert max(text_digit_indices(TOK.decode(ids[0]))) == 40 > DIGIT_INDEX_SIZE
    mask = torch.ones_like(ids)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits
    step = decoder(model, 1, ids.shape[1])
    first = step(ids[:, :20], position_ids(mask)[:, :20], mask[:, :20].bool())
    rest = [step(ids[:, t : t + 1], position_ids(mask)[:, t : t + 1], mask[:, t : t + 1].bool())
            for t in range(20, ids.shape[1])]  # fmt: skip
    assert torch.isfinite(full).all()
    assert torch.allclose(torch.cat([first, *rest], dim=1), full, atol=1e-5)


def test_training_offsets_shift_digits_only_and_stay_in_the_table():
    rng = np.random.default_rng(1)
    offsets = training_offsets(rng, 1000, 4)
    assert offsets.min() == 0 and offsets.max() == DIGIT_INDEX_SIZE - 1 - 5
    index = torch.tensor([[0, 1, 2, 0, 1], [1, 0, 0, 1, 2]])
    assert offset_indices(index, torch.tensor([3, 0])).tolist() == [[0, 4, 5, 0, 4], [1, 0, 0, 1, 2]]
    with pytest.raises(ValueError, match="index table"):
        training_offsets(rng, 3, DIGIT_INDEX_SIZE)


@pytest.mark.parametrize("positions", list(POSITIONS))
def test_each_scheme_builds_with_its_positions(positions):
    model = micro(positions)
    assert position_scheme(model) == positions and context_length(model) == 512
    assert type(model).__name__ == ("LlamaForCausalLM" if positions == "rope" else type(model).__name__)
    if positions in ("nope", "digit_index"):
        wpe = model.transformer.wpe.weight
        assert not wpe.requires_grad and not wpe.any()
    if positions == "learned":
        assert type(model).__name__ == "GPT2LMHeadModel" and "positions" not in architecture(model)


@pytest.mark.parametrize("positions", list(POSITIONS))
def test_each_scheme_trains_a_step(positions):
    """One AdamW step on the target-only loss (with training offsets for digit_index) lowers the loss on
    the batch and leaves a frozen position table at zero."""
    spec = PretrainSpec(2, 0.0, 2, 8, 3e-3, 1, 0.0, "micro", 0, positions=positions)
    items = list(training_examples(spec, TOK))
    assert (len(items[0]) == 3) == (positions == "digit_index")  # the offset travels with the example
    batch = collate(items, TOK.pad_id)
    model = micro(positions).train()
    extra = {}
    if "digit_offset" in batch:
        index = offset_indices(model.base_model.digit_indices(batch["input_ids"]), batch["digit_offset"])
        extra["digit_index"] = index

    def loss():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra)
        return target_loss(out.logits, batch["labels"])

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    before = loss()
    before.backward()
    opt.step()
    assert float(loss().detach()) < float(before.detach())
    if positions in ("nope", "digit_index"):
        assert not model.transformer.wpe.weight.any()


@pytest.mark.parametrize("positions", list(POSITIONS))
def test_sampler_and_teacher_forced_log_probs_agree_on_left_padded_batches(positions):
    model = micro(positions, seed=1)
    rollout = sample(model, TOK, PROMPTS, 60, temperature=1.5, generator=torch.Generator().manual_seed(3))
    assert rollout.attention_mask[:, : rollout.prompt_len].eq(0).any()  # some rows are left-padded
    logp, _ = action_log_probs(teacher_forced(model, rollout), rollout.actions, 1.5)
    mask = rollout.action_mask
    assert torch.allclose(logp[mask], rollout.logp[mask], atol=1e-5)
    # the cache changes nothing, and a row does not depend on its padded batch mates
    naive = sample(model, TOK, PROMPTS, 60, temperature=1.5, generator=torch.Generator().manual_seed(3),
                   use_cache=False)  # fmt: skip
    assert torch.equal(naive.tokens, rollout.tokens)
    greedy = sample(model, TOK, PROMPTS, 40, greedy=True)
    for i, p in enumerate(PROMPTS):
        assert sample(model, TOK, [p], 40, greedy=True).texts[0] == greedy.texts[i]


@pytest.mark.parametrize("positions", list(POSITIONS))
def test_incremental_decoding_matches_the_full_forward_pass(positions):
    from fourfold.critical.decoding import decoder

    model = micro(positions)
    seqs = [TOK.encode(prompt(a, b) + scratchpad(a, b)[:30]) for a, b in [(1, 2), (1234, 56789), (12, 345)]]
    ids, mask = left_pad(seqs, TOK.pad_id)
    pos = position_ids(mask)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    step = decoder(model, len(seqs), ids.shape[1])
    pieces, start = [], 0
    for width in (17, 1, 1, 6, ids.shape[1] - 25):
        pieces.append(step(ids[:, start : start + width], pos[:, start : start + width],
                           mask[:, start : start + width].bool()))  # fmt: skip
        start += width
    stepped = torch.cat(pieces, dim=1)
    assert torch.allclose(stepped[mask.bool()], full[mask.bool()], atol=1e-5)


@pytest.mark.parametrize("positions", ["nope", "rope", "digit_index"])
def test_checkpoints_carry_the_scheme(tmp_path, positions):
    model = micro(positions)
    path = save_checkpoint(tmp_path / "m.pt", model, TOK)
    loaded, _, _ = load_checkpoint(path, TOK, "micro", positions)
    ids = torch.tensor([TOK.encode(prompt(123, 4567) + scratchpad(123, 4567)[:40])])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
    assert position_scheme(loaded) == positions
    with pytest.raises(ValueError, match="position scheme"):
        load_checkpoint(path, TOK, "micro", "learned")


def test_a_learned_model_has_the_same_cache_key_and_other_schemes_their_own():
    quick = dict(n_digits=3, mix_fraction=0.05, steps=2000, batch_size=32, lr=2e-3, warmup_steps=100,
                 weight_decay=0.01, size="tiny", seed=0, both_fraction=0.2)  # fmt: skip
    assert PretrainSpec(**quick).name == "N3_mix0.05_both0.2_tiny_2000steps_345650d5"
    assert PretrainSpec(**quick, positions="learned").name == PretrainSpec(**quick).name
    names = {PretrainSpec(**quick, positions=p).name for p in POSITIONS}
    assert len(names) == 4 and any(n.startswith("N3_mix0.05_both0.2_tiny_nope_2000steps_") for n in names)
    assert "positions" not in PretrainSpec(**quick).record()  # checkpoints and degrees.csv as before
    assert PretrainSpec(**quick, positions="rope").record()["positions"] == "rope"
    with pytest.raises(ValueError, match="position scheme"):
        PretrainSpec(**quick, positions="alibi").validate()


def test_rl_loss_runs_on_every_scheme():
    """The RL module's collect and loss (teacher-forced pass, reference, critic's hidden states) and the
    ``norms`` subset work through the causal-LM interface of every scheme."""
    import copy

    from fourfold.critical.lit import RLLit, RLSettings, trainable_parameters
    from fourfold.critical.model import Critic, hidden_size

    for positions in POSITIONS:
        policy = micro(positions)
        settings = RLSettings(n_digits=1, episodes=4, group_size=2, kl_mode="prioritized", beta=2.0,
                              algorithm="a2c", seed=0)  # fmt: skip
        module = RLLit(policy, copy.deepcopy(policy), TOK, settings, critic=Critic(hidden_size(policy)))
        rollout, rewards, _ = module.collect(0)
        loss, stats, _ = module.loss(rollout, rewards)
        loss.backward()
        assert np.isfinite(stats["loss"]) and np.isfinite(stats["value_loss"])
        norms = trainable_parameters(policy, "norms")
        assert norms and all(p.dim() == 1 for p in norms)


def test_pretraining_a_digit_index_model_goes_through_fit_with_offsets(tmp_path, trainer_cfg):
    """The pre-training stage (``PretrainLit`` under ``fit``) trains a non-learned scheme and caches it
    under its own key; the cached file is read back with its scheme."""
    from fourfold.critical.pretrain import cached_model_path, pretrained_model

    spec = PretrainSpec(2, 0.0, 3, 8, 3e-3, 1, 0.0, "micro", 0, positions="digit_index")
    model, info = pretrained_model(spec, TOK, tmp_path, trainer_cfg)
    assert info["spec"]["positions"] == "digit_index" and np.isfinite(info["final_train_loss"])
    assert "_digit_index_" in cached_model_path(tmp_path, spec).parent.name
    again, _ = pretrained_model(spec, TOK, tmp_path, trainer_cfg)
    assert position_scheme(again) == "digit_index"
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))
