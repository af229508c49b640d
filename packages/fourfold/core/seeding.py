"""One call seeds every random source a run touches."""

import os
import random

import numpy as np


def seed_everything(seed: int, *, deterministic_torch: bool = True) -> np.random.Generator:
    """Seed Python, NumPy and torch (if installed) and return a NumPy Generator for new code.

    With ``deterministic_torch`` torch is asked for deterministic kernels where it has them
    (``warn_only``: an op without one warns instead of failing).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- libraries still draw from the legacy global state
    try:
        import torch
    except ImportError:  # math-only installs still get seeded
        return np.random.default_rng(seed)
    torch.manual_seed(seed)
    if deterministic_torch:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return np.random.default_rng(seed)
