"""The Hugging Face export of the character model: tokenizer ids, model outputs, loading, the stop rule."""

import pytest
import torch

from fourfold.critical.arithmetic import prompt, scratchpad
from fourfold.critical.hf import (
    SCRATCHPAD_STOP,
    StopRule,
    export_reference,
    fast_tokenizer,
    load_causal_lm,
    saved_extra,
    scratchpad_end,
)
from fourfold.critical.model import build_model, save_checkpoint
from fourfold.critical.tokenizer import FORMAT_CHARS, CharTokenizer


@pytest.fixture(scope="module")
def char_model():
    torch.manual_seed(0)
    tok = CharTokenizer()
    return build_model("micro", tok.vocab_size).eval(), tok


def test_fast_tokenizer_ids_equal_char_tokenizer_round_trip():
    tok = CharTokenizer()
    fast = fast_tokenizer(tok)
    texts = [prompt(128, 367) + scratchpad(128, 367), FORMAT_CHARS, " , \n\n  ", prompt(9999, 1) + "%"]
    for text in texts:
        ids = fast.encode(text)
        assert ids == tok.encode(text)
        assert fast.decode(ids) == text
    assert len(fast) == tok.vocab_size
    assert fast.convert_ids_to_tokens(list(range(tok.vocab_size))) == tok.itos
    assert fast.eos_token_id == fast.pad_token_id == tok.pad_id
    assert fast.padding_side == "left"
    assert fast.decode(tok.encode("12\n%"), skip_special_tokens=True) == "12\n"


def test_export_loads_offline_and_gives_the_same_logits(char_model, tmp_path):
    model, tok = char_model
    ckpt = save_checkpoint(tmp_path / "model.pt", model, tok, extra={"spec": {"n_digits": 3}})
    out = export_reference(ckpt, tmp_path / "hf")
    loaded, fast = load_causal_lm(out)
    ids = torch.tensor([tok.encode(prompt(12, 345) + scratchpad(12, 345))])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert fast.encode("Input:\n1+2") == tok.encode("Input:\n1+2")
    assert loaded.config._name_or_path == str(out)  # TRL rebuilds its reference from this path
    assert loaded.generation_config.eos_token_id == tok.pad_id
    assert saved_extra(out) == {"spec": {"n_digits": 3}} == saved_extra(ckpt)
    with pytest.raises(FileExistsError, match="overwrite"):
        export_reference(ckpt, out)
    export_reference((model, tok), out, overwrite=True)
    assert saved_extra(out) == {}
    # the .pt checkpoint loads through the same function, with the same tokenizer ids
    pt_model, pt_tok = load_causal_lm(ckpt)
    assert pt_tok.encode("Target:") == tok.encode("Target:")
    with pytest.raises(FileNotFoundError, match="neither"):
        load_causal_lm(tmp_path)


def test_export_rejects_a_mismatched_tokenizer(tmp_path):
    model = build_model("micro", 50)
    with pytest.raises(ValueError, match="50 token ids"):
        export_reference((model, CharTokenizer()), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_scratchpad_end_is_the_lightning_loops_episode_end():
    text = scratchpad(128, 367)
    assert scratchpad_end(text) == len(text)
    assert scratchpad_end(text + "Input:\n1+1\n") == len(text)
    assert scratchpad_end(text[:-1]) is None  # result line not closed yet
    assert scratchpad_end("\n<scratch>\n[1] + [2]\n") is None


def test_stop_rule_keeps_the_shortest_prefix_and_stops_generation():
    tok = CharTokenizer()
    fast = fast_tokenizer(tok)
    text = scratchpad(12, 34)
    ids = tok.encode(text + "Input:\n%%")
    assert SCRATCHPAD_STOP.tokens_to_keep(ids, fast) == len(text)
    assert SCRATCHPAD_STOP.tokens_to_keep(tok.encode(text[:-3]), fast) is None
    # the stopping criterion: rows are done once their completion (after the prompt) has ended
    head = tok.encode("Input:\n12+34\nTarget:")
    done_row = torch.tensor(head + tok.encode(text))
    cut = text.index("</scratch>")  # the same length, ending in newlines, before the closing tag
    open_row = torch.tensor(head + tok.encode(text[:cut] + "\n" * (len(text) - cut)))
    stop = SCRATCHPAD_STOP.stopping_criteria(fast, len(head))
    assert stop(torch.stack([done_row, open_row]), None).tolist() == [True, False]
    # without a trigger the rule is checked at every token
    first_line = StopRule(lambda t: t.index("\n") + 1 if "\n" in t else None)
    assert first_line.stopping_criteria(fast, 0)(torch.tensor([tok.encode("ac\nc")]), None).tolist() == [True]


def test_export_cli(char_model, tmp_path, capsys):
    from fourfold.critical.hf import main

    model, tok = char_model
    ckpt = save_checkpoint(tmp_path / "model.pt", model, tok)
    assert main([str(ckpt), str(tmp_path / "hf")]) == 0
    assert "from_pretrained" in capsys.readouterr().out
    assert main([str(ckpt), str(tmp_path / "hf")]) == 2  # exists: refused without --overwrite
    assert main([str(ckpt), str(tmp_path / "hf"), "--overwrite"]) == 0
    assert main([str(tmp_path / "missing.pt"), str(tmp_path / "x")]) == 2


def test_the_shipped_mix_reference_exports_losslessly(tmp_path):
    """The mix reference (a GPT-2) as a Hugging Face directory: same ids, same logits, its spec kept."""
    from fourfold.critical.hf import main
    from fourfold.critical.model import load_checkpoint
    from fourfold.critical.reference import shipped_reference_path

    model, tok, extra = load_checkpoint(shipped_reference_path("mix"))
    assert main(["shipped", str(tmp_path / "ref")]) == 0
    loaded, fast = load_causal_lm(tmp_path / "ref")
    text = prompt(1082, 4567) + scratchpad(1082, 4567)
    assert fast.encode(text) == tok.encode(text) and fast.decode(fast.encode(text)) == text
    ids = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model.eval()(ids).logits)
    assert saved_extra(tmp_path / "ref") == extra and extra["spec"]["n_digits"] == 3
