"""The pre-training stage driver: supervised examples of scratchpad additions, and a cache of finished
pre-trained checkpoints keyed by everything that shapes them. The loss and its schedule are in ``losses``,
the Lightning module in ``lit``; this module imports them, never the other way round.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fourfold.critical.arithmetic import prompt, scratchpad
from fourfold.critical.losses import IGNORE
from fourfold.critical.tokenizer import CharTokenizer


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that determines a pre-trained checkpoint (its cache key)."""

    n_digits: int  # N: operands of 1..N digits
    mix_fraction: float  # share of examples with one (N+1)-digit operand
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    weight_decay: float
    size: str
    seed: int
    both_fraction: float = 0.0  # share of the mixed examples with both operands of N+1 digits
    stop_at: int = 0  # 0: train all `steps`; k: stop after step k of the same `steps`-long run (a snapshot)

    def validate(self) -> "PretrainSpec":
        if self.n_digits < 1:
            raise ValueError(f"n_digits (N) must be >= 1, got {self.n_digits}")
        for name in ("mix_fraction", "both_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("pre-training steps and batch_size must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"pre-training lr must be > 0, got {self.lr}")
        if not 0 <= self.stop_at <= self.steps:
            raise ValueError(f"stop_at must be in [0, steps={self.steps}], got {self.stop_at}")
        return self

    @property
    def trained_steps(self) -> int:
        return self.stop_at or self.steps

    @property
    def name(self) -> str:
        fields = asdict(self)
        for later in ("both_fraction", "stop_at"):  # checkpoints made before a field existed keep their keys
            if not fields[later]:
                fields.pop(later)
        digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
        both = f"_both{self.both_fraction:g}" if self.both_fraction else ""
        stop = f"_stop{self.stop_at}" if self.stop_at else ""
        return f"N{self.n_digits}_mix{self.mix_fraction:g}{both}_{self.size}_{self.steps}steps{stop}_{digest}"


class AdditionExamples(Dataset):
    """``count`` pre-training pairs drawn once from ``seed``; each item is (prompt ids, target ids)."""

    def __init__(self, tokenizer: CharTokenizer, pairs: list[tuple[int, int]]):
        self.tokenizer = tokenizer
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i):
        a, b = self.pairs[i]
        return self.tokenizer.encode(prompt(a, b)), self.tokenizer.encode(scratchpad(a, b))


def collate(batch, pad_id: int):
    """Right-pad prompt+target sequences; labels are the target tokens only (prompt and pad are ignored).

    Returns dict(input_ids, attention_mask, labels), each [B, L]. Positions start at 0 in every row.
    """
    length = max(len(p) + len(t) for p, t in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for i, (p, t) in enumerate(batch):
        seq = torch.tensor(p + t, dtype=torch.long)
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
        labels[i, len(p) : len(seq)] = seq[len(p) :]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def training_pairs(spec: PretrainSpec) -> list[tuple[int, int]]:
    from fourfold.critical.arithmetic import pretrain_pairs

    rng = np.random.default_rng(spec.seed)
    count = spec.steps * spec.batch_size
    return pretrain_pairs(rng, count, spec.n_digits, spec.mix_fraction, spec.both_fraction)


def cached_model_path(cache_dir: str | Path, spec: PretrainSpec) -> Path:
    """Where the finished checkpoint of ``spec`` lives (``model.pt``); its fit run folder is next to it."""
    return Path(cache_dir) / "pretrain" / spec.name / "model.pt"


def snapshot_path(cache_dir: str | Path, spec: PretrainSpec, step: int) -> Path:
    """Where the weights after ``step`` of ``spec``'s pre-training are kept (``snapshot_every``)."""
    return Path(cache_dir) / "pretrain" / spec.name / "snapshots" / f"step{step:06d}.pt"


def pretrained_model(
    spec: PretrainSpec,
    tokenizer: CharTokenizer,
    cache_dir: str | Path,
    trainer_cfg,
    snapshot_every: int | None = None,
    **trainer_overrides,
):
    """The pre-trained model of ``spec``: loaded from the cache when it is there (checked against the
    tokenizer and size first), otherwise trained through ``fourfold.core.train.fit`` and cached. An
    interrupted pre-training resumes from the cache folder's last checkpoint. ``snapshot_every`` also keeps
    the weights every that many steps (``snapshot_path``): the checkpoint of ``stop_at = k`` is the same
    run stopped at k, so a snapshot can be picked as a reference. Returns (model, info dict)."""
    # Imported here: Lightning takes seconds to import and the examples above are used without it.
    from torch.utils.data import DataLoader

    from fourfold.core.train import fit
    from fourfold.critical.lit import PretrainLit
    from fourfold.critical.model import build_model, load_checkpoint, save_checkpoint

    spec.validate()
    path = cached_model_path(cache_dir, spec)
    if path.is_file():
        model, _, extra = load_checkpoint(path, tokenizer, spec.size)
        return model, extra
    longest_digits = spec.n_digits + (1 if spec.mix_fraction > 0 else 0)
    nines = 10**longest_digits - 1
    need = len(prompt(nines, nines) + scratchpad(nines, nines))
    n_positions = build_model(spec.size, tokenizer.vocab_size).config.n_positions
    if need > n_positions:
        raise ValueError(
            f"{longest_digits}-digit examples need {need} positions, the {spec.size} model has "
            f"{n_positions}: lower N or pick a larger size"
        )
    torch.manual_seed(spec.seed)
    model = build_model(spec.size, tokenizer.vocab_size)
    data = DataLoader(
        AdditionExamples(tokenizer, training_pairs(spec)),
        batch_size=spec.batch_size,
        shuffle=False,
        collate_fn=lambda b: collate(b, tokenizer.pad_id),
    )
    module = PretrainLit(model, spec.lr, spec.weight_decay, spec.warmup_steps, spec.steps)
    callbacks = []
    if snapshot_every:
        from fourfold.critical.lit import Snapshots

        def save(step: int, weights) -> None:
            extra = {"spec": asdict(replace(spec, stop_at=step)), "snapshot_of": spec.name}
            save_checkpoint(snapshot_path(cache_dir, spec, step), weights, tokenizer, extra)

        callbacks.append(Snapshots(int(snapshot_every), save))
    metrics = fit(
        module,
        data,
        trainer_cfg=trainer_cfg,
        run_dir=path.parent / "fit",
        max_steps=spec.trained_steps,
        seed=spec.seed,
        checkpoint_every_n_steps=max(1, spec.trained_steps // 10),
        callbacks=callbacks,
        gradient_clip_val=1.0,
        progress_name=f"pre-training {spec.name}",
        **trainer_overrides,
    )
    extra = {"spec": asdict(spec), "final_train_loss": metrics.get("train_loss", float("nan"))}
    save_checkpoint(path, model, tokenizer, extra)
    return model, extra
