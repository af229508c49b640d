"""Thin LightningModule glue: an MLP that outputs a raw score f, trained on any rule's raw-score loss.

The loss and its exact gradient through the inverse link come from ``link.torch_raw_loss`` (float64).
"""

from __future__ import annotations

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

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)
