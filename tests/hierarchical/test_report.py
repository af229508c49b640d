"""The report's verdicts: signed gaps with the right direction per metric."""

import pandas as pd

from fourfold.hierarchical.report import signed_gap


def frame(metric, optimal, heuristic, se=0.01):
    rows = [
        {
            "dataset": "d",
            "source": "s",
            "level": 1.0,
            "decoder": "optimal",
            "metric": metric,
            "value": optimal,
            "se": se,
        }
    ]
    for name, value in (("top_down", heuristic), ("crm", heuristic - 0.5 if metric == "zhao" else heuristic)):
        rows.append(
            {
                "dataset": "d",
                "source": "s",
                "level": 1.0,
                "decoder": name,
                "metric": metric,
                "value": value,
                "se": se,
            }
        )
    return pd.DataFrame(rows)


def test_gap_sign_follows_metric_direction():
    higher = signed_gap(frame("hF_1", 0.8, 0.7)).iloc[0]
    assert higher.gap > 0 and higher.verdict == "optimal better"
    lower = signed_gap(frame("zhao", 0.3, 0.7)).iloc[0]  # crm has 0.2 < 0.3: the heuristic wins
    assert lower.best_heuristic == "crm" and lower.gap < 0 and lower.verdict == "heuristic better"
    tied = signed_gap(frame("accuracy", 0.5, 0.49, se=0.05)).iloc[0]
    assert tied.verdict == "tied (within 2 SE)"
