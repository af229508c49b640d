"""Batched sampling: the KV cache changes nothing, rows are independent of padding, episodes end right."""

import torch

from fourfold.critical.arithmetic import prompt, scratchpad
from fourfold.critical.evaluation import target_rollout
from fourfold.critical.model import build_model
from fourfold.critical.rollout import action_log_probs, left_pad, position_ids, sample, teacher_forced
from fourfold.critical.tokenizer import CharTokenizer

PROMPTS = [prompt(1, 2), prompt(1234, 56789), prompt(12, 345)]


def micro(seed=0):
    torch.manual_seed(seed)
    return build_model("micro", 41).eval()


def test_left_pad_and_positions():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=40)
    assert ids.tolist() == [[5, 6, 7], [40, 40, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert position_ids(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


def test_greedy_with_kv_cache_equals_reencoding_the_prefix():
    tok, model = CharTokenizer(), micro()
    cached = sample(model, tok, PROMPTS, 50, greedy=True)
    naive = sample(model, tok, PROMPTS, 50, greedy=True, use_cache=False)
    assert torch.equal(cached.tokens, naive.tokens)


def test_sampling_with_cache_equals_without_for_the_same_generator():
    tok, model = CharTokenizer(), micro(1)
    a = sample(model, tok, PROMPTS, 40, temperature=2.0, generator=torch.Generator().manual_seed(3))
    b = sample(
        model, tok, PROMPTS, 40, temperature=2.0, generator=torch.Generator().manual_seed(3), use_cache=False
    )
    assert torch.equal(a.tokens, b.tokens)


def test_a_row_does_not_depend_on_its_padded_batch_mates():
    tok, model = CharTokenizer(), micro()
    batch = sample(model, tok, PROMPTS, 30, greedy=True)
    for i, p in enumerate(PROMPTS):
        alone = sample(model, tok, [p], 30, greedy=True)
        assert batch.texts[i] == alone.texts[0]


def test_episode_ends_after_the_result_line_and_pads_the_rest():
    """A model forced to emit a fixed text stops at the newline after the result line."""
    tok = CharTokenizer()

    class Scripted(torch.nn.Module):
        def __init__(self, text):
            super().__init__()
            self.ids = tok.encode(text + "999")
            self.config = build_model("micro", 41).config

        def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False, **kw):
            from types import SimpleNamespace

            generated = attention_mask.shape[1] - self.prompt_len
            logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], 41)
            logits[:, -1, self.ids[min(generated, len(self.ids) - 1)]] = 10.0
            return SimpleNamespace(logits=logits, cache=None, past_key_values=None)

    target = scratchpad(12, 34)
    model = Scripted(target)
    model.prompt_len = len(prompt(12, 34))
    out = sample(model, tok, [prompt(12, 34)], 200, greedy=True, use_cache=False)
    assert out.texts[0] == target
    assert int(out.action_mask.sum()) == len(target)


def test_tokens_after_the_end_contribute_nothing():
    tok, model = CharTokenizer(), micro()
    episodes = target_rollout(tok, [(12, 34), (1234, 5678)])  # the first episode is shorter
    logits = teacher_forced(model, episodes)
    logp, _ = action_log_probs(logits, episodes.actions)
    short = int(episodes.action_mask[0].sum())
    assert short < episodes.action_mask.shape[1]
    # changing the padded tail of episode 0 leaves its valid log-probs unchanged (causal + masked)
    altered = target_rollout(tok, [(12, 34), (1234, 5678)])
    altered.tokens[0, episodes.prompt_len + short :] = tok.stoi["7"]
    logp2, _ = action_log_probs(teacher_forced(model, altered), altered.actions)
    assert torch.allclose(logp[0, :short], logp2[0, :short], atol=1e-6)


def test_first_error_positions_are_where_the_top_choice_under_the_correct_prefix_is_wrong():
    from fourfold.critical.evaluation import first_error_positions, probability_at

    tok = CharTokenizer()
    torch.manual_seed(2)
    model = build_model("micro", 41).eval()
    pairs = [(12, 34), (5, 678), (91, 9)]
    found = first_error_positions(model, tok, pairs)
    assert found  # an untrained model gets them wrong
    logits = teacher_forced(model, target_rollout(tok, pairs))
    for i, (offset, char) in found.items():
        assert scratchpad(*pairs[i])[offset] == char
        assert int(logits[i, offset].argmax()) != tok.stoi[char]  # same prefix, different choice
    p = probability_at(model, tok, pairs, found)
    expected = [float(torch.softmax(logits[i, o], -1)[tok.stoi[c]]) for i, (o, c) in found.items()]
    assert abs(p - sum(expected) / len(expected)) < 1e-6
