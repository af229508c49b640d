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
from fourfold.critical.model import check_positions
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
    positions: str = "learned"  # the model's position scheme (model.POSITIONS)

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
        check_positions(self.positions)
        return self

    def record(self) -> dict:
        """The spec as saved in its checkpoint; ``positions`` only when not ``learned`` (so a learned
        model's file is written exactly as before the schemes existed)."""
        fields = asdict(self)
        if fields["positions"] == "learned":
            fields.pop("positions")
        return fields

    @property
    def trained_steps(self) -> int:
        return self.stop_at or self.steps

    @property
    def name(self) -> str:
        fields = asdict(self)
        # Checkpoints made before a field existed keep their keys: at its old value a field stays out.
        for later, old in (("both_fraction", 0.0), ("stop_at", 0), ("positions", "learned")):
            if fields[later] == old:
                fields.pop(later)
        digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
        both = f"_both{self.both_fraction:g}" if self.both_fraction else ""
        stop = f"_stop{self.stop_at}" if self.stop_at else ""
        scheme = "" if self.positions == "learned" else f"_{self.positions}"
        return (
            f"N{self.n_digits}_mix{self.mix_fraction:g}{both}_{self.size}{scheme}_{self.steps}steps{stop}"
            f"_{digest}"
        )


class AdditionExamples(Dataset):
    """Pre-training pairs; each item is (prompt ids, target ids), plus the example's digit-index offset
    when ``offsets`` are given (digit-index models, ``digit_index.training_offsets``)."""

    def __init__(self, tokenizer: CharTokenizer, pairs: list[tuple[int, int]], offsets=None):
        if offsets is not None and len(offsets) != len(pairs):
            raise ValueError(f"{len(offsets)} digit-index offsets for {len(pairs)} examples")
        self.tokenizer = tokenizer
        self.pairs = pairs
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i):
        a, b = self.pairs[i]
        item = self.tokenizer.encode(prompt(a, b)), self.tokenizer.encode(scratchpad(a, b))
        return item if self.offsets is None else (*item, int(self.offsets[i]))


def collate(batch, pad_id: int):
    """Right-pad prompt+target sequences; labels are the target tokens only (prompt and pad are ignored).

    Returns dict(input_ids, attention_mask, labels), each [B, L], and ``digit_offset`` [B] when the items
    carry one. Positions start at 0 in every row.
    """
    length = max(len(item[0]) + len(item[1]) for item in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for i, (p, t, *_) in enumerate(batch):
        seq = torch.tensor(p + t, dtype=torch.long)
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
        labels[i, len(p) : len(seq)] = seq[len(p) :]
    out = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if len(batch[0]) == 3:
        out["digit_offset"] = torch.tensor([item[2] for item in batch], dtype=torch.long)
    return out


def training_pairs(spec: PretrainSpec) -> list[tuple[int, int]]:
    from fourfold.critical.arithmetic import pretrain_pairs

    rng = np.random.default_rng(spec.seed)
    count = spec.steps * spec.batch_size
    return pretrain_pairs(rng, count, spec.n_digits, spec.mix_fraction, spec.both_fraction)


def longest_operand(spec: PretrainSpec) -> int:
    """The most digits an operand of ``spec``'s examples has."""
    return spec.n_digits + (1 if spec.mix_fraction > 0 else 0)


def training_examples(spec: PretrainSpec, tokenizer: CharTokenizer) -> AdditionExamples:
    """The examples of ``spec``, with one digit-index offset each for digit-index models (drawn from their
    own seeded generator: the pairs are those of every other scheme)."""
    pairs = training_pairs(spec)
    offsets = None
    if spec.positions == "digit_index":
        from fourfold.critical.digit_index import training_offsets

        rng = np.random.default_rng([spec.seed, 19])
        offsets = training_offsets(rng, len(pairs), longest_operand(spec))
    return AdditionExamples(tokenizer, pairs, offsets)


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
    from fourfold.critical.model import SIZES, build_model, load_checkpoint, save_checkpoint

    spec.validate()
    path = cached_model_path(cache_dir, spec)
    if path.is_file():
        model, _, extra = load_checkpoint(path, tokenizer, spec.size, spec.positions)
        return model, extra
    longest_digits = longest_operand(spec)
    nines = 10**longest_digits - 1
    need = len(prompt(nines, nines) + scratchpad(nines, nines))
    n_positions = SIZES[spec.size]["n_positions"]
    if need > n_positions:
        raise ValueError(
            f"{longest_digits}-digit examples need {need} positions, the {spec.size} model has "
            f"{n_positions}: lower N or pick a larger size"
        )
    examples = training_examples(spec, tokenizer)
    torch.manual_seed(spec.seed)
    model = build_model(spec.size, tokenizer.vocab_size, positions=spec.positions, tokenizer=tokenizer)
    data = DataLoader(
        examples,
        batch_size=spec.batch_size,
        shuffle=False,
        collate_fn=lambda b: collate(b, tokenizer.pad_id),
    )
    module = PretrainLit(model, spec.lr, spec.weight_decay, spec.warmup_steps, spec.steps)
    callbacks = []
    if snapshot_every:
        from fourfold.critical.lit import Snapshots

        def save(step: int, weights) -> None:
            extra = {"spec": replace(spec, stop_at=step).record(), "snapshot_of": spec.name}
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
    extra = {"spec": spec.record(), "final_train_loss": metrics.get("train_loss", float("nan"))}
    save_checkpoint(path, model, tokenizer, extra)
    return model, extra
