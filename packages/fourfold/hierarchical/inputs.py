"""Boundary checks and loaders for user inputs: probability matrices, logits, labels."""

from pathlib import Path

import numpy as np

from fourfold.hierarchical.tree import Hierarchy

SUM_TOLERANCE = 1e-4  # a row of probabilities may sum to 1 +- this (float32 softmax outputs pass)


class ProbabilityError(ValueError):
    """A probability matrix that cannot be decoded; the message names the row and the fix."""


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def validate_probs(
    probs, h: Hierarchy, *, normalize: bool = False, atol: float = SUM_TOLERANCE
) -> np.ndarray:
    """Check a (B, L) leaf-probability matrix and return it as float64.

    Rejects: a wrong shape or width (columns must be the leaves 0..L-1), NaN/inf, negative entries and
    rows whose sum is not 1 within ``atol``; ``normalize=True`` rescales rows to sum to 1 instead
    (negative, NaN and all-zero rows are still errors).
    """
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim == 1:
        P = P[None]
    if P.ndim != 2:
        raise ProbabilityError(f"probabilities must be a (examples, leaves) matrix, got shape {P.shape}")
    if P.shape[1] != h.n_leaves:
        raise ProbabilityError(
            f"the matrix has {P.shape[1]} columns but the hierarchy has {h.n_leaves} leaves: columns must be "
            f"the leaves 0..{h.n_leaves - 1} in order (node-score matrices are not accepted)"
        )
    bad = np.flatnonzero(~np.isfinite(P).all(1))
    if len(bad):
        raise ProbabilityError(f"row {bad[0]} has NaN or infinite probabilities ({len(bad)} such rows)")
    neg = np.argwhere(P < 0)
    if len(neg):
        r, c = neg[0]
        raise ProbabilityError(
            f"row {r} has a negative probability {P[r, c]:.3g} at leaf {c}; "
            "pass logits with logits=True if these are raw scores"
        )
    sums = P.sum(1)
    if normalize:
        zero = np.flatnonzero(sums <= 0)
        if len(zero):
            raise ProbabilityError(f"row {zero[0]} sums to 0 and cannot be normalised")
        return P / sums[:, None]
    off = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if len(off):
        raise ProbabilityError(
            f"row {off[0]} sums to {sums[off[0]]:.6g}, not 1 (tolerance {atol:g}; {len(off)} rows off); "
            "pass normalize=True to rescale rows, or logits=True for raw scores"
        )
    return P


def load_matrix(path: str | Path, key: str | None = None) -> np.ndarray:
    """A 2-D array from .npy, .npz (``key`` or its only/first array) or .csv (comma separated, numbers
    only; a non-numeric first row is taken as a header). Never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if key is None:
                if not names:
                    raise ValueError(f"{path} holds no array")
                key = "probs" if "probs" in names else names[0]
            if key not in names:
                raise KeyError(f"{path} has no array {key!r}; it has {names}")
            return data[key]
    if suffix in (".csv", ".txt"):
        first = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        try:
            [float(v) for v in first.split(",")]
            skip = 0
        except ValueError:
            skip = 1
        return np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
    raise ValueError(f"{path}: unsupported format {suffix!r}; use .npy, .npz or .csv")


def load_labels(path: str | Path, h: Hierarchy, n: int) -> np.ndarray:
    """True leaf indices (n,) from .npy/.npz/.csv, checked against the hierarchy."""
    labels = np.asarray(load_matrix(path, key="labels") if Path(path).suffix == ".npz" else load_matrix(path))
    labels = labels.reshape(-1)
    if len(labels) != n:
        raise ValueError(f"{path}: {len(labels)} labels for {n} probability rows")
    if not np.allclose(labels, np.round(labels)):
        raise ValueError(f"{path}: labels must be integer leaf indices")
    labels = np.round(labels).astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= h.n_leaves))
    if len(bad):
        raise ValueError(
            f"{path}: label {labels[bad[0]]} (row {bad[0]}) is not a leaf index 0..{h.n_leaves - 1}"
        )
    return labels
