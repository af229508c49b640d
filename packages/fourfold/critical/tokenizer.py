"""Character tokenizer: the 40 characters of the scratchpad format plus the pad ``%`` (which is also EOS).

The id order is fixed and saved with every checkpoint (``to_dict`` / ``from_dict``), so a model is never
decoded with a different vocabulary than it was trained with.
"""

from collections.abc import Sequence

import torch

FORMAT_CHARS = "\n +,-/0123456789:<=>ACDEINT[]aceghnprstu"  # newline, space, then sorted printable chars
PAD = "%"


class CharTokenizer:
    """Maps characters to ids and back; ``pad_id`` doubles as EOS."""

    def __init__(self, chars: str = FORMAT_CHARS, pad: str = PAD):
        if len(set(chars)) != len(chars) or pad in chars:
            raise ValueError("tokenizer characters must be unique and must not contain the pad character")
        self.chars = chars
        self.pad = pad
        self.itos = list(chars) + [pad]
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self.pad_id = self.stoi[pad]
        self.eos_id = self.pad_id
        self.newline_id = self.stoi["\n"]

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - set(self.stoi))
        if unknown:
            raise ValueError(f"characters {unknown!r} are not in the tokenizer's vocabulary")
        return [self.stoi[c] for c in text]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.itos[i] for i in ids)

    def to_dict(self) -> dict:
        return {"chars": self.chars, "pad": self.pad}

    @classmethod
    def from_dict(cls, data: dict) -> "CharTokenizer":
        return cls(data["chars"], data["pad"])

    def check_matches(self, other: "CharTokenizer", where: str = "checkpoint") -> None:
        """Raise if ``other`` (e.g. a checkpoint's tokenizer) does not have exactly this vocabulary."""
        if self.itos != other.itos:
            raise ValueError(
                f"the {where}'s tokenizer ({other.vocab_size} symbols) differs from the configured one "
                f"({self.vocab_size} symbols): retrain the model or point the config to a matching checkpoint"
            )
