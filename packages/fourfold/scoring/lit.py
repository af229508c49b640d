"""Thin LightningModule glue: an MLP that outputs a raw score f, trained on any rule's raw-score loss, and the
callback that stops it once its monitored loss has converged.

The loss and its exact gradient through the inverse link come from ``link.torch_raw_loss`` (float64).
"""

from __future__ import annotations

import math

import lightning as L
import torch

from fourfold.scoring.link import torch_raw_loss


class ScoreMLP(L.LightningModule):
    """ReLU MLP x -> f = output_scale * net(x), trained with Adam on ``rule`` through ``link``."""

    def __init__(
        self, n_features: int, rule, link, *, hidden=(64, 32), lr=1e-3, output_scale=1.0, bias_init=0.0
    ):
        super().__init__()
        layers, width = [], n_features
        for size in hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
            width = size
        last = torch.nn.Linear(width, 1)
        torch.nn.init.constant_(last.bias, float(bias_init) / float(output_scale))
        self.net = torch.nn.Sequential(*layers, last)
        self.rule, self.link = rule, link
        self.lr, self.output_scale = lr, float(output_scale)

    def forward(self, x):
        # reshape(-1), not squeeze(): a batch of one stays a vector
        return self.output_scale * self.net(x).reshape(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch_raw_loss(self.rule, self.link, self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = torch_raw_loss(self.rule, self.link, self(x), y)
        self.log("val_loss", loss, on_epoch=True, batch_size=len(y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class StopWhenConverged(L.Callback):
    """Stops training once ``monitor`` (a loss logged per epoch) has gone ``patience`` epochs without
    improving on its best value by more than ``min_delta``, and keeps the weights of its best epoch.

    After training: ``converged`` (the patience ran out, rather than the epoch budget), ``diverged`` (the
    loss became NaN or infinite), ``best_epoch`` (1-based), ``best`` (its loss), ``epochs`` (epochs run) and
    ``best_state`` (a copy of the module's ``state_dict`` at that epoch).
    """

    def __init__(self, monitor: str, patience: int, min_delta: float):
        if patience < 1 or min_delta < 0:
            raise ValueError(f"patience must be >= 1 and min_delta >= 0, got {patience} and {min_delta}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.best, self.best_epoch, self.best_state = math.inf, 0, None
        self.wait, self.epochs, self.converged, self.diverged = 0, 0, False, False

    def on_train_epoch_end(self, trainer, pl_module):
        # Lightning has aggregated the epoch's logged values by now (validation runs before this hook).
        self.epochs = trainer.current_epoch + 1
        value = float(trainer.callback_metrics[self.monitor])
        if not math.isfinite(value):
            self.diverged, trainer.should_stop = True, True
            return
        self.wait = 0 if value < self.best - self.min_delta else self.wait + 1
        if value < self.best:
            self.best, self.best_epoch = value, self.epochs
            self.best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        if self.wait >= self.patience:
            self.converged, trainer.should_stop = True, True
