"""Progress lines for long training: step, epoch, the logged metrics, elapsed time and ETA.

Lightning's progress bar only helps where a terminal is attached; these lines go through ``logging`` (the
``fourfold.progress`` logger), so they reach the terminal and the run folder's log file alike: at most one
every ``every_s`` seconds, and a closing one for a run that lasted longer than that. Short fits (many
tiny models in a sweep) stay silent.
"""

from __future__ import annotations

import logging
import math
import time

log = logging.getLogger("fourfold.progress")


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``'1m15s'``; ``3725`` -> ``'1h02m'``; non-finite -> ``'?'``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta_seconds(elapsed: float, done: int, total: float) -> float:
    """Seconds left if the remaining ``total - done`` units go at the pace of the ``done`` ones so far."""
    if done <= 0 or not math.isfinite(total):
        return math.inf
    return elapsed / done * max(total - done, 0)


def _scalars(metrics) -> str:
    parts = []
    for name, value in sorted(metrics.items()):
        if getattr(value, "numel", lambda: 1)() == 1:
            parts.append(f"{name}={float(value):.4g}")
    return " ".join(parts[:6])


class _ProgressLog:
    """Logs ``<name>: batch b/total (p%), step, epoch, <metrics>, elapsed, ETA`` every ``every_s`` seconds."""

    def __init__(self, name: str, every_s: float = 30.0, clock=time.monotonic):
        if not every_s > 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        self.name, self.every_s, self.clock = name, float(every_s), clock

    def on_train_start(self, trainer, pl_module):
        self.start = self.last = self.clock()
        self.batches = 0
        # batches still to run in this attempt: a resumed run starts part-way (one optimiser step a batch)
        self.total = max(trainer.estimated_stepping_batches - trainer.global_step, 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            self._log(trainer, now)

    def on_train_end(self, trainer, pl_module):
        now = self.clock()
        if now - self.start >= self.every_s:
            self._log(trainer, now, final=True)

    def _total_text(self) -> str:
        return f"{int(self.total)}" if math.isfinite(self.total) else "unknown"

    def _log(self, trainer, now: float, final: bool = False) -> None:
        elapsed = now - self.start
        known = math.isfinite(self.total) and self.total > 0
        share = f" ({100 * self.batches / self.total:.0f}%)" if known else ""
        metrics = _scalars(trainer.progress_bar_metrics or trainer.callback_metrics)
        eta = "done" if final else f"ETA {format_duration(eta_seconds(elapsed, self.batches, self.total))}"
        log.info(
            "%s: batch %d/%s%s, step %d, epoch %d%s, elapsed %s, %s",
            self.name,
            self.batches,
            self._total_text(),
            share,
            trainer.global_step,
            trainer.current_epoch,
            f", {metrics}" if metrics else "",
            format_duration(elapsed),
            eta,
        )


def progress_log(name: str, every_s: float = 30.0, clock=time.monotonic):
    """The Lightning callback for ``core.train.fit`` (Lightning is imported here, not at module import, so
    the helpers above stay cheap to import)."""
    import lightning as L

    class ProgressLog(_ProgressLog, L.Callback):
        pass

    return ProgressLog(name, every_s, clock)
