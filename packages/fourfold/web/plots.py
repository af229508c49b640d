"""Figures for the app, returned as ``data:image/png;base64`` URIs so pages need no file or network."""

from __future__ import annotations

import base64
import io

import numpy as np


def figure_uri(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def propensity_histograms(propensities: dict[str, np.ndarray], treatment: np.ndarray) -> str:
    """One panel per loss: histograms of the fitted propensity for treated and control units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(propensities), figsize=(4.2 * len(propensities), 2.8), squeeze=False)
    bins = np.linspace(0, 1, 31)
    treated = treatment > 0.5
    for ax, (loss, q) in zip(axes[0], propensities.items()):
        ax.hist(q[treated], bins=bins, alpha=0.6, label="treated", color="#c0504d")
        ax.hist(q[~treated], bins=bins, alpha=0.6, label="control", color="#4f81bd")
        ax.set_title(f"{loss} loss")
        ax.set_xlabel("fitted propensity P(T=1|x)")
    axes[0][0].set_ylabel("units")
    axes[0][0].legend(frameon=False)
    return figure_uri(fig)
