"""The static-buffer decoder reproduces the library's full forward pass (left padding, chunked feeding)."""

import pytest
import torch

from fourfold.critical.arithmetic import prompt, scratchpad
from fourfold.critical.decoding import StaticDecoder
from fourfold.critical.model import build_model
from fourfold.critical.rollout import left_pad, position_ids
from fourfold.critical.tokenizer import CharTokenizer


def test_chunked_decoding_matches_the_full_forward_pass_on_real_positions():
    torch.manual_seed(0)
    tok, model = CharTokenizer(), build_model("micro", 41).eval()
    pairs = [(1, 2), (1234, 56789), (12, 345)]
    seqs = [tok.encode(prompt(a, b) + scratchpad(a, b)[:30]) for a, b in pairs]
    ids, mask = left_pad(seqs, tok.pad_id)
    pos = position_ids(mask)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    decoder = StaticDecoder(model, len(pairs), ids.shape[1] + 5)
    pieces, start = [], 0
    for width in (17, 1, 1, 6, ids.shape[1] - 25):  # a prompt-sized chunk, single tokens, a longer chunk
        end = start + width
        pieces.append(decoder(ids[:, start:end], pos[:, start:end], mask[:, start:end].bool()))
        start = end
    stepped = torch.cat(pieces, dim=1)
    real = mask.bool()
    assert torch.isfinite(stepped).all()
    assert torch.allclose(stepped[real], full[real], atol=1e-5)
    with pytest.raises(ValueError, match="buffer"):
        decoder(ids[:, :6], pos[:, :6], mask[:, :6].bool())
