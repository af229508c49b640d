"""The critical page: the scratchpad of a+b, the critical positions (the authors' locator) and, when a
pre-trained model is available, its certainty J at every scratchpad character under teacher forcing.

``fourfold.critical`` exports ``scratchpad`` and ``certainty``; the prompt, the critical-position locator
and the checkpoint loader are not in its top-level API yet, so they are imported from
``fourfold.critical.arithmetic`` and ``fourfold.critical.model`` here, and nowhere else in ``web``.

Models come from a list the server makes (``find_models``): the project's cache (``.cache/critical``), the
folders named at start-up (``fourfold-serve --checkpoints DIR``: our ``.pt`` checkpoints and Hugging Face
causal-LM directories, e.g. one written by ``python -m fourfold.critical.hf``) and the package's shipped
reference. The form sends a name from that list, never a path; a file whose real location leaves its folder
(a symlink out) is not listed. ``load_model(choice)`` loads what the user chose.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from fourfold.critical import certainty, scratchpad
from fourfold.web.uploads import UploadError

MAX_OPERAND_DIGITS = 12
DEFAULT_N = 2  # used when neither the form nor the checkpoint gives N
CACHE_FOLDER = ".cache/critical"  # where `make critical` caches its pre-trained models
CACHE_GLOB = "pretrain/*/model.pt"  # the pre-trained models under CACHE_FOLDER
FOLDER_GLOBS = ("*.pt", "*/*.pt", "*/*/*.pt")  # checkpoints in a --checkpoints folder, up to two levels down
HF_GLOBS = ("config.json", "*/config.json", "*/*/config.json")  # Hugging Face model directories there
MAX_LISTED = 200
NOT_A_CHECKPOINT = "the chosen file is not a fourfold.critical checkpoint"
NOT_A_CAUSAL_LM = "the chosen folder is not a Hugging Face causal language model with its tokenizer"
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the page's model list: ``key`` is what the form sends and shows (never a path)."""

    key: str
    path: Path
    kind: str = "checkpoint"  # checkpoint: a .pt file written by fourfold.critical | hf: a model directory


@dataclass
class Character:
    char: str
    certainty: float | None
    critical: bool

    @property
    def shade(self) -> int:
        """J in twentieths (0 = uncertain, 20 = certain): the CSS class of its background, since the
        page's Content-Security-Policy allows no inline style."""
        return 20 if self.certainty is None else round(20 * min(1.0, max(0.0, self.certainty)))


@dataclass
class CriticalResult:
    a: int
    b: int
    n_digits: int
    n_source: str  # given, the checkpoint's pre-training, or the default
    text: str
    characters: list[Character]
    critical_offsets: list[int]
    model: str | None  # the chosen model's name in the list, or None
    model_message: str
    mean_critical: float | None = None
    mean_other: float | None = None


