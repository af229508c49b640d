"""The regime scan: its measures on a model, the rule that picks a snapshot, and the CLI on snapshots."""

import numpy as np
import pytest
import torch

from fourfold.critical.model import build_model
from fourfold.critical.pretrain import PretrainSpec, pretrained_model
from fourfold.critical.regime import RegimeRule, main, measure
from fourfold.critical.tokenizer import CharTokenizer


def test_the_rule_needs_all_three_conditions():
    good = {"acc_in_distribution": 1.0, "acc_both_long": 0.4, "dJ_decision": -0.2}
    rule = RegimeRule()
    assert rule.holds(good)
    assert not rule.holds({**good, "acc_in_distribution": 0.9})
    assert not rule.holds({**good, "acc_both_long": 0.7}) and not rule.holds({**good, "acc_both_long": 0.1})
    assert not rule.holds({**good, "dJ_decision": -0.05})


def test_measures_are_consistent_on_an_untrained_model():
    torch.manual_seed(0)
    tok = CharTokenizer()
    row = measure(build_model("micro", tok.vocab_size).eval(), tok, n_digits=1, examples=6)
    # An untrained model gets nothing right, so every identical (N+1)-digit problem has a first error.
    assert row["acc_rl"] == row["acc_both_long"] == row["acc_in_distribution"] == 0.0
    assert row["n_first_errors"] == 6 and row["acc_identical_plus1"] == 0.0
    # Near-uniform predictions: certainty is low everywhere, so the gaps are small and J is far below 1.
    assert row["j_decision"] < 0.5 and abs(row["dJ_decision"]) < 0.2 and np.isfinite(row["dJ_first_error"])


def test_the_cli_scans_snapshots_and_the_final_model(tmp_path, trainer_cfg, capsys):
    tok = CharTokenizer()
    spec = PretrainSpec(1, 0.1, 4, 4, 3e-3, 1, 0.0, "micro", 0, both_fraction=0.5)
    pretrained_model(spec, tok, tmp_path, trainer_cfg, snapshot_every=2)
    run = tmp_path / "pretrain" / spec.name
    main([str(run), "--examples", "4", "--out", str(tmp_path / "scan")])
    table = (tmp_path / "scan.csv").read_text().splitlines()
    assert table[0].startswith("step,") and [line.split(",")[0] for line in table[1:]] == ["2", "4"]
    assert "no snapshot meets" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        main([str(tmp_path / "nothing")])


def test_certainty_form_and_temperature_reach_the_gaps():
    # The entropy of softmax(z / T) rises with T, so J at every position, and at the decision commas on
    # average, falls as T rises; the accuracies do not depend on J's form.
    torch.manual_seed(1)
    tok = CharTokenizer()
    model = build_model("micro", tok.vocab_size).eval()
    cool = measure(model, tok, n_digits=1, examples=6)
    warm = measure(model, tok, n_digits=1, examples=6, temperature=4.0)
    code = measure(model, tok, n_digits=1, examples=6, certainty="max_prob", temperature=4.0)
    assert warm["j_decision"] < cool["j_decision"]
    assert code["j_decision"] != warm["j_decision"]
    assert cool["acc_rl"] == warm["acc_rl"] == code["acc_rl"]
    assert cool["n_first_errors"] == warm["n_first_errors"] == code["n_first_errors"]


def test_the_cli_rejects_a_temperature_that_is_not_positive(tmp_path):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--temperature", "0"])
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--certainty", "renyi"])
