"""fit() trains a tiny LightningModule, logs to CSV, checkpoints, and resumes from the last checkpoint."""

import warnings

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


def test_fit_without_checkpoints_writes_none_and_trains_the_same(tmp_path):
    runs = {}
    for saving in (True, False):
        torch.manual_seed(0)
        module = LinearRegression()
        fit(module, loader(), trainer_cfg=TRAINER, run_dir=tmp_path / str(saving), max_epochs=3, seed=0,
            checkpoints=saving)  # fmt: skip
        runs[saving] = module.layer.weight.detach().clone()
    assert last_checkpoint(tmp_path / "False") is None and not (tmp_path / "False" / "checkpoints").exists()
    assert torch.equal(runs[True], runs[False])


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


class FakeClock:
    """Advances 10 s per reading, so every batch end is 'later' than the last."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 10.0
        return self.now


def test_progress_lines_reach_the_log_with_step_metrics_and_eta(tmp_path, caplog):
    from fourfold.core.progress import progress_log

    progress = progress_log("regression", every_s=15.0, clock=FakeClock())
    with caplog.at_level("INFO", logger="fourfold.progress"):
        fit(LinearRegression(), loader(), trainer_cfg=TRAINER, run_dir=tmp_path, max_epochs=2,
            progress_every_s=None, callbacks=[progress])  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "fourfold.progress"]
    batches = 2 * len(loader())
    # one line every other batch (20 s of fake time > 15 s), then the closing line
    assert len(lines) == batches // 2 + 1
    assert lines[0].startswith(f"regression: batch 2/{batches} (") and "ETA" in lines[0]
    assert "train_loss=" in lines[-1] and lines[-1].endswith("done")


def test_short_fits_are_silent_and_the_log_interval_fits_the_epoch(tmp_path, caplog, recwarn):
    with caplog.at_level("INFO", logger="fourfold.progress"):
        fit(LinearRegression(), loader(), trainer_cfg={**TRAINER, "log_every_n_steps": 50}, run_dir=tmp_path,
            max_epochs=1)  # fmt: skip
    assert not [r for r in caplog.records if r.name == "fourfold.progress"]
    assert not [w for w in recwarn if "logging interval" in str(w.message)]


def test_duration_and_eta_formatting():
    import math

    from fourfold.core.progress import eta_seconds, format_duration

    durations = [format_duration(s) for s in (0, 59.4, 75.2, 3725, math.inf)]
    assert durations == ["0s", "59s", "1m15s", "1h02m", "?"]
    assert eta_seconds(30.0, 3, 12) == pytest.approx(90.0)
    assert eta_seconds(30.0, 0, 12) == math.inf and eta_seconds(1.0, 1, math.inf) == math.inf


class Crash(L.Callback):
    """Raises in the middle of ``epoch`` (a stand-in for a killed process; tests/core/test_faults.py sends
    real signals to a real run)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == 2:
            raise RuntimeError("crash")


class NoisyRegression(LinearRegression):
    """Dropout draws random numbers at every step, as the shuffled loader does at every epoch."""

    def __init__(self):
        super().__init__()
        self.dropout = torch.nn.Dropout(0.3)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(self.dropout(x)), y)


def shuffled_loader():
    return DataLoader(loader().dataset, batch_size=16, shuffle=True)


def test_a_crashed_run_resumes_with_the_random_state_of_its_checkpoint(tmp_path):
    def trained(run_dir, crash_epoch=None):
        torch.manual_seed(0)
        module = NoisyRegression()
        callbacks = [Crash(crash_epoch)] if crash_epoch is not None else []
        metrics = fit(module, shuffled_loader(), trainer_cfg=TRAINER, run_dir=run_dir, max_epochs=4, seed=0,
                      callbacks=callbacks)  # fmt: skip
        return module, metrics

    straight, _ = trained(tmp_path / "straight")
    with pytest.raises(RuntimeError, match="crash"):
        trained(tmp_path / "crashed", crash_epoch=2)
    # last.ckpt is written at every epoch's end, not only when training ends
    assert torch.load(last_checkpoint(tmp_path / "crashed"), weights_only=False)["global_step"] == 8
    torch.manual_seed(123)  # whatever the state before the rerun: the checkpoint's state wins
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed, metrics = trained(tmp_path / "crashed")
    # resuming into its own folder is expected: Lightning's "exists and is not empty" is not passed on
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]
    assert metrics["global_step"] == 16
    assert torch.equal(resumed.layer.weight, straight.layer.weight)
    assert torch.equal(resumed.layer.bias, straight.layer.bias)