def parse_operand(value: str, name: str) -> int:
    """A whole number written with the ASCII digits 0-9 (not "²", full-width or Arabic-Indic digits)."""
    value = (value or "").strip()
    if not _DIGITS.fullmatch(value):
        raise UploadError(
            f"{name} must be a non-negative whole number written with the digits 0-9, got {value!r}"
        )
    if len(value.lstrip("0") or "0") > MAX_OPERAND_DIGITS:
        raise UploadError(f"{name} has more than {MAX_OPERAND_DIGITS} digits; the page takes shorter numbers")
    return int(value)


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is a regular file whose real location lies inside ``folder`` (symlinks resolved)."""
    try:
        return path.is_file() and path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _shipped_references() -> list[tuple[str, Path]]:
    """(preset name, file) of each reference the installed critical package ships (the quick one first)."""
    try:
        from fourfold.critical.reference import SHIPPED, shipped_reference_path
    except ImportError:
        return []
    paths = [(name, shipped_reference_path(name)) for name in SHIPPED]
    return [(name, path) for name, path in paths if path.is_file()]


def find_models(root: Path, folders: tuple[Path, ...] = ()) -> list[ModelChoice]:
    """The models the page offers, newest cached first: ``root/.cache/critical/pretrain/*/model.pt``, the
    ``.pt`` files in each of ``folders`` (two levels down at most), and the shipped reference."""
    found: list[ModelChoice] = []
    cache = root / CACHE_FOLDER
    cached = [p for p in cache.glob(CACHE_GLOB) if _inside(p, cache)]
    for path in sorted(cached, key=lambda p: p.stat().st_mtime, reverse=True):
        found.append(ModelChoice(f"cache: {path.relative_to(cache).as_posix()}", path))
    for folder in folders:
        files = sorted({p for pattern in FOLDER_GLOBS for p in folder.glob(pattern) if _inside(p, folder)})
        for path in files[:MAX_LISTED]:
            found.append(ModelChoice(f"{folder.name}: {path.relative_to(folder).as_posix()}", path))
        configs = sorted({p for pattern in HF_GLOBS for p in folder.glob(pattern) if _inside(p, folder)})
        for config in configs[:MAX_LISTED]:
            name = config.parent.relative_to(folder).as_posix()
            name = f"{folder.name}/" if name == "." else f"{folder.name}: {name}/"
            found.append(ModelChoice(name, config.parent, kind="hf"))
    for name, path in _shipped_references():
        found.append(ModelChoice(f"shipped {name} reference", path))
    unique: dict[str, ModelChoice] = {}
    for choice in found:
        unique.setdefault(choice.key, choice)
    return list(unique.values())


def choose_model(key: str, choices: list[ModelChoice]) -> ModelChoice | None:
    """The listed model named ``key`` ("" is no model); ``UploadError`` for any other value."""
    if not key:
        return None
    for choice in choices:
        if choice.key == key:
            return choice
    raise UploadError("choose a model from the list (the list has changed since the page was opened)")


def load_model(choice: ModelChoice):
    """(model, tokenizer, extra) of the chosen model; one message for anything that is not a checkpoint
    of the critical package (loaded with ``weights_only=True``: nothing is unpickled) or, for a model
    directory, not a causal LM with its tokenizer (loaded offline; no remote code runs)."""
    if choice.kind == "hf":
        from fourfold.critical.hf import load_causal_lm, saved_extra

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, tokenizer = load_causal_lm(choice.path)
            return model, tokenizer, saved_extra(choice.path)
        except Exception as err:  # noqa: BLE001 - a missing tokenizer, a broken config: all one answer
            raise UploadError(NOT_A_CAUSAL_LM) from err
    from fourfold.critical.model import load_checkpoint

    try:
        with warnings.catch_warnings():  # torch's notes on a foreign pickle: the page's one message says it
            warnings.simplefilter("ignore", UserWarning)
            return load_checkpoint(choice.path)
    except Exception as err:  # noqa: BLE001 - a corrupt zip, a pickle, a CSV, a wrong dict: all one answer
        raise UploadError(NOT_A_CHECKPOINT) from err


def model_certainty(model, tokenizer, a: int, b: int) -> list[float]:
    """J (Shannon, in [0, 1]) of the model's next-token distribution at every scratchpad character, with
    the correct prefix (teacher forcing). A character gets the J of the token that holds it: with our
    character tokenizer that is its own prediction; with a subword tokenizer (a Hugging Face model) the
    token's, found through the tokenizer's character offsets."""
    import torch

    from fourfold.critical.arithmetic import prompt
    from fourfold.critical.tokens import context_length

    head, target = prompt(a, b), scratchpad(a, b)
    text = head + target
    try:
        if hasattr(tokenizer, "backend_tokenizer"):  # a Hugging Face fast tokenizer
            encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, spans = encoded["input_ids"], encoded["offset_mapping"]
        else:
            ids = tokenizer.encode(text)
            spans = [(i, i + 1) for i in range(len(ids))]
    except (KeyError, ValueError, TypeError) as err:
        raise UploadError(f"the model's tokenizer cannot encode this addition ({err})") from err
    limit = context_length(model)
    if limit is not None and len(ids) > limit:
        raise UploadError(
            f"the scratchpad is {len(ids)} tokens, over the model's {limit} positions; use shorter numbers"
        )
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    # logits at token t - 1 predict token t; the first token has no prediction (J 1, shown as certain)
    token_j = [1.0] + [float(j) for j in certainty(torch.softmax(logits[:-1], dim=-1), "shannon")]
    per_char = [1.0] * len(text)
    for j, (begin, end) in zip(token_j, spans):
        for i in range(begin, min(end, len(text))):
            per_char[i] = j
    return per_char[len(head) :]


def pretraining_digits(extra: dict) -> int | None:
    """N of a checkpoint pre-trained by the critical package (its ``extra["spec"]["n_digits"]``), if saved."""
    spec = extra.get("spec")
    n = spec.get("n_digits") if isinstance(spec, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def analyse(a: int, b: int, n_digits: int | None, choice: ModelChoice | None) -> CriticalResult:
    """Scratchpad, critical positions for a model pre-trained on up to ``n_digits`` digits (None: the
    checkpoint's own N, else DEFAULT_N), and the chosen model's J at each character."""
    from fourfold.critical.arithmetic import critical_positions

    model = tokenizer = None
    extra: dict = {}
    if choice is not None:
        model, tokenizer, extra = load_model(choice)
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
        "No model is chosen: pick one from the list (run `make critical` once to cache the quick model "
        "under .cache/critical/, or start the app with --checkpoints FOLDER). The scratchpad and its "
        "critical positions are shown."
    )
    if model is not None:
        values = model_certainty(model, tokenizer, a, b)
        message = f"certainty J of {choice.key} at each scratchpad character (teacher forcing)"
    critical = set(offsets)
    chars = [Character(c, values[i], i in critical) for i, c in enumerate(text)]
    used = None if choice is None else choice.key
    result = CriticalResult(a, b, n_digits, n_source, text, chars, offsets, used, message)
    if used is not None and offsets:
        crit = [values[i] for i in offsets]
        other = [v for i, v in enumerate(values) if i not in critical]
        result.mean_critical = sum(crit) / len(crit)
        result.mean_other = sum(other) / len(other)
    return result
