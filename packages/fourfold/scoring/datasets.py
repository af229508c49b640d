"""Offline ATE benchmarks, each returning a ``CausalData`` (covariates, treatment, outcome, truth if known).

Simulations: Kang-Schafer (2007; correct or misspecified covariates) and a tunable-overlap design.
Semi-synthetic: ACIC 2016 (the 10 instances shipped by causallib 0.10.0, or a folder of the full set) and
IHDP response surfaces A and B (Hill 2011) on the real IHDP covariates (shipped by econml 0.17.0).
Real: LaLonde's NSW (Dehejia-Wahba sample) treated units with CPS controls (causaldata 0.1.5), or PSID
controls from an installed ``cbps`` or a user's file. Vendored files and licences: ``data/PROVENANCE.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class CausalData:
    """One data set: x (n, d), t (n,) in {0, 1}, y (n,), the true ATE and propensity where known."""

    name: str
    x: np.ndarray
    t: np.ndarray
    y: np.ndarray
    ate: float | None
    propensity: np.ndarray | None = None
    note: str = ""


def _expit(z):
    return 1.0 / (1.0 + np.exp(-z))


def _data_file(name: str) -> Path:
    return Path(str(resources.files("fourfold.scoring") / "data" / name))


def _read_csv(path):
    import pandas as pd

    return pd.read_csv(path)


# --- simulations ---


def kang_schafer(n: int, rng: np.random.Generator, *, misspecified: bool = False) -> CausalData:
    """Kang & Schafer (2007): Z ~ N(0, I4), T ~ Bern(expit(-Z1 + .5Z2 - .25Z3 - .1Z4)),
    Y = 210 + 27.4 Z1 + 13.7 (Z2 + Z3 + Z4) + N(0, 1) in both arms, so the ATE is 0. The misspecified
    version observes X = (exp(Z1/2), Z2/(1 + exp(Z1)) + 10, (Z1 Z3/25 + .6)^3, (Z2 + Z4 + 20)^2)."""
    z = rng.normal(size=(n, 4))
    p = _expit(-z[:, 0] + 0.5 * z[:, 1] - 0.25 * z[:, 2] - 0.1 * z[:, 3])
    t = (rng.random(n) < p).astype(np.float64)
    y = 210 + 27.4 * z[:, 0] + 13.7 * z[:, 1:].sum(axis=1) + rng.normal(size=n)
    if misspecified:
        x = np.column_stack(
            [
                np.exp(z[:, 0] / 2),
                z[:, 1] / (1 + np.exp(z[:, 0])) + 10,
                (z[:, 0] * z[:, 2] / 25 + 0.6) ** 3,
                (z[:, 1] + z[:, 3] + 20) ** 2,
            ]
        )
    else:
        x = z
    name = "kang_schafer_mis" if misspecified else "kang_schafer"
    return CausalData(name, x, t, y, 0.0, p)


def overlap_simulation(n: int, rng: np.random.Generator, *, strength: float = 2.5) -> CausalData:
    """Tunable overlap: X ~ N(0, I5), logit e(x) = strength (X1 - .5 X2 + .5 X3) / 1.22 (unit variance at
    strength 1), Y(0) = X1 + X2 + X3 + X4 + N(0, 1), Y(1) = Y(0) + 1 + X1. Larger ``strength`` pushes true
    propensities towards 0 and 1; the effect grows with X1, so extreme units matter. ATE = 1."""
    x = rng.normal(size=(n, 5))
    p = _expit(strength * (x[:, 0] - 0.5 * x[:, 1] + 0.5 * x[:, 2]) / 1.2247)
    t = (rng.random(n) < p).astype(np.float64)
    y0 = x[:, :4].sum(axis=1) + rng.normal(size=n)
    y = y0 + t * (1.0 + x[:, 0])
    return CausalData(f"overlap_{strength:g}", x, t, y, 1.0, p)


# --- ACIC 2016 ---


def _acic_covariates(x_frame) -> np.ndarray:
    import pandas as pd

    categorical = [c for c in x_frame.columns if x_frame[c].dtype == object or str(x_frame[c].dtype) == "str"]
    return pd.get_dummies(x_frame, columns=categorical, drop_first=True, dtype=float).to_numpy(np.float64)


def acic2016(instance: int = 1, folder: str | Path | None = None) -> CausalData:
    """ACIC 2016 instance (1..10 from the vendored causallib files; any ``zymu_<k>.csv`` of ``folder``).

    ``folder`` holds ``x.csv`` and ``zymu_<k>.csv`` (columns z, y0, y1, mu0, mu1), as in causallib. The
    truth is the sample mean of mu1 - mu0. Categorical covariates are one-hot encoded.
    """
    if folder is None:
        if not 1 <= instance <= 10:
            raise ValueError(
                f"the vendored ACIC 2016 files hold instances 1..10, got {instance}; pass folder="
            )
        x_frame = _read_csv(_data_file("acic2016_x.csv.gz"))
        zymu = _read_csv(_data_file("acic2016_zymu.csv.gz"))
        zymu = zymu[zymu["instance"] == instance]
    else:
        folder = Path(folder)
        x_path, z_path = folder / "x.csv", folder / f"zymu_{instance}.csv"
        for path in (x_path, z_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: the folder must hold x.csv and zymu_<k>.csv files"
                )
        x_frame, zymu = _read_csv(x_path), _read_csv(z_path)
    if len(zymu) != len(x_frame):
        raise ValueError(
            f"ACIC instance {instance}: {len(zymu)} outcome rows for {len(x_frame)} covariate rows"
        )
    t = zymu["z"].to_numpy(np.float64)
    y = np.where(t > 0, zymu["y1"], zymu["y0"]).astype(np.float64)
    truth = float(np.mean(zymu["mu1"] - zymu["mu0"]))
    return CausalData(f"acic2016_{instance}", _acic_covariates(x_frame), t, y, truth)


# --- IHDP (Hill 2011) ---

IHDP_CONTINUOUS = ["bw", "b.head", "preterm", "birth.o", "nnhealth", "momage"]
IHDP_BINARY = ["sex", "twin", "b.marr", "mom.lths", "mom.hs", "mom.scoll", "cig", "first", "booze", "drugs",
               "work.dur", "prenatal"] + [f"site{k}" for k in range(1, 8)]  # fmt: skip


def ihdp_covariates() -> tuple[np.ndarray, np.ndarray]:
    """Hill's 747 units (treated children of non-white mothers removed) and 25 covariates (6 continuous,
    standardised; 19 binary), with the real treatment."""
    frame = _read_csv(_data_file("ihdp_covariates.csv.gz"))
    frame = frame[~((frame["treat"] == 1) & (frame["momwhite"] == 0))]
    cont = frame[IHDP_CONTINUOUS].to_numpy(np.float64)
    cont = (cont - cont.mean(0)) / cont.std(0)
    x = np.column_stack([cont, frame[IHDP_BINARY].to_numpy(np.float64)])
    return x, frame["treat"].to_numpy(np.float64)


def ihdp(surface: str, rng: np.random.Generator) -> CausalData:
    """IHDP with Hill's (2011) simulated response surface "A" (linear, constant effect 4) or "B"
    (exponential control surface, effect on the treated 4). The truth is the sample mean of the expected
    potential-outcome difference; the propensity is unknown (the treatment is real)."""
    x, t = ihdp_covariates()
    n, d = x.shape
    if surface == "A":
        beta = rng.choice([0, 1, 2, 3, 4], size=d, p=[0.5, 0.2, 0.15, 0.1, 0.05])
        mu0 = x @ beta
        mu1 = mu0 + 4.0
    elif surface == "B":
        beta = rng.choice([0, 0.1, 0.2, 0.3, 0.4], size=d, p=[0.6, 0.1, 0.1, 0.1, 0.1])
        mu0 = np.exp((x + 0.5) @ beta)
        linear = x @ beta
        omega = np.mean((linear - mu0)[t > 0]) - 4.0  # sets the effect on the treated to 4
        mu1 = linear - omega
    else:
        raise ValueError(f"IHDP surface must be 'A' or 'B', got {surface!r}")
    y = np.where(t > 0, mu1, mu0) + rng.normal(size=n)
    return CausalData(f"ihdp_{surface}", x, t, y, float(np.mean(mu1 - mu0)))


# --- LaLonde ---

LALONDE_COLUMNS = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]


def _lalonde_matrix(frame) -> np.ndarray:
    x = frame[LALONDE_COLUMNS].to_numpy(np.float64)
    zero74, zero75 = (frame["re74"] == 0).to_numpy(float), (frame["re75"] == 0).to_numpy(float)
    return np.column_stack([x, zero74, zero75])


def _psid_frame(path):
    frame = _read_csv(path)
    renames = {"education": "educ", "hispanic": "hisp", "married": "marr", "nodegr": "nodegree"}
    return frame.rename(columns=renames)


def lalonde(controls: str = "cps", path: str | Path | None = None) -> CausalData:
    """NSW treated units (Dehejia-Wahba, 185) with non-experimental controls: "cps" (15,992, vendored) or
    "psid" (2,490; read from ``path`` or an installed ``cbps`` package's ``psid_controls.csv``).

    There is no true ATE: ``ate`` holds the experimental benchmark, the NSW treated-minus-control difference
    in mean 1978 earnings (an effect on the treated, about $1,794). Compare ATE estimates to it with care.
    """
    nsw = _read_csv(_data_file("nsw_dw.csv.gz"))
    benchmark = float(nsw.loc[nsw.treat == 1, "re78"].mean() - nsw.loc[nsw.treat == 0, "re78"].mean())
    if controls == "cps":
        control = _read_csv(_data_file("cps_controls.csv.gz"))
    elif controls == "psid":
        if path is None:
            try:
                path = resources.files("cbps") / "data" / "psid_controls.csv"
            except ModuleNotFoundError as err:
                raise FileNotFoundError(
                    "PSID controls are not vendored (cbps is AGPL): `pip install cbps==0.2.1` or pass path= "
                    "to a CSV with columns treat, age, education, black, hispanic, married, nodegree, re74, "
                    "re75, re78"
                ) from err
        control = _psid_frame(path)
    else:
        raise ValueError(f"controls must be 'cps' or 'psid', got {controls!r}")
    treated = nsw[nsw.treat == 1]
    import pandas as pd

    frame = pd.concat([treated, control], ignore_index=True)
    return CausalData(
        f"lalonde_{controls}",
        _lalonde_matrix(frame),
        frame["treat"].to_numpy(np.float64),
        frame["re78"].to_numpy(np.float64),
        benchmark,
        note="ate is the experimental benchmark (an ATT), not a true ATE",
    )


# --- registry ---


def load(name: str, rng: np.random.Generator, n: int = 1000, replication: int = 0) -> CausalData:
    """A benchmark by name: kang_schafer, kang_schafer_mis, overlap_<strength>, acic2016 (replication picks
    instance 1..10), ihdp_A, ihdp_B, lalonde_cps, lalonde_psid."""
    if name == "kang_schafer":
        return kang_schafer(n, rng)
    if name == "kang_schafer_mis":
        return kang_schafer(n, rng, misspecified=True)
    if name.startswith("overlap_"):
        return overlap_simulation(n, rng, strength=float(name.split("_", 1)[1]))
    if name == "acic2016":
        return acic2016(replication % 10 + 1)
    if name in ("ihdp_A", "ihdp_B"):
        return ihdp(name[-1], rng)
    if name in ("lalonde_cps", "lalonde_psid"):
        return lalonde(name.split("_")[1])
    raise ValueError(
        f"unknown dataset {name!r}; use kang_schafer, kang_schafer_mis, overlap_<strength>, acic2016, "
        "ihdp_A, ihdp_B, lalonde_cps or lalonde_psid"
    )
