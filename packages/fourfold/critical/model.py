"""The character-level model: ``transformers.GPT2LMHeadModel`` from ``GPT2Config`` (or, for rotary
positions, a ``LlamaForCausalLM`` of the same size), its size presets and position schemes, the optional
critic head, and checkpoint files that carry the tokenizer and the architecture with the weights.

Every other module uses the models through the causal-LM interface (``model(input_ids, attention_mask,
position_ids)``, ``model.base_model``, ``model.get_output_embeddings()``) and ``context_length``; only
``decoding`` looks inside GPT-2 (its fast path).
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
    # the tiny model with 1,024 positions: N = 5 and 7, whose N+2- and N+3-digit episodes pass 512 positions
    "tiny_long": {"n_layer": 3, "n_embd": 96, "n_head": 4, "n_positions": 1024},
    # smaller still, for tests and smoke runs
    "micro": {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 512},
    # the paper's model: GPT-2 small (85M non-embedding parameters); 2048 positions fit 15-digit episodes.
    "paper": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 2048},
}


# How the model knows where a token is (``critical.model.positions``, issue 19):
POSITIONS = {
    "learned": "GPT-2's learned absolute position embeddings (the default; the model of every result so far)",
    "nope": "GPT-2 with its position table zeroed and frozen: no position embedding, only the causal mask",
    "rope": "LlamaForCausalLM of the same width, depth and heads: rotary positions, RMSNorm, SwiGLU MLP",
    "digit_index": "nope plus an embedding of each digit's index in its number (digit_index.py, Abacus-like)",
}


def check_positions(positions: str) -> str:
    if positions not in POSITIONS:
        raise ValueError(f"unknown position scheme {positions!r}; choose one of {list(POSITIONS)}")
    return positions


def build_model(
    size: str | dict,
    vocab_size: int,
    dropout: float = 0.0,
    positions: str = "learned",
    tokenizer: CharTokenizer | None = None,
):
    """A freshly initialised causal LM; ``size`` is a preset name or a dict of the four knobs, ``positions``
    one of ``POSITIONS``: a ``GPT2LMHeadModel`` except for ``rope`` (a ``LlamaForCausalLM``).
    ``tokenizer`` (default: the format's ``CharTokenizer``) tells ``digit_index`` which ids are digits."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    check_positions(positions)
    arch = dict(SIZES[size]) if isinstance(size, str) else dict(size)
    if positions == "rope":
        return _llama(arch, vocab_size, dropout)
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
    if positions == "learned":
        return GPT2LMHeadModel(config)
    config.position_scheme = positions
    if positions == "nope":
        model = GPT2LMHeadModel(config)
    else:
        from fourfold.critical.digit_index import digit_index_model

        tokenizer = tokenizer or CharTokenizer()
        if tokenizer.vocab_size != vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} symbols, the model {vocab_size}")
        model = digit_index_model(config, tokenizer)
    # No absolute positions: the table stays in the state dict (the library's GPT-2 always adds it), as
    # zeros that no optimiser moves (no gradient).
    with torch.no_grad():
        model.transformer.wpe.weight.zero_()
    model.transformer.wpe.weight.requires_grad_(False)
    return model


def _llama(arch: dict, vocab_size: int, dropout: float):
    """Rotary positions: a Llama of GPT-2's width, depth and heads; its SwiGLU MLP is 8d/3 wide, so the MLP
    has GPT-2's 8d^2 weights; tied embeddings as in GPT-2. ``n_positions`` is its context limit."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch["n_embd"],
        intermediate_size=8 * arch["n_embd"] // 3,
        num_hidden_layers=arch["n_layer"],
        num_attention_heads=arch["n_head"],
        num_key_value_heads=arch["n_head"],
        max_position_embeddings=arch["n_positions"],
        tie_word_embeddings=True,
        attention_dropout=dropout,
        rms_norm_eps=1e-5,
        bos_token_id=vocab_size - 1,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    config.position_scheme = "rope"
    return LlamaForCausalLM(config)


def position_scheme(model) -> str:
    """The ``POSITIONS`` scheme of a model built by ``build_model``."""
    return getattr(model.config, "position_scheme", "learned")


def context_length(model) -> int:
    """The positions a model may use (GPT-2's ``n_positions``, Llama's ``max_position_embeddings``)."""
    return int(model.config.max_position_embeddings)


def hidden_size(model) -> int:
    return int(model.config.hidden_size)


def architecture(model) -> dict:
    """The four size knobs, and the position scheme unless it is ``learned`` (so the files of learned
    models are written exactly as before the schemes existed)."""
    c = model.config
    arch = {
        "n_layer": c.num_hidden_layers,
        "n_embd": c.hidden_size,
        "n_head": c.num_attention_heads,
        "n_positions": c.max_position_embeddings,
    }
    if position_scheme(model) != "learned":
        arch["positions"] = position_scheme(model)
    return arch


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
    # Through a file object: torch names the archive's root folder after a path's stem (here a random
    # temporary name), so only this way do equal checkpoints give byte-equal files (sha256 in provenance).
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
    return Path(path)


def load_checkpoint(
    path: str | Path,
    tokenizer: CharTokenizer | None = None,
    size: str | dict | None = None,
    positions: str | None = None,
):
    """Load a model saved by ``save_checkpoint``; returns (model, tokenizer, extra).

    With ``tokenizer`` / ``size`` / ``positions`` given, a checkpoint whose vocabulary, architecture or
    position scheme differs is an error (raised before any compute).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: pre-train first or fix the path")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved_tok = CharTokenizer.from_dict(payload["tokenizer"])
    if tokenizer is not None:
        tokenizer.check_matches(saved_tok, where=f"checkpoint {path}")
    arch = dict(payload["architecture"])
    saved_positions = arch.pop("positions", "learned")  # files from before the schemes: learned
    if size is not None:
        wanted = dict(SIZES[size]) if isinstance(size, str) else dict(size)
        if wanted != arch:
            raise ValueError(
                f"checkpoint {path} has architecture {arch}, the config asks for {wanted}: "
                "set the model size to match or pre-train a new checkpoint"
            )
    if positions is not None and check_positions(positions) != saved_positions:
        raise ValueError(
            f"checkpoint {path} has position scheme {saved_positions!r}, the config asks for {positions!r}: "
            "set critical.model.positions to match or pre-train a new checkpoint"
        )
    model = build_model(arch, saved_tok.vocab_size, positions=saved_positions, tokenizer=saved_tok)
    model.load_state_dict(payload["state_dict"])
    return model, saved_tok, dict(payload.get("extra", {}))
