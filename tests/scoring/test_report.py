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


def test_a_cell_whose_fits_diverged_is_counted_and_printed_as_diverged(tmp_path, monkeypatch):
    import pandas as pd

    from fourfold.scoring.grid import summarize

    rows = []
    for rep in range(4):
        for method, diverged in (("tailored", 0.0), ("tailored_logit", float(rep < 3))):
            error = 1e3 * rep if diverged else 0.1 * rep  # a runaway fit's "estimate" is noise
            rows.append({"dataset": "ks", "learner": "linear", "method": method, "rep": rep,
                         "estimator": "hajek", "failed": 0.0, "diverged": diverged, "error": error,
                         "estimate": error, "covered": 1.0, "ess": 10.0, "ess_fraction": 0.5})  # fmt: skip
    summary = summarize(pd.DataFrame(rows))
    logit = summary[summary.method == "tailored_logit"].iloc[0]
    assert logit["diverged"] == 3 and logit["replications"] == 4 and logit["n"] == 1
    assert logit["bias"] == 0.1 * 3  # the one replication that converged; the runaway ones are not averaged
    assert summary[summary.method == "tailored"].iloc[0]["diverged"] == 0
    monkeypatch.chdir(tmp_path)
    report.write_tables(summary, "demo", {})
    results = tmp_path / "experiments" / "scoring" / "results"
    for name in ("demo_hajek.md", "demo_headline.md", "demo_summary.md", "demo_rmse_by_estimator.md"):
        text = (results / name).read_text()
        assert "diverged (3 of 4)" in text, name
        assert "3e+03" not in text and "2e+03" not in text, name
