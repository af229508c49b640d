"""Result tables: mean ± standard error over replications, written as CSV and Markdown."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def mean_se(df, by: Sequence[str], values: Sequence[str]):
    """Group ``df`` by ``by`` and return, per value column, its mean, standard error and count.

    The standard error is ``std(ddof=1) / sqrt(n)`` (NaN for a single replication). Columns are named
    ``<value>``, ``<value>_se`` and one shared ``n`` (replications of the first value column).
    """
    import pandas as pd

    missing = [c for c in [*by, *values] if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the table; it has {list(df.columns)}")
    grouped = df.groupby(list(by), sort=True, dropna=False)
    out = {}
    for col in values:
        stats = grouped[col].agg(["mean", "std", "count"])
        out[col] = stats["mean"]
        out[f"{col}_se"] = stats["std"] / np.sqrt(stats["count"])
    out["n"] = grouped[values[0]].count()
    return pd.DataFrame(out).reset_index()


def format_mean_se(table, values: Sequence[str], digits: int = 3):
    """Collapse ``<v>`` and ``<v>_se`` columns into one ``"mean ± se"`` string column per value."""
    shown = table.copy()
    for col in values:
        se = shown.pop(f"{col}_se")
        shown[col] = [
            f"{m:.{digits}g}" if not np.isfinite(s) else f"{m:.{digits}g} ± {s:.2g}"
            for m, s in zip(shown[col], se)
        ]
    return shown


def to_markdown(table) -> str:
    """A GitHub Markdown table of a DataFrame (no extra dependency)."""
    header = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in table.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(table, path_stem: str | Path, *, values: Sequence[str] | None = None, digits: int = 3):
    """Write ``<stem>.csv`` (full precision) and ``<stem>.md`` (``mean ± se`` when ``values`` is given).

    Returns the two paths. Both are written atomically.
    """
    from fourfold.core.files import atomic_path, atomic_write_text

    stem = Path(path_stem)
    # Not with_suffix: a stem like "mix0.05" has no suffix to replace.
    csv_path, md_path = stem.with_name(f"{stem.name}.csv"), stem.with_name(f"{stem.name}.md")
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    shown = format_mean_se(table, values, digits) if values else table
    atomic_write_text(md_path, to_markdown(shown))
    return csv_path, md_path
