"""Thin Lightning glue: a flat softmax classifier over the leaves (linear or a small CNN), trained
through ``fourfold.core.train.fit``."""

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def linear_net(n_features: int, n_leaves: int) -> nn.Module:
    """Multinomial logistic regression."""
    return nn.Linear(n_features, n_leaves)


def small_cnn(n_leaves: int, width: int = 16) -> nn.Module:
    """A two-conv CNN for 8x8 single-channel images."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 16, 64),
        nn.ReLU(),
        nn.Linear(64, n_leaves),
    )


class LeafClassifier(L.LightningModule):
    """Cross-entropy over the leaves, Adam."""

    def __init__(self, net: nn.Module, lr: float = 1e-2, weight_decay: float = 0.0):
        super().__init__()
        self.net, self.lr, self.weight_decay = net, lr, weight_decay

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    data = TensorDataset(torch.as_tensor(x, dtype=torch.float32).reshape(len(x), -1), torch.as_tensor(y))
    return DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed)
    )


@torch.no_grad()
def predict_logits(module: LeafClassifier, x: np.ndarray) -> np.ndarray:
    module.eval()
    return module(torch.as_tensor(x, dtype=torch.float32).reshape(len(x), -1)).double().numpy()
