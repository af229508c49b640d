"""How fast the MLP learner converges per loss and setting (``python -m fourfold.scoring.convergence``).

On the web page's case (300 rows, 2 standard-normal covariates, logit e(x) = x1 - x2/2, y = x1 + x2 + 2t +
N(0, 1), true ATE 2.0) it fits the log-loss and the tailored MLP over several seeds for each setting and
prints, per setting and loss, the epochs the fit ran until its held-out loss stopped improving (median and
largest), the spread of its propensities and how often the Hajek 95% interval covers 2.0. Settings differ
in Adam's learning rate, the output scale and the last layer's starting bias; the first row is the
learner's default.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

SETTINGS = {
    "default (lr 1e-3, output scale auto, bias prior)": {},
    "lr 1e-3, output scale 1, bias zero (the authors')": {"output_scale": 1.0, "bias_init": "zero"},
    "lr 1e-2, output scale auto, bias prior": {"lr": 1e-2},
    "lr 1e-2, output scale 1, bias zero": {"lr": 1e-2, "output_scale": 1.0, "bias_init": "zero"},
}


def page_case(seed: int, n: int = 300):
    """The web page's example: (x, t, y) with true ATE 2.0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] - 0.5 * x[:, 1])))).astype(float)
    y = x[:, 0] + x[:, 1] + 2.0 * t + rng.normal(size=n)
    return x, t, y


def measure(settings: dict, seeds: range) -> list[dict]:
    """One row per (setting, loss): epochs run, propensity spread, Hajek coverage, seconds per fit."""
    from sklearn.exceptions import ConvergenceWarning

    from fourfold.scoring.ipw import ate
    from fourfold.scoring.learners import PropensityClassifier

    rows = []
    for name, params in settings.items():
        for loss in ("log", "tailored"):
            epochs, spread, covered, unconverged, start = [], [], [], 0, time.perf_counter()
            for seed in seeds:
                x, t, y = page_case(seed)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    model = PropensityClassifier(learner="mlp", loss=loss, random_state=seed, **params).fit(
                        x, t
                    )
                unconverged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
                q = model.propensity(x)
                low, high = ate(y, t, q, method="hajek").ci
                epochs.append(model.n_iter_)
                spread.append(np.quantile(q, 0.95) - np.quantile(q, 0.05))
                covered.append(low <= 2.0 <= high)
            rows.append(
                {
                    "setting": name,
                    "loss": loss,
                    "epochs (median)": float(np.median(epochs)),
                    "epochs (max)": int(np.max(epochs)),
                    "unconverged": unconverged,
                    "q 5-95% spread": float(np.mean(spread)),
                    "Hajek covers 2.0": f"{int(np.sum(covered))}/{len(covered)}",
                    "s per fit": (time.perf_counter() - start) / len(seeds),
                }
            )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (data draw and MLP)")
    args = parser.parse_args(argv)
    import pandas as pd

    from fourfold.core.seeding import fix_thread_counts
    from fourfold.core.tables import to_markdown

    fix_thread_counts(1)
    frame = pd.DataFrame(measure(SETTINGS, range(args.seeds)))
    print(to_markdown(frame.round({"q 5-95% spread": 3, "s per fit": 2})))


if __name__ == "__main__":
    main()
