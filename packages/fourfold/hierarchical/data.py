"""Data for the ambiguity sweeps: a hierarchical Gaussian model with exact posteriors, scikit-learn's
digits blurred, temperature fitting, and the shipped AlexNet logits. Inputs are degraded (noise, blur);
logits are never softened."""

import gzip
from importlib import resources
from pathlib import Path

import numpy as np

from fourfold.hierarchical.inputs import softmax
from fourfold.hierarchical.tree import Hierarchy


# ------------------------------------------------------------------------- hierarchical Gaussian
def gaussian_means(h: Hierarchy, dim: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Leaf means (L, dim): each node draws z_n ~ N(0, decay^(2 d(n)) I) and mu_l sums z along the
    root path of l, so leaves that share deep ancestors are close."""
    z = rng.normal(size=(h.n_nodes, dim)) * (decay ** h.depth.astype(np.float64))[:, None]
    return np.asarray(h.incidence @ z)


def sample_gaussian(means: np.ndarray, sigma: float, n: int, rng: np.random.Generator):
    """n points x = mu_l + sigma eps with a uniform leaf l; returns (x (n, dim), labels (n,))."""
    labels = rng.integers(0, len(means), size=n)
    return means[labels] + sigma * rng.normal(size=(n, means.shape[1])), labels


def oracle_posterior(x: np.ndarray, means: np.ndarray, sigma: float) -> np.ndarray:
    """The exact posterior under a uniform prior: softmax_l(-||x - mu_l||^2 / (2 sigma^2))."""
    sq = (x**2).sum(1)[:, None] - 2 * x @ means.T + (means**2).sum(1)[None]
    return softmax(-sq / (2 * sigma**2))


# ------------------------------------------------------------------------------------ digits
def load_digits_images():
    """scikit-learn's digits (ships in the wheel, no download): images (1797, 8, 8) in [0, 1], labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float32) / 16.0, data.target.astype(np.int64)


def cluster_tree(images: np.ndarray, labels: np.ndarray) -> Hierarchy:
    """A binary tree over the classes from Ward clustering of the class-mean images (leaves 0..C-1)."""
    from scipy.cluster.hierarchy import linkage

    classes = np.unique(labels)
    means = np.stack([images[labels == c].mean(0).reshape(-1) for c in classes])
    merges = linkage(means, method="ward")
    children = {len(classes) + i: [int(a), int(b)] for i, (a, b, _, _) in enumerate(merges)}
    return Hierarchy.from_children(children)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each image (n, H, W) with standard deviation ``sigma`` pixels (0 = unchanged)."""
    from scipy.ndimage import gaussian_filter

    if sigma <= 0:
        return images.copy()
    return gaussian_filter(images, sigma=(0, sigma, sigma), mode="constant").astype(images.dtype)


# ------------------------------------------------------------------------------- calibration
def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T) (a bounded 1-D search)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    idx = np.arange(len(z))

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s = s - s.max(1, keepdims=True)
        return float(-(s[idx, labels] - np.log(np.exp(s).sum(1))).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-4.0, 5.0), method="bounded").x))


# ------------------------------------------------------------------------- shipped AlexNet logits
ALEXNET_FILES = ("alexnet_tieredimagenet_tiny_logits.npy", "alexnet_tieredimagenet_tiny_labels.npy")


def alexnet_logits(folder: "str | Path | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """The authors' AlexNet raw logits on tieredImageNet-H, one image per class: (logits (608, 608) float32,
    labels (608,) int64). ``folder=None`` reads the gzipped copy shipped in the package (provenance in
    ``resources/PROVENANCE.md``); a folder reads the plain ``.npy`` files there. Never unpickles."""
    if folder is None:
        root = resources.files("fourfold.hierarchical") / "resources"
        arrays = []
        for name in ALEXNET_FILES:
            with (root / f"{name}.gz").open("rb") as raw, gzip.open(raw) as unzipped:
                arrays.append(np.load(unzipped, allow_pickle=False))
    else:
        paths = [Path(folder) / name for name in ALEXNET_FILES]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"AlexNet files not found: {missing}; leave the folder unset (null) "
                                    "to use the copy shipped in the package")
        arrays = [np.load(p, allow_pickle=False) for p in paths]
    logits, labels = arrays
    return logits, labels.astype(np.int64)
