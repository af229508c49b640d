"""Mean ± SE tables against a hand computation; figures record their command."""

import math

import pandas as pd
import pytest

from fourfold.core.plotting import figure_command, new_figure, save_figure
from fourfold.core.tables import mean_se, write_table


def test_mean_se_matches_hand_computation():
    df = pd.DataFrame({"method": ["a", "a", "a", "b"], "rmse": [1.0, 2.0, 3.0, 5.0]})
    table = mean_se(df, by=["method"], values=["rmse"])
    a, b = table.iloc[0], table.iloc[1]
    assert a["rmse"] == 2.0 and a["n"] == 3
    assert a["rmse_se"] == pytest.approx(1.0 / math.sqrt(3))  # sample sd of 1,2,3 is 1
    assert b["rmse"] == 5.0 and math.isnan(b["rmse_se"])


def test_mean_se_names_missing_columns():
    with pytest.raises(KeyError, match="'nope'"):
        mean_se(pd.DataFrame({"a": [1]}), by=["a"], values=["nope"])


def test_write_table_csv_and_markdown(tmp_path):
    df = pd.DataFrame({"method": ["a", "a"], "rmse": [1.0, 3.0]})
    csv_path, md_path = write_table(mean_se(df, ["method"], ["rmse"]), tmp_path / "t", values=["rmse"])
    assert pd.read_csv(csv_path)["rmse"].tolist() == [2.0]
    md = md_path.read_text()
    assert md.splitlines()[0] == "| method | rmse | n |" and "2 ± 1" in md


def test_saved_figure_records_its_command(tmp_path):
    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "f.png", command="make scoring SCALE=quick")
    assert figure_command(path) == "make scoring SCALE=quick"
    with pytest.raises(ValueError, match="PNG"):
        save_figure(new_figure()[0], tmp_path / "f.pdf")


def test_median_seconds_times_each_call_and_skips_warmup():
    from fourfold.core.benchmark import median_seconds

    calls = []
    assert median_seconds(lambda: calls.append(1), 3, warmup=2) >= 0.0
    assert len(calls) == 5
    with pytest.raises(ValueError, match="repeats"):
        median_seconds(lambda: None, 0)


def test_a_stem_with_dots_keeps_them(tmp_path):
    paths = write_table(pd.DataFrame({"a": [1]}), tmp_path / "mix0.05_both0.1")
    assert [p.name for p in paths] == ["mix0.05_both0.1.csv", "mix0.05_both0.1.md"]
    assert all(p.is_file() for p in paths)
