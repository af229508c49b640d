"""The grid and the task entry: a tiny configuration of the quick preset runs end to end."""

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from fourfold.core.cli import CONF_DIR
from fourfold.scoring.grid import Block, calibration_error, run_grid, summarize


def test_calibration_error_is_zero_for_matching_frequencies():
    q = np.array([0.05, 0.05, 0.95, 0.95])
    assert calibration_error(q, np.array([0.0, 0.1, 1.0, 0.9])) == pytest.approx(0.0, abs=1e-12)
    assert calibration_error(np.full(4, 0.5), np.array([1.0, 1, 1, 1])) == pytest.approx(0.5)


def test_grid_rows_and_summary():
    blocks = [Block("linear", {"kang_schafer": 3}, ["tailored", "log", "log_clip05", "ebal"])]
    frame = run_grid(blocks, ["ht", "hajek"], n=300, seed=0)
    assert set(frame["method"]) == {"tailored", "log", "log_clip05", "ebal"}
    assert len(frame[frame.method == "ebal"]) == 3  # balancing weights: Hajek only
    summary = summarize(frame)
    row = summary[(summary.method == "log") & (summary.estimator == "ht")].iloc[0]
    errors = frame[(frame.method == "log") & (frame.estimator == "ht")]["error"]
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert row["bias"] == pytest.approx(errors.mean()) and row["n"] == 3


def test_quick_preset_end_to_end(tmp_path, monkeypatch):
    from fourfold.scoring import run

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "experiment=scoring/quick",
                "scoring.replications.linear=2",
                "scoring.replications.xgboost=1",
                "scoring.replications.mlp=1",
                "scoring.semi_replications.linear=1",
                "scoring.semi_replications.xgboost=0",
                "scoring.mlp.max_epochs=2",
                "scoring.mlp.patience=null",
                "scoring.simulations=[kang_schafer_mis]",
                "scoring.semi_synthetic=[ihdp_A]",
                "scoring.real=[]",
                "scoring.methods=[tailored,log,zhao]",
                "scoring.learner_methods=[tailored,log]",
            ],
        )
    monkeypatch.setattr(run, "current_run_dir", lambda: tmp_path)
    metrics = run.main(cfg)
    assert metrics["failed"] == 0 and "rmse/kang_schafer_mis/mlp/tailored" in metrics
    assert (tmp_path / "summary.csv").is_file() and (tmp_path / "replications.csv").is_file()
    json.dumps(metrics)
