"""Tasks the CLI tests dispatch to (importable through PYTHONPATH=tests/core)."""

import time


def echo(cfg):
    if cfg.demo.fail or cfg.seed == cfg.demo.get("fail_seed", -1):
        raise RuntimeError("demo task failed on purpose")
    return {"value": cfg.demo.value * (cfg.seed + 1), "seed": cfg.seed}


def train(cfg):
    """A tiny regression trained through ``core.train.fit`` (shuffled batches, dropout: both draw random
    numbers, so a resumed run only matches an uninterrupted one if the random state is restored too).

    Every training step appends ``global_step`` to ``steps.txt`` in the run folder, so a test can see where
    an attempt started and wait for a moment in the middle of an epoch.
    """
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    from fourfold.core.runs import current_run_dir
    from fourfold.core.train import fit

    run_dir = current_run_dir()
    steps_file = run_dir / "steps.txt"
    step_seconds = float(cfg.demo.step_seconds)

    class Regression(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, 16), torch.nn.Dropout(cfg.demo.dropout), torch.nn.Linear(16, 1)
            )

        def mse(self, batch):
            inputs, targets = batch
            return torch.nn.functional.mse_loss(self.net(inputs), targets)

        def training_step(self, batch, batch_idx):
            if self.global_rank == 0:
                with steps_file.open("a") as trace:
                    trace.write(f"{self.global_step}\n")
            time.sleep(step_seconds)
            loss = self.mse(batch)
            # sync_dist: under DDP the logged value is the mean over processes, as one process would see it
            self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self.mse(batch), sync_dist=True)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01)

    generator = torch.Generator().manual_seed(1234)
    x = torch.randn(cfg.demo.rows, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(
        cfg.demo.rows, 1, generator=generator
    )
    data = TensorDataset(x, y)
    if cfg.demo.ddp_order:
        # Lightning's DDP sampler (it always shuffles training data: a permutation seeded 0 + epoch) in one
        # process, so that one process sees, batch by batch, the union of what the DDP processes see.
        sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
        train_loader = DataLoader(data, batch_size=cfg.demo.batch_size, sampler=sampler)
    else:
        train_loader = DataLoader(data, batch_size=cfg.demo.batch_size, shuffle=cfg.demo.shuffle)
    val_loader = DataLoader(data, batch_size=cfg.demo.rows)
    torch.manual_seed(cfg.seed)
    module = Regression()
    metrics = fit(module, train_loader, val_loader, trainer_cfg=cfg.trainer, run_dir=run_dir,
                  max_epochs=cfg.demo.epochs, seed=cfg.seed)  # fmt: skip
    weights = torch.cat([p.detach().flatten() for p in module.parameters()])
    return {
        **metrics,
        "weight_sum": float(weights.double().sum()),
        "weight_norm": float(weights.double().norm()),
    }
