"""Training the MLP learner to convergence: the output scale and loss units of a rule, the held-out split,
and one ``fourfold.core.train.fit`` run that stops when the held-out loss no longer improves.

``PropensityClassifier(learner="mlp")`` calls ``train_mlp`` with itself as the settings.
"""

from __future__ import annotations

import tempfile
import warnings

import numpy as np


def rule_scales(rule, link, prior: float, output_scale) -> tuple[float, float]:
    """``(output scale, loss unit)`` at the treated share ``prior``.

    The loss unit is w(p) p (1 - p): a rule's loss near p per log-loss unit (1 for log-loss, 12 for the
    tailored rule at p = 1/2), so that ``min_delta`` means the same for every rule. ``output_scale="auto"``
    is the link's slope over the logit's, (df/dq) p (1 - p): 1 for a logit link and the loss unit for a
    canonical one, so the network's output moves q as a logistic regression's would near p.
    """
    p, pbar = np.array([prior]), np.array([1 - prior])
    unit = prior * (1 - prior)
    scale = float(link.slope(p, pbar)[0]) * unit if output_scale == "auto" else float(output_scale)
    return scale, float(rule.weight_pair(p, pbar)[0]) * unit


def check_settings(est) -> None:
    """Raise with one sentence on an MLP setting that cannot work."""
    if not (isinstance(est.max_epochs, int | np.integer) and est.max_epochs >= 1):
        raise ValueError(f"max_epochs must be a positive integer, got {est.max_epochs!r}")
    if est.patience is not None and not (isinstance(est.patience, int | np.integer) and est.patience >= 1):
        raise ValueError(f"patience must be a positive integer or None, got {est.patience!r}")
    if not 0 <= est.validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {est.validation_fraction!r}")
    if est.output_scale != "auto" and not float(est.output_scale) > 0:
        raise ValueError(f"output_scale must be 'auto' or a positive number, got {est.output_scale!r}")
    if est.bias_init not in ("zero", "prior"):
        raise ValueError(f"bias_init must be 'zero' or 'prior', got {est.bias_init!r}")


def validation_split(t: np.ndarray, fraction: float, seed: int):
    """Row indices ``(train, validation)`` of a stratified split holding ``fraction`` of the rows out, or
    ``(all rows, None)`` when there is none to make (fraction 0, or too few rows of an arm)."""
    everything = np.arange(len(t))
    n_val = int(np.ceil(fraction * len(t)))
    if n_val < 2 or len(t) - n_val < 2 or np.bincount(t.astype(int), minlength=2).min() < 2:
        return everything, None
    from sklearn.model_selection import StratifiedShuffleSplit

    split = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    return next(split.split(everything.reshape(-1, 1), t))


def train_mlp(est, Z: np.ndarray, t: np.ndarray):
    """Train the MLP that ``est`` (a ``PropensityClassifier``) describes on standardised inputs Z and a
    0/1 treatment t; returns ``(net, output_scale, stop)``: the torch network with its best epoch's weights
    (the last ones with ``patience=None``), its output scale and the ``StopWhenConverged`` record.

    It runs on one CPU thread (and restores the caller's count): the same sums in the same order on every
    machine, so a seed gives the same network.
    """
    import torch

    from fourfold.scoring.lit import ScoreMLP

    check_settings(est)
    prior = float(np.clip(t.mean(), 1e-6, 1 - 1e-6))
    scale, loss_unit = rule_scales(est.rule_, est.link_, prior, est.output_scale)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(est.random_state)
        module = ScoreMLP(
            Z.shape[1],
            est.rule_,
            est.link_,
            hidden=tuple(est.hidden),
            lr=est.lr,
            output_scale=scale,
            bias_init=est.prior_score_ if est.bias_init == "prior" else 0.0,
        )
        stop = _fit(module, est, Z, t, loss_unit)
    finally:
        torch.set_num_threads(threads)
    if est.patience is not None and stop.best_state is not None:
        module.load_state_dict(stop.best_state)
    return module.net, module.output_scale, stop


def _fit(module, est, Z, t, loss_unit):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from fourfold.core.train import fit
    from fourfold.scoring.lit import StopWhenConverged

    def tensors(rows):
        return TensorDataset(
            torch.as_tensor(Z[rows], dtype=torch.float32), torch.as_tensor(t[rows], dtype=torch.float32)
        )

    train_rows, val_rows = validation_split(t, est.validation_fraction, est.random_state)
    generator = torch.Generator().manual_seed(est.random_state)
    train = DataLoader(tensors(train_rows), batch_size=est.batch_size, shuffle=True, generator=generator)
    val = None if val_rows is None else DataLoader(tensors(val_rows), batch_size=len(val_rows))
    stop = StopWhenConverged(
        "train_loss" if val is None else "val_loss",
        patience=est.patience or est.max_epochs + 1,  # None: never stops before max_epochs
        min_delta=float(est.min_delta) * loss_unit,
    )
    trainer = dict(est.trainer or {"accelerator": "cpu", "devices": 1, "log_every_n_steps": 1})
    trainer.setdefault("enable_progress_bar", False)
    trainer.setdefault("enable_model_summary", False)
    trainer.setdefault("num_sanity_val_steps", 0)
    with tempfile.TemporaryDirectory(prefix="scoring-mlp-") as run_dir, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`")
        fit(
            module,
            train,
            val,
            trainer_cfg=trainer,
            run_dir=run_dir,
            max_epochs=int(est.max_epochs),
            seed=est.random_state,
            resume=False,
            checkpoints=False,  # seconds of training in a temporary folder: nothing to resume
            callbacks=[stop],
        )
    return stop
