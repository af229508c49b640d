"""The shipped references (issue 19, item 6), the quick preset's and the mix preset's: each is the file
its provenance describes, its preset's spec, it scores as its preset's committed Table 1 says, and it
seeds an empty cache instead of pre-training."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fourfold.critical.reference import (
    SHIPPED,
    compare,
    file_sha256,
    provenance,
    seed_cache,
    shipped_reference_path,
    shipped_spec,
    tensor_sha256,
)
from fourfold.critical.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parents[2]
# each preset's reference: a GPT-2 with learned positions and 5% long examples, one without (NoPE) and 2%
SPEC_NAMES = {
    "mix": "N3_mix0.05_both0.2_tiny_2000steps_345650d5",
    "quick": "N3_mix0.02_both0.2_tiny_long_nope_2000steps_437df472",
}


def table1(name: str) -> Path:
    return ROOT / "experiments" / "critical" / name / "results" / "table1.csv"


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    from fourfold.critical.reference import load_shipped_reference

    torch.set_num_threads(1)
    model, tok, extra = load_shipped_reference(CharTokenizer(), request.param)
    return model.eval(), tok, extra, request.param


def test_every_shipped_name_is_described():
    assert set(SHIPPED) == set(SPEC_NAMES) and SHIPPED[0] == "quick"
    with pytest.raises(ValueError, match="no shipped reference named"):
        shipped_reference_path("long")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_file_is_the_one_its_provenance_describes(name):
    path, info = shipped_reference_path(name), provenance(name)
    assert path.is_file() and path.stat().st_size < 3_000_000 and info["file"] == path.name
    assert file_sha256(path) == info["sha256"]
    payload = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain types only
    assert tensor_sha256(payload["state_dict"]) == info["tensors_sha256"]
    assert {t.dtype for t in payload["state_dict"].values()} == {torch.float32}
    assert payload["extra"]["spec"] == info["spec"] and shipped_spec(name).name == info["spec_name"]
    assert info["spec_name"] == SPEC_NAMES[name]
    assert {"command", "seed", "steps"} <= set(info) and info["steps"] == 2000
    assert f"experiment=critical/{name} " in info["command"]


@pytest.mark.parametrize("name", SHIPPED)
def test_it_is_its_presets_reference(name):
    from hydra import compose, initialize_config_dir

    from fourfold.core.cli import CONF_DIR
    from fourfold.critical.settings import degree_specs

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment=critical/{name}"])
    assert cfg.critical.pretrain.shipped_reference is True
    spec = degree_specs(cfg.critical)[cfg.critical.main_degree]
    assert spec == shipped_spec(name) and spec.record() == provenance(name)["spec"]


def test_it_scores_as_the_committed_table1(shipped):
    """Table 1's certainty numbers of the preset's committed results, recomputed from the shipped file on
    the same 50 problems (``run.stage_table1``'s seeds)."""
    from fourfold.critical.arithmetic import eval_pairs
    from fourfold.critical.evaluation import certainty_gap

    model, tok, _, name = shipped
    committed = pd.read_csv(table1(name)).iloc[0]
    assert committed.degree == provenance(name)["spec_name"]
    pairs = eval_pairs(np.random.default_rng([1234, 99, 3]), 50, 4, "identical")
    gap = certainty_gap(model, tok, pairs, 3, "shannon", 1.0)
    got = {
        "delta_decision": gap["decision_delta"].mean(),
        "j_decision": gap["decision_j"].mean(),
        "delta_critical": gap["delta_critical"].mean(),
        "delta_other": gap["delta_other"].mean(),
        "mean_j_all": gap["j_values"].mean(),
    }
    for key, value in got.items():
        assert value == pytest.approx(committed[key], rel=1e-6, abs=1e-9), key


@pytest.mark.slow
def test_its_greedy_failures_are_the_committed_ones(shipped):
    from fourfold.critical.arithmetic import eval_pairs
    from fourfold.critical.evaluation import certainty_gap, first_error_positions

    model, tok, _, name = shipped
    committed = pd.read_csv(table1(name)).iloc[0]
    pairs = eval_pairs(np.random.default_rng([1234, 99, 3]), 50, 4, "identical")
    failures = first_error_positions(model, tok, pairs)
    gap = certainty_gap(model, tok, pairs, 3, "shannon", 1.0, failures=failures)
    assert len(failures) == committed.n_failures
    assert gap["delta_failure"].mean() == pytest.approx(committed.delta_failure, rel=1e-6)


@pytest.mark.parametrize("name", SHIPPED)
def test_it_seeds_an_empty_cache_instead_of_pretraining(tmp_path, trainer_cfg, name):
    from fourfold.critical.pretrain import cached_model_path, pretrained_model

    spec, info = shipped_spec(name), provenance(name)
    path = seed_cache(tmp_path, spec)
    assert path == cached_model_path(tmp_path, spec) and file_sha256(path) == info["sha256"]
    note = json.loads(path.with_name("shipped.json").read_text())
    assert note["sha256"] == info["sha256"] and note["provenance"] == f"{name}_reference.json"
    assert seed_cache(tmp_path, spec) is None  # already there: left alone
    model, extra = pretrained_model(spec, CharTokenizer(), tmp_path, trainer_cfg)
    assert not (path.parent / "fit").exists() and extra["spec"] == info["spec"]
    assert seed_cache(tmp_path / "other", replace(spec, steps=1999)) is None
    assert seed_cache(tmp_path / "other", replace(spec, positions="rope")) is None


def test_tensor_hash_and_compare_see_one_changed_number(tmp_path):
    from fourfold.critical.model import build_model, save_checkpoint

    tok = CharTokenizer()
    torch.manual_seed(0)
    model = build_model("micro", tok.vocab_size)
    a = save_checkpoint(tmp_path / "a.pt", model, tok, {"k": 1})
    b = save_checkpoint(tmp_path / "b.pt", model, tok, {"k": 1})
    same = compare(a, b)
    assert same["tensors_equal"] and same["max_abs_difference"] == 0.0 and same["extra_equal"]
    assert same["file_sha256"][0] == same["file_sha256"][1]  # equal checkpoints, equal bytes
    state = dict(reversed(list(model.state_dict().items())))
    assert tensor_sha256(state) == tensor_sha256(model.state_dict())  # order does not matter
    with torch.no_grad():
        model.transformer.h[0].ln_1.bias[0] += 1e-3
    c = save_checkpoint(tmp_path / "c.pt", model, tok, {"k": 1})
    moved = compare(c, a)
    assert not moved["tensors_equal"] and moved["max_abs_difference"] == pytest.approx(1e-3, rel=1e-3)
    assert moved["tensors_sha256"][0] != moved["tensors_sha256"][1]


def test_the_check_command_passes_and_a_changed_file_is_refused(tmp_path, monkeypatch, capsys):
    from fourfold.critical import reference

    assert reference.main([]) == 0 and provenance()["sha256"] in capsys.readouterr().out
    assert reference.main(["--name", "mix"]) == 0 and provenance("mix")["sha256"] in capsys.readouterr().out
    broken = tmp_path / "quick_reference.pt"
    broken.write_bytes(shipped_reference_path().read_bytes()[:-10])
    (tmp_path / "quick_reference.json").write_text(json.dumps(provenance()))
    monkeypatch.setattr(reference, "shipped_reference_path", lambda name="quick": broken)
    with pytest.raises(ValueError, match="sha256"):
        reference.load_shipped_reference()
    with pytest.raises(ValueError, match="sha256"):
        seed_cache(tmp_path / "cache", shipped_spec())  # never copies a changed file into a cache
