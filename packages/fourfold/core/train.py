"""The one training loop: every gradient-descent model in the project trains through ``fit``.

``fit`` builds the only ``lightning.Trainer`` from ``cfg.trainer`` (Trainer keyword arguments: device,
precision, strategy ...) plus the budget the paper asks for, logs to ``logs/version_<n>/metrics.csv`` in the
run folder, checkpoints
``last.ckpt`` there and, when that file exists, resumes from it. Modules with manual optimisation (RL)
go through the same function.
"""

import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fourfold.core.environment import configure_environment
from fourfold.core.seeding import seed_everything

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``fit`` would resume from in ``run_dir``, or None."""
    path = Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT
    return path if path.is_file() else None


def fit(
    module,
    train_dataloaders,
    val_dataloaders=None,
    *,
    trainer_cfg: Mapping[str, Any],
    run_dir: str | Path,
    max_epochs: int | None = None,
    max_steps: int = -1,
    seed: int | None = None,
    resume: bool = True,
    checkpoints: bool = True,
    monitor: str | None = None,
    monitor_mode: str = "min",
    checkpoint_every_n_steps: int | None = None,
    callbacks: Iterable = (),
    progress_every_s: float | None = 30.0,
    progress_name: str | None = None,
    **trainer_overrides: Any,
) -> dict[str, float]:
    """Train ``module`` (a LightningModule) in place and return its final logged metrics.

    Args:
        trainer_cfg: Trainer keyword arguments, usually ``cfg.trainer`` (a DictConfig is fine).
        run_dir: where ``logs/`` and ``checkpoints/`` go.
        max_epochs, max_steps: the training budget (the paper's knob, not the trainer's).
        seed: seeds every generator before the Trainer is built (None leaves seeding to the caller).
        resume: continue from ``run_dir/checkpoints/last.ckpt`` when it exists.
        checkpoints: False writes no checkpoint (and resumes from none): for fits of seconds in a temporary
            folder, where saving after every epoch would double their time.
        monitor: a logged metric to keep the best checkpoint of (``best.ckpt``), besides ``last.ckpt``.
        checkpoint_every_n_steps: checkpoint every n optimiser steps instead of every epoch.
        progress_every_s: log a progress line (step, metrics, elapsed, ETA; ``core.progress``) at most this
            often, to the terminal and the run's log file; None for none. Lightning's progress bar shows
            where a terminal is attached, unless ``enable_progress_bar`` says otherwise.
        progress_name: the name on those lines (default: the module's class name).
        trainer_overrides: extra Trainer arguments that win over ``trainer_cfg`` (tests, callbacks' needs).

    Returns:
        ``trainer.callback_metrics`` as floats, plus ``epoch`` and ``global_step`` reached.
    """
    configure_environment()
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger
    from omegaconf import DictConfig, OmegaConf

    from fourfold.core.progress import progress_log

    if seed is not None:
        seed_everything(seed)
    if isinstance(trainer_cfg, DictConfig):
        trainer_cfg = OmegaConf.to_container(trainer_cfg, resolve=True)
    run_dir = Path(run_dir)
    saving = []
    if checkpoints:
        saving = [
            *_checkpoint_callbacks(run_dir / CHECKPOINT_DIR, monitor, monitor_mode, checkpoint_every_n_steps),
            _random_state_callback(),
        ]
    kwargs = {**dict(trainer_cfg), **trainer_overrides}
    kwargs.setdefault("enable_checkpointing", checkpoints)
    if kwargs.get("enable_progress_bar") is None:
        kwargs["enable_progress_bar"] = sys.stderr.isatty()
    kwargs["log_every_n_steps"] = _log_interval(
        kwargs.get("log_every_n_steps"), train_dataloaders, _processes(kwargs)
    )
    progress = []
    if progress_every_s is not None:
        progress = [progress_log(progress_name or type(module).__name__, every_s=progress_every_s)]
    trainer = L.Trainer(
        **kwargs,
        default_root_dir=run_dir,
        # A new logs/version_<n>/ per attempt: a resumed run keeps the earlier attempt's metrics.csv.
        logger=CSVLogger(run_dir, name="logs"),
        callbacks=[*saving, *progress, *callbacks],
        max_epochs=max_epochs,
        max_steps=max_steps,
    )
    resume_from = last_checkpoint(run_dir) if resume and checkpoints else None
    with warnings.catch_warnings():
        # Resuming writes into the folder that holds the checkpoint resumed from: expected, not a problem.
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty")
        # Our own checkpoints hold optimiser state, not only tensors: Lightning needs weights_only=False.
        trainer.fit(
            module,
            train_dataloaders,
            val_dataloaders,
            ckpt_path=str(resume_from) if resume_from else None,
            weights_only=False if resume_from else None,
        )
    metrics = {
        k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1
    }
    metrics["epoch"] = float(trainer.current_epoch)
    metrics["global_step"] = float(trainer.global_step)
    return metrics


def _log_interval(configured: int | None, train_dataloaders, processes: int = 1) -> int:
    """Lightning's ``log_every_n_steps``, lowered to the batches of one epoch when an epoch is shorter (else
    Lightning warns and logs no training step of that epoch). Under DDP each of ``processes`` processes
    takes its share of the batches."""
    interval = int(configured or 50)
    try:
        batches = len(train_dataloaders)
    except TypeError:  # an iterable of unknown length
        return interval
    return max(1, min(interval, -(-batches // processes)))


def _processes(trainer_kwargs: Mapping[str, Any]) -> int:
    """How many processes share the data under these Trainer arguments (1 unless a DDP strategy names an
    integer number of devices)."""
    devices, nodes = trainer_kwargs.get("devices", 1), trainer_kwargs.get("num_nodes", 1)
    if "ddp" not in str(trainer_kwargs.get("strategy", "")) or not isinstance(devices, int) or devices < 1:
        return 1
    return devices * int(nodes or 1)


def _checkpoint_callbacks(folder: Path, monitor: str | None, monitor_mode: str, every_n_steps: int | None):
    """``last.ckpt`` after every epoch (or every ``every_n_steps`` steps), and ``best.ckpt`` by ``monitor``.

    ``last.ckpt`` comes from a checkpoint of its own (keep the newest one, named "last") rather than from
    ``save_last=True``: Lightning writes that copy only at steps where a top-k checkpoint was also saved,
    which without a monitor is the end of training alone, so a killed run had nothing to resume from.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    last = ModelCheckpoint(dirpath=folder, filename=Path(LAST_CHECKPOINT).stem, save_top_k=1,
                           every_n_train_steps=every_n_steps, enable_version_counter=False)  # fmt: skip
    if monitor is None:
        return [last]
    best = ModelCheckpoint(dirpath=folder, filename="best", monitor=monitor, mode=monitor_mode, save_top_k=1,
                           every_n_train_steps=every_n_steps, enable_version_counter=False)  # fmt: skip
    return [last, best]


def _random_state_callback():
    """A callback that stores every random generator's state in each checkpoint and restores it as soon as a
    resumed run loads that checkpoint, so that shuffling and dropout continue exactly as in an uninterrupted
    run (Lightning saves neither; on resume it draws the first epoch's shuffling seed before any hook runs).
    """
    import random

    import numpy as np
    import torch
    from lightning.pytorch.callbacks import Callback

    class RandomState(Callback):
        @property
        def state_key(self) -> str:
            return "fourfold.RandomState"

        def state_dict(self) -> dict:
            state = {
                "python": random.getstate(),
                "numpy": np.random.get_state(),  # noqa: NPY002 -- the legacy global state libraries draw from
                "torch": torch.get_rng_state(),
            }
            if torch.cuda.is_available():
                state["cuda"] = torch.cuda.get_rng_state_all()
            return state

        def load_state_dict(self, state_dict: dict) -> None:
            random.setstate(state_dict["python"])
            np.random.set_state(state_dict["numpy"])  # noqa: NPY002
            torch.set_rng_state(state_dict["torch"])
            if "cuda" in state_dict and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state_dict["cuda"])

    return RandomState()
