"""The report: a table row per evaluated method, Markdown from committed CSVs when no run exists."""

import math

import pandas as pd

from fourfold.faceblur import report


def test_table_rows_and_missing_metrics():
    metrics = {"yolo/ap50": 0.5, "yolo/coverage": 0.75, "unet_l1/coverage": 0.25, "n_test_faces": 10.0}
    table = report.table_from_metrics(metrics)
    assert list(table["method"]) == [report.LABELS["yolo"], report.LABELS["unet_l1"]]
    assert table.loc[0, "ap50"] == 0.5 and math.isnan(table.loc[1, "ap50"])


def test_build_from_committed_csv(tmp_path):
    out = tmp_path / "exp"
    (out / "results").mkdir(parents=True)
    table = report.table_from_metrics({"yolo/ap50": 0.5})
    table.to_csv(out / "results" / "table_quick.csv", index=False)
    written = report.build(tmp_path / "no_runs", out)
    assert written == [out / "results" / "table_quick.md"]
    text = (out / "results" / "table_quick.md").read_text()
    assert "YOLO + blur" in text and "0.5" in text and "n/a" in text
    assert pd.read_csv(out / "results" / "table_quick.csv").shape[0] == 1
