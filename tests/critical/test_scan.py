"""The position-scheme scan (issue 19, item 5): the regime stage's rows are named by the scan's keys, and
``fourfold.critical.scan`` collects run folders into scan.csv (the issue's columns), Table 1 and the
generalisation tables, with mean ± SE over pre-training seeds."""

import os
import time

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from fourfold.core.cli import CONF_DIR
from fourfold.critical.regime import SCAN_KEYS
from fourfold.critical.scan import collect, main, result_folders, summary

ISSUE_COLUMNS = [
    "positions", "size", "n_digits", "mix_fraction", "seed", "steps", "step",
    "acc_rl", "acc_one_long", "acc_both_long", "acc_in_distribution", "acc_identical_plus1", "dJ_decision",
    "dJ_decision_se", "j_decision", "dJ_window", "dJ_first_error", "n_first_errors", "in_regime",
]  # fmt: skip


def positions_config(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["experiment=critical/positions", *overrides])


@pytest.mark.parametrize("positions", ["learned", "nope", "rope", "digit_index"])
def test_the_positions_preset_validates_for_every_scheme(positions):
    from fourfold.critical.settings import validate

    specs = validate(positions_config(f"critical.model.positions={positions}"))
    assert [s.n_digits for s in specs] == [3, 5, 7] and {s.mix_fraction for s in specs} == {0.0}
    assert {s.positions for s in specs} == {positions} and {s.size for s in specs} == {"tiny_long"}


def test_generalisation_past_the_context_fails_before_compute():
    from fourfold.critical.settings import validate

    with pytest.raises(ValueError, match="tiny_long"):
        validate(positions_config("critical.model_size=tiny"))


def test_the_regime_stage_names_its_rows_with_the_scan_keys(tmp_path):
    from fourfold.critical.model import build_model, save_checkpoint
    from fourfold.critical.pretrain import PretrainSpec, cached_model_path
    from fourfold.critical.regime import labelled_scan, scan
    from fourfold.critical.tokenizer import CharTokenizer

    tok = CharTokenizer()
    spec = PretrainSpec(1, 0.0, 10, 4, 1e-3, 1, 0.0, "micro", 3, positions="nope")
    torch.manual_seed(0)
    model = build_model("micro", tok.vocab_size, positions="nope")
    save_checkpoint(cached_model_path(tmp_path, spec), model, tok, {"spec": spec.record()})
    table = labelled_scan(scan(cached_model_path(tmp_path, spec).parent, examples=4), spec)
    assert list(table.columns) == ISSUE_COLUMNS
    assert table.iloc[0][list(SCAN_KEYS)].tolist() == ["nope", "micro", 1, 0.0, 3, 10, 10]


def fake_run(folder, positions, seed, dj, when):
    """A run folder of the positions preset with one N = 3 reference (made-up numbers)."""
    results = folder / "results"
    results.mkdir(parents=True)
    degree = f"N3_mix0_tiny_long_{positions}_2000steps_{seed}"
    reference = {"n_digits": 3, "mix_fraction": 0.0, "steps": 2000, "size": "tiny_long", "seed": seed}
    degrees = {"degree": degree, **reference, "stop_at": 0}
    if positions != "learned":  # a learned model's degrees.csv has no positions column (spec.record())
        degrees["positions"] = positions
    regime = {**{k: 0.5 for k in ISSUE_COLUMNS[7:-1]}, "dJ_decision": dj, "in_regime": False}
    table1 = {"degree": degree, "N": 3, "mix": 0.0, "delta_decision": dj, "j_decision": 0.9,
              "delta_critical": dj, "delta_failure": -0.1, "n_failures": 50}  # fmt: skip
    gen = [{"degree": degree, "N": 3, "mix": 0.0, "digits": 3 + k, "offset": k, "mode": m, "accuracy": k / 4}
           for k in range(3) for m in ("identical", "varying")]  # fmt: skip
    frames = {
        "degrees": [degrees],
        "regime": [{"positions": positions, **reference, "step": 2000, **regime}],
        "table1": [table1],
        "generalisation": gen,
    }
    for name, rows in frames.items():
        pd.DataFrame(rows).to_csv(results / f"{name}.csv", index=False)
        os.utime(results / f"{name}.csv", (when, when))


def test_collect_writes_the_issue_columns_and_keeps_the_newest_rerun(tmp_path):
    now = time.time()
    fake_run(tmp_path / "runs" / "0", "nope", 0, -0.05, now - 30)
    fake_run(tmp_path / "runs" / "1", "nope", 1, -0.15, now - 20)
    fake_run(tmp_path / "runs" / "2", "rope", 0, 0.01, now - 10)
    fake_run(tmp_path / "runs" / "3", "nope", 0, -0.09, now)  # a rerun of the first: replaces it
    fake_run(tmp_path / "runs" / "4", "learned", 0, 0.004, now)
    tables = collect(result_folders([tmp_path / "runs"]))
    scan = tables["scan"]
    assert list(scan.columns) == ISSUE_COLUMNS and len(scan) == 4
    assert scan.set_index(["positions", "seed"]).loc[("nope", 0), "dJ_decision"] == -0.09
    got = summary("scan", scan).set_index("positions").loc["nope"]
    values = np.array([-0.09, -0.15])
    assert got.dJ_decision == pytest.approx(values.mean()) and got.n == 2
    assert got.dJ_decision_se == pytest.approx(values.std(ddof=1) / np.sqrt(2))
    table1 = summary("table1", tables["table1"])
    assert set(table1.positions) == {"learned", "nope", "rope"} and (table1.paper_dJ_critical == -0.33).all()
    gen = tables["generalisation"]
    assert len(gen) == 4 * 6 and {"positions", "seed", "n_digits"} <= set(gen.columns)
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert list(pd.read_csv(tmp_path / "out" / "scan.csv").columns) == ISSUE_COLUMNS
    for name in ("scan_summary.md", "table1_summary.md", "generalisation_summary.md"):
        assert (tmp_path / "out" / name).is_file()
    assert SCAN_KEYS == tuple(ISSUE_COLUMNS[:7])
    with pytest.raises(FileNotFoundError, match="degrees.csv"):
        result_folders([tmp_path / "out"])
