"""fit() trains a tiny LightningModule, logs to CSV, checkpoints, and resumes from the last checkpoint."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fourfold.core.train import fit, last_checkpoint

TRAINER = {
    "accelerator": "cpu",
    "devices": 1,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "log_every_n_steps": 1,
    "deterministic": "warn",
}


class LinearRegression(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return DataLoader(TensorDataset(x, y), batch_size=16)


def initial_loss(module, data):
    with torch.no_grad():
        return float(sum(torch.nn.functional.mse_loss(module.layer(x), y) for x, y in data) / len(data))


def test_fit_lowers_loss_and_writes_logs_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    module, data = LinearRegression(), loader()
    before = initial_loss(module, data)
    metrics = fit(module, data, loader(1), trainer_cfg=TRAINER, run_dir=tmp_path, max_epochs=5, seed=0)
    assert metrics["val_loss"] < 0.2 * before
    assert metrics["epoch"] == 5 and metrics["global_step"] == 20
    assert (tmp_path / "logs" / "version_0" / "metrics.csv").is_file()
    assert last_checkpoint(tmp_path) is not None


def test_fit_resumes_from_last_checkpoint(tmp_path):
    torch.manual_seed(0)
    first = fit(LinearRegression(), loader(), trainer_cfg=TRAINER, run_dir=tmp_path, max_epochs=2, seed=0)
    assert first["global_step"] == 8
    resumed_module = LinearRegression()
    second = fit(resumed_module, loader(), trainer_cfg=TRAINER, run_dir=tmp_path, max_epochs=4, seed=0)
    assert second["global_step"] == 16  # 8 restored + 8 new, not 16 new

    assert (tmp_path / "logs" / "version_0" / "metrics.csv").is_file()  # the first attempt's log survives
    assert (tmp_path / "logs" / "version_1" / "metrics.csv").is_file()

    # The same 4 epochs in one go give the same weights: resuming loses nothing.
    torch.manual_seed(0)
    straight = LinearRegression()
    fit(straight, loader(), trainer_cfg=TRAINER, run_dir=tmp_path / "straight", max_epochs=4, seed=0)
    assert torch.allclose(resumed_module.layer.weight, straight.layer.weight, atol=1e-6)


def test_fit_is_seeded(tmp_path):
    weights = []
    for name in ("a", "b"):
        torch.manual_seed(1)
        module = LinearRegression()
        fit(module, loader(), trainer_cfg=TRAINER, run_dir=tmp_path / name, max_epochs=1, seed=1)
        weights.append(module.layer.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


@pytest.mark.gpu
def test_fit_on_gpu_with_the_gpu_trainer_config(tmp_path):
    from omegaconf import OmegaConf

    from fourfold.core.cli import CONF_DIR

    trainer_cfg = OmegaConf.load(CONF_DIR / "trainer" / "gpu.yaml")
    torch.manual_seed(0)
    module, data = LinearRegression(), loader()
    before = initial_loss(module, data)
    metrics = fit(
        module,
        data,
        loader(1),
        trainer_cfg=trainer_cfg,
        run_dir=tmp_path,
        max_epochs=5,
        seed=0,
        enable_progress_bar=False,
    )
    assert metrics["val_loss"] < 0.3 * before
