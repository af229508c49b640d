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


def fix_thread_counts(threads: int) -> None:
    """Run torch and every BLAS/OpenMP library loaded so far (NumPy's and SciPy's OpenBLAS, libgomp) on
    ``threads`` threads, whatever the environment or CPU affinity would give them.

    A sum split over a different number of threads adds in a different order: OpenBLAS's matrix products
    differ in their last bits between 1 and 2 threads, enough to flip a decoder's near-tie. Fixing the count
    makes a seeded run repeat its numbers on any machine of the same kind. Libraries loaded after this call
    keep their defaults, so it imports SciPy's linear algebra (which loads its own OpenBLAS) first.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    import scipy.linalg  # noqa: F401 -- loads SciPy's BLAS so that its thread count is fixed too
    from threadpoolctl import threadpool_limits

    try:
        import torch  # before the limits: its OpenMP runtime is among the libraries they fix
    except ImportError:
        torch = None
    threadpool_limits(limits=threads)
    if torch is not None:
        torch.set_num_threads(threads)
