"""The critical page with Hugging Face model directories (issue 20, deliverable 5): our exported reference
gives the same J at every character as its .pt checkpoint, a Llama with a subword tokenizer gets one J per
character from the token that holds it, and a folder that is not a causal LM gets one message."""

from __future__ import annotations

import html
import re

import pytest

from fourfold.critical import scratchpad
from fourfold.critical.arithmetic import prompt
from fourfold.web.pages.critical import (
    NOT_A_CAUSAL_LM,
    ModelChoice,
    find_models,
    load_model,
    model_certainty,
)
from fourfold.web.uploads import UploadError

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def models_folder(tmp_path_factory, micro_checkpoint):
    """A --checkpoints folder holding the micro model exported as an HF directory, a tiny Llama with a
    byte-level BPE tokenizer trained here on scratchpads, and a folder whose config.json is garbage."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from fourfold.critical.hf import export_reference

    folder = tmp_path_factory.mktemp("hf_models")
    export_reference(micro_checkpoint, folder / "micro")

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = [prompt(a, b) + scratchpad(a, b) for a in range(0, 999, 37) for b in range(0, 999, 53)]
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<pad>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", pad_token="<pad>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder / "llama")
    tokenizer.save_pretrained(folder / "llama")

    (folder / "broken").mkdir()
    (folder / "broken" / "config.json").write_text("{not json")
    return folder


def _choice(folder, name):
    return next(c for c in find_models(folder.parent, (folder,)) if c.key == f"{folder.name}: {name}/")


def test_model_directories_are_listed_by_name(models_folder):
    listed = {c.key: c.kind for c in find_models(models_folder.parent, (models_folder,))}
    for name in ("micro", "llama", "broken"):
        assert listed[f"{models_folder.name}: {name}/"] == "hf"


def test_the_exported_reference_scores_like_its_checkpoint(models_folder, micro_checkpoint):
    pt = load_model(ModelChoice("pt", micro_checkpoint))
    hf = load_model(_choice(models_folder, "micro"))
    assert hf[2] == pt[2]  # the exported provenance carries the checkpoint's extra (its N, where saved)
    for a, b in [(987, 45), (12, 3456), (0, 0)]:
        expected = model_certainty(pt[0], pt[1], a, b)
        got = model_certainty(hf[0], hf[1], a, b)
        assert len(got) == len(scratchpad(a, b))
        assert got == pytest.approx(expected, abs=1e-6)


def test_a_subword_model_gives_each_character_its_tokens_certainty(models_folder):
    model, tokenizer, extra = load_model(_choice(models_folder, "llama"))
    assert extra == {}
    a, b = 4321, 765
    values = model_certainty(model, tokenizer, a, b)
    head, text = prompt(a, b), scratchpad(a, b)
    assert len(values) == len(text) and all(0.0 <= j <= 1.0 for j in values)
    encoded = tokenizer(head + text, add_special_tokens=False, return_offsets_mapping=True)
    multi = [(s, e) for s, e in encoded["offset_mapping"] if s >= len(head) and e - s > 1]
    assert multi, "the BPE tokenizer should merge some scratchpad characters"
    for start, end in multi:  # every character of one token carries that token's J
        span = values[start - len(head) : end - len(head)]
        assert max(span) == min(span)


def test_a_folder_that_is_not_a_causal_lm_gets_one_message(models_folder):
    with pytest.raises(UploadError, match=re.escape(NOT_A_CAUSAL_LM)):
        load_model(_choice(models_folder, "broken"))


def test_the_page_shows_an_hf_models_certainty(models_folder, tmp_path):
    from fastapi.testclient import TestClient

    from fourfold.web.app import Settings, create_app

    app = create_app(Settings(root=tmp_path, checkpoint_folders=(models_folder,)))
    client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    key = f"{models_folder.name}: llama/"
    assert f'value="{html.escape(key)}"' in client.get("/critical").text
    response = client.post("/critical", data={"a": "987", "b": "45", "n_digits": "3", "model": key})
    assert response.status_code == 200
    text = scratchpad(987, 45)
    assert response.text.count('title="J = ') == len(text) - text.count("\n")
    response = client.post("/critical", data={"a": "1", "b": "2", "model": f"{models_folder.name}: broken/"})
    assert response.status_code == 400 and NOT_A_CAUSAL_LM in html.unescape(response.text)
    assert str(models_folder) not in response.text


def test_both_shipped_references_are_offered_last(tmp_path):
    """A fresh clone (no cache, no folders) offers the package's references: the quick one first."""
    choices = find_models(tmp_path)
    assert [c.key for c in choices] == ["shipped quick reference", "shipped mix reference"]
    assert all(c.path.is_file() and c.kind != "hf" for c in choices)
