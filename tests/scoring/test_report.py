"""report.py rebuilds tables and figures from a run folder (written here) into experiments/scoring/."""

import json

import numpy as np

from fourfold.core.plotting import figure_command
from fourfold.scoring import report
from fourfold.scoring.grid import Block, run_grid


def test_report_from_a_run_folder(tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "scoring" / "quick" / "2026-01-01_00-00-00"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("paper: scoring\npreset: quick\nseed: 0\n")
    (run_dir / "metrics.json").write_text(json.dumps({"seconds": 1.0}))
    frame = run_grid(
        [Block("linear", {"kang_schafer": 2}, ["tailored", "log", "ebal"])], ["ht", "hajek"], 200, 0
    )
    frame.to_csv(run_dir / "replications.csv", index=False)
    monkeypatch.chdir(tmp_path)
    report.main(["--runs", str(tmp_path / "runs"), "--presets", "quick"])
    out = tmp_path / "experiments" / "scoring"
    table = (out / "results" / "quick_hajek.md").read_text()
    assert "tailored" in table and "ebal" in table
    for name in ("rmse_quick.png", "weights_and_losses.png", "propensity_histograms.png"):
        assert figure_command(out / "figures" / name)
    summary = np.genfromtxt(out / "results" / "quick_summary.csv", delimiter=",", names=True, dtype=None)
    assert len(summary) == 5  # tailored and log x {ht, hajek}, ebal x hajek
