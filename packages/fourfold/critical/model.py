"""The character-level GPT-2 (``transformers.GPT2LMHeadModel`` from ``GPT2Config``), its size presets, the
optional critic head, and checkpoint files that carry the tokenizer and the architecture with the weights.
"""

from pathlib import Path

import torch
from torch import nn

from fourfold.critical.tokenizer import CharTokenizer

SIZES = {
    # ~0.4M parameters: the CPU preset of the brief (3 layers, d=96, 4 heads, 512 positions).
    "tiny": {"n_layer": 3, "n_embd": 96, "n_head": 4, "n_positions": 512},
    # ~0.8M: 4 layers, d=128, for checking whether what the tiny model does changes with size (2.2x the
    # tiny model's compute per step)
    "small": {"n_layer": 4, "n_embd": 128, "n_head": 4, "n_positions": 512},
    # smaller still, for tests and smoke runs
    "micro": {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 512},
    # the paper's model: GPT-2 small (85M non-embedding parameters); 2048 positions fit 15-digit episodes.
    "paper": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 2048},
}


def build_model(size: str | dict, vocab_size: int, dropout: float = 0.0):
    """A freshly initialised ``GPT2LMHeadModel``; ``size`` is a preset name or a dict of the four knobs."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    arch = dict(SIZES[size]) if isinstance(size, str) else dict(size)
    config = GPT2Config(
        vocab_size=vocab_size,
        bos_token_id=vocab_size - 1,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        **arch,
    )
    return GPT2LMHeadModel(config)


def architecture(model) -> dict:
    c = model.config
    return {"n_layer": c.n_layer, "n_embd": c.n_embd, "n_head": c.n_head, "n_positions": c.n_positions}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def set_dropout(model, p: float) -> None:
    """Set every dropout probability (RL uses 0)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


class Critic(nn.Module):
    """The value head: an MLP d -> 128 -> 128 -> 1 on the trunk's hidden state at every position."""

    def __init__(self, d_model: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.net(hidden_states).squeeze(-1)


def save_checkpoint(path: str | Path, model, tokenizer: CharTokenizer, extra: dict | None = None) -> Path:
    """Write weights, architecture and tokenizer to ``path`` (a .pt file of tensors and plain types)."""
    from fourfold.core.files import atomic_path

    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "architecture": architecture(model),
        "tokenizer": tokenizer.to_dict(),
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, tokenizer: CharTokenizer | None = None, size: str | dict | None = None):
    """Load a model saved by ``save_checkpoint``; returns (model, tokenizer, extra).

    With ``tokenizer`` / ``size`` given, a checkpoint whose vocabulary or architecture differs is an error
    (raised before any compute).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: pre-train first or fix the path")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved_tok = CharTokenizer.from_dict(payload["tokenizer"])
    if tokenizer is not None:
        tokenizer.check_matches(saved_tok, where=f"checkpoint {path}")
    arch = payload["architecture"]
    if size is not None:
        wanted = dict(SIZES[size]) if isinstance(size, str) else dict(size)
        if wanted != arch:
            raise ValueError(
                f"checkpoint {path} has architecture {arch}, the config asks for {wanted}: "
                "set the model size to match or pre-train a new checkpoint"
            )
    model = build_model(arch, saved_tok.vocab_size)
    model.load_state_dict(payload["state_dict"])
    return model, saved_tok, dict(payload.get("extra", {}))
