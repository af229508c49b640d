"""The critical page: the scratchpad of a+b, the critical positions (the authors' locator) and, when a
pre-trained model is available, its certainty J at every scratchpad character under teacher forcing.

``fourfold.critical`` exports ``scratchpad`` and ``certainty``; the prompt, the critical-position locator
and the checkpoint loader are not in its top-level API yet, so they are imported from
``fourfold.critical.arithmetic`` and ``fourfold.critical.model`` here, and nowhere else in ``web``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fourfold.critical import certainty, scratchpad
from fourfold.web.uploads import UploadError

MAX_OPERAND_DIGITS = 12
DEFAULT_N = 2  # used when neither the form nor the checkpoint gives N
CACHE_GLOB = ".cache/critical/pretrain/*/model.pt"  # where `make critical` caches its pre-trained model


@dataclass
class Character:
    char: str
    certainty: float | None
    critical: bool


@dataclass
class CriticalResult:
    a: int
    b: int
    n_digits: int
    n_source: str  # given, the checkpoint's pre-training, or the default
    text: str
    characters: list[Character]
    critical_offsets: list[int]
    model: str | None  # the checkpoint used, or None
    model_message: str
    mean_critical: float | None = None
    mean_other: float | None = None


def parse_operand(value: str, name: str) -> int:
    value = (value or "").strip()
    if not value.isdigit():
        raise UploadError(f"{name} must be a non-negative whole number written with digits, got {value!r}")
    if len(value.lstrip("0") or "0") > MAX_OPERAND_DIGITS:
        raise UploadError(f"{name} has more than {MAX_OPERAND_DIGITS} digits; the page takes shorter numbers")
    return int(value)


def cached_model(root: Path) -> Path | None:
    """The most recent pre-trained model cached by ``make critical`` under ``root``, if any."""
    found = sorted(root.glob(CACHE_GLOB), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def load_model(path: Path):
    """(model, tokenizer, extra) from a checkpoint written by the critical package (weights_only load)."""
    from fourfold.critical.model import load_checkpoint

    if path.suffix != ".pt":
        raise UploadError(f"checkpoint {path}: expected a .pt file written by the critical package")
    try:
        return load_checkpoint(path)
    except (FileNotFoundError, KeyError, RuntimeError, ValueError, OSError) as err:
        raise UploadError(f"checkpoint {path}: {' '.join(str(err).split())}") from err


def model_certainty(model, tokenizer, a: int, b: int) -> list[float]:
    """J (Shannon, in [0, 1]) of the model's next-character distribution at every scratchpad character,
    with the correct prefix (teacher forcing)."""
    import torch

    from fourfold.critical.arithmetic import prompt

    head, target = prompt(a, b), scratchpad(a, b)
    try:
        ids = tokenizer.encode(head + target)
    except (KeyError, ValueError) as err:
        raise UploadError(f"the model's tokenizer cannot encode this addition ({err})") from err
    limit = model.config.n_positions
    if len(ids) > limit:
        raise UploadError(
            f"the scratchpad is {len(ids)} characters, over the model's {limit} positions; "
            "use shorter numbers"
        )
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    start = len(head) - 1  # logits at position i predict character i + 1
    probs = torch.softmax(logits[start : start + len(target)], dim=-1)
    return [float(j) for j in certainty(probs, "shannon")]


def pretraining_digits(extra: dict) -> int | None:
    """N of a checkpoint pre-trained by the critical package (its ``extra["spec"]["n_digits"]``), if saved."""
    spec = extra.get("spec")
    n = spec.get("n_digits") if isinstance(spec, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def analyse(a: int, b: int, n_digits: int | None, model_path: Path | None) -> CriticalResult:
    """Scratchpad, critical positions for a model pre-trained on up to ``n_digits`` digits (None: the
    checkpoint's own N, else DEFAULT_N), and the model's J at each character when a checkpoint is given."""
    from fourfold.critical.arithmetic import critical_positions

    model = tokenizer = None
    extra: dict = {}
    if model_path is not None:
        model, tokenizer, extra = load_model(model_path)
    n_source = "given"
    if n_digits is None:
        n_digits = pretraining_digits(extra)
        n_source = "the checkpoint's pre-training" if n_digits else "the default"
        n_digits = n_digits or DEFAULT_N
    if not 1 <= n_digits <= MAX_OPERAND_DIGITS:
        raise UploadError(f"N (the digits seen in pre-training) must be in 1..{MAX_OPERAND_DIGITS}")
    text = scratchpad(a, b)
    offsets = sorted(p.offset for p in critical_positions(a, b, n_digits))
    values: list[float | None] = [None] * len(text)
    message = (
        "No model is available: give a checkpoint path, or run `make critical` once to cache the "
        "quick model under .cache/critical/. The scratchpad and its critical positions are shown."
    )
    if model is not None:
        values = model_certainty(model, tokenizer, a, b)
        message = f"certainty J of {model_path} at each scratchpad character (teacher forcing)"
    critical = set(offsets)
    chars = [Character(c, values[i], i in critical) for i, c in enumerate(text)]
    used = None if model is None else str(model_path)
    result = CriticalResult(a, b, n_digits, n_source, text, chars, offsets, used, message)
    if used is not None and offsets:
        crit = [values[i] for i in offsets]
        other = [v for i, v in enumerate(values) if i not in critical]
        result.mean_critical = sum(crit) / len(crit)
        result.mean_other = sum(other) / len(other)
    return result
