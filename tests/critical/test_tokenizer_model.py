"""Tokenizer round trip and vocabulary; model sizes; checkpoints that reject a mismatched config."""

import pytest
import torch

from fourfold.critical.arithmetic import prompt, scratchpad
from fourfold.critical.model import (
    Critic,
    build_model,
    count_parameters,
    load_checkpoint,
    save_checkpoint,
)
from fourfold.critical.tokenizer import CharTokenizer


def test_tokenizer_covers_the_format_and_round_trips():
    tok = CharTokenizer()
    assert tok.vocab_size == 41 and tok.pad_id == tok.eos_id == 40
    text = prompt(9087, 123) + scratchpad(9087, 123)
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(ValueError, match="not in the tokenizer"):
        tok.encode("x")


def test_model_sizes():
    assert 0.3e6 < count_parameters(build_model("tiny", 41)) < 0.5e6
    assert 0.8e6 < count_parameters(build_model("small", 41)) < 0.9e6
    with pytest.raises(ValueError, match="unknown model size"):
        build_model("huge", 41)


def test_checkpoint_round_trip_and_mismatch_errors(tmp_path):
    tok = CharTokenizer()
    torch.manual_seed(0)
    model = build_model("micro", tok.vocab_size)
    path = save_checkpoint(tmp_path / "m.pt", model, tok, {"n_digits": 3})
    loaded, loaded_tok, extra = load_checkpoint(path, tok, "micro")
    assert extra == {"n_digits": 3} and loaded_tok.itos == tok.itos
    ids = torch.tensor([tok.encode(prompt(12, 34))])
    assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
    with pytest.raises(ValueError, match="architecture"):
        load_checkpoint(path, tok, "tiny")
    other = CharTokenizer(chars=tok.chars.replace("u", ""))
    with pytest.raises(ValueError, match="tokenizer"):
        load_checkpoint(path, other)
    with pytest.raises(FileNotFoundError, match="pre-train"):
        load_checkpoint(tmp_path / "missing.pt")


def test_critic_reads_every_position():
    critic = Critic(32)
    assert critic(torch.randn(2, 5, 32)).shape == (2, 5)
