"""The critical package's models as Hugging Face models: export a checkpoint to a model directory with a
``PreTrainedTokenizerFast`` whose ids equal ``CharTokenizer``'s, load either form, and stop generation at
the end of a scratchpad episode (the format has no EOS: the model was never taught to emit one).

A directory written by ``export_reference`` loads offline with ``AutoModelForCausalLM.from_pretrained(dir)``
and ``AutoTokenizer.from_pretrained(dir)``; that is how TRL's ``GRPOTrainer`` rebuilds its reference model
(from the policy's ``config._name_or_path``), so a policy loaded from such a directory gets a reference too.
"""

import json
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from fourfold.critical.arithmetic import SCRATCH_CLOSE
from fourfold.critical.tokenizer import CharTokenizer

PROVENANCE_FILE = "fourfold_critical.json"  # the CharTokenizer and the checkpoint's extra (pre-training spec)


def fast_tokenizer(tokenizer: CharTokenizer, model_max_length: int | None = None):
    """A ``PreTrainedTokenizerFast`` with exactly ``tokenizer``'s ids: one token per character, no special
    tokens added on encoding, the pad ``%`` doubling as EOS, left padding (what generation needs)."""
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as RustTokenizer
    from transformers import PreTrainedTokenizerFast

    backend = RustTokenizer(models.WordLevel(vocab=dict(tokenizer.stoi), unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
    backend.decoder = decoders.Fuse()  # join the characters back without spaces
    extra = {"model_max_length": model_max_length} if model_max_length else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=tokenizer.pad,
        pad_token=tokenizer.pad,
        padding_side="left",
        clean_up_tokenization_spaces=False,  # " , " is part of the format; the clean-up would eat the space
        **extra,
    )


def _load_source(source):
    from fourfold.critical.model import load_checkpoint

    if isinstance(source, str | Path):
        return load_checkpoint(source)
    model, tokenizer = source
    return model, tokenizer, {}


def export_reference(source, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write a Hugging Face model directory (weights, config, generation config, tokenizer files and
    ``fourfold_critical.json``) from ``source``: a ``.pt`` checkpoint of ``model.save_checkpoint`` or a
    (``GPT2LMHeadModel``, ``CharTokenizer``) pair. The directory appears whole or not at all."""
    model, tokenizer, extra = _load_source(source)
    from fourfold.critical.digit_index import DigitIndexGPT2LMHeadModel

    if isinstance(model, DigitIndexGPT2LMHeadModel):
        raise ValueError(
            "a digit_index model has no Hugging Face class (its digit-index embedding is ours): "
            "export a learned, nope or rope model"
        )
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"the model has {model.config.vocab_size} token ids, the tokenizer {tokenizer.vocab_size}: "
            "export a model with the tokenizer it was trained with"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists: pass overwrite=True (--overwrite) or choose another folder")
    model.config.eos_token_id = model.config.pad_token_id = model.config.bos_token_id = tokenizer.pad_id
    model.generation_config.eos_token_id = model.generation_config.pad_token_id = tokenizer.pad_id
    model.generation_config.bos_token_id = tokenizer.pad_id
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        model.save_pretrained(tmp)
        fast_tokenizer(tokenizer, model.config.n_positions).save_pretrained(tmp)
        provenance = {"char_tokenizer": tokenizer.to_dict(), "extra": extra}
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def load_causal_lm(path: str | Path):
    """(model in eval mode, Hugging Face tokenizer) from a critical ``.pt`` checkpoint or a Hugging Face
    model directory (``config.json`` and tokenizer files; loaded offline, never downloaded)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".pt":
        from fourfold.critical.model import load_checkpoint

        model, tokenizer, _ = load_checkpoint(path)
        return model.eval(), fast_tokenizer(tokenizer, model.config.n_positions)
    if path.is_dir() and (path / "config.json").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} has a model but no loadable tokenizer files ({err})") from err
        return model.eval(), tokenizer
    raise FileNotFoundError(
        f"{path} is neither a .pt checkpoint of fourfold.critical nor a Hugging Face model directory "
        "(a folder with config.json, the weights and the tokenizer files)"
    )


def saved_extra(path: str | Path) -> dict:
    """The ``extra`` a critical checkpoint carries (e.g. ``{"spec": {"n_digits": 3, ...}}``), for a ``.pt``
    file or a directory written by ``export_reference``; ``{}`` for any other model directory."""
    path = Path(path)
    if path.is_file():
        return dict(torch.load(path, map_location="cpu", weights_only=True).get("extra", {}))
    file = path / PROVENANCE_FILE
    return dict(json.loads(file.read_text()).get("extra", {})) if file.is_file() else {}


# --- where a generation ends ------------------------------------------------------------------------------


def scratchpad_end(text: str) -> int | None:
    """Characters of a completion that make one scratchpad episode: up to the ``\\n`` that closes the
    result line after ``</scratch>\\n`` (the Lightning loop's rule); None while it has not ended."""
    marker = SCRATCH_CLOSE + "\n"
    start = text.find(marker)
    if start < 0:
        return None
    end = text.find("\n", start + len(marker))
    return None if end < 0 else end + 1


@dataclass(frozen=True)
class StopRule:
    """Where a completion ends besides EOS: ``end(text)`` gives the number of characters to keep (None:
    not ended); ``trigger`` (optional) are characters at least one of which the last token must contain
    for ``end`` to be worth calling (checking only then keeps generation fast)."""

    end: Callable[[str], int | None]
    trigger: str | None = None

    def tokens_to_keep(self, ids: list[int], tokenizer) -> int | None:
        """The shortest prefix of ``ids`` whose text covers ``end``'s characters (None: not ended)."""
        text = tokenizer.decode(ids, skip_special_tokens=True)
        keep = self.end(text)
        if keep is None:
            return None
        lo, hi = 1, len(ids)
        while lo < hi:  # decoded length grows with the prefix: bisect on it
            mid = (lo + hi) // 2
            if len(tokenizer.decode(ids[:mid], skip_special_tokens=True)) >= keep:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def stopping_criteria(self, tokenizer, prompt_length: int):
        """A ``transformers`` stopping criterion for ``generate``: a row is done once its completion (the
        ids after ``prompt_length``) has ended by this rule."""
        from transformers import StoppingCriteria

        rule = self
        trigger_ids = None if self.trigger is None else _trigger_ids(tokenizer, self.trigger)

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
                rows = range(input_ids.shape[0])
                if trigger_ids is not None:
                    hit = torch.isin(input_ids[:, -1].cpu(), trigger_ids)
                    rows = hit.nonzero().flatten().tolist()
                for i in rows:
                    text = tokenizer.decode(input_ids[i, prompt_length:], skip_special_tokens=True)
                    done[i] = rule.end(text) is not None
                return done

        return _Stop()


_TRIGGER_IDS = weakref.WeakKeyDictionary()  # tokenizer -> {trigger: ids}: one pass over a vocabulary


def _trigger_ids(tokenizer, trigger: str) -> torch.Tensor:
    """Ids of the tokens whose text contains one of ``trigger``'s characters."""
    known = _TRIGGER_IDS.setdefault(tokenizer, {})
    if trigger not in known:
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        texts = [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in vocab]
        known[trigger] = torch.tensor([i for i, t in enumerate(texts) if any(c in t for c in trigger)])
    return known[trigger]


SCRATCHPAD_STOP = StopRule(scratchpad_end, trigger="\n")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m fourfold.critical.hf",
        description="Export a critical .pt checkpoint to a Hugging Face model directory.",
    )
    parser.add_argument(
        "checkpoint",
        help=".pt file written by fourfold.critical, or 'shipped': the package's mix reference (a GPT-2)",
    )
    parser.add_argument("out_dir", help="the model directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace out_dir if it exists")
    args = parser.parse_args(argv)
    source = Path(args.checkpoint)
    if args.checkpoint == "shipped" and not source.exists():
        from fourfold.critical.reference import shipped_reference_path

        source = shipped_reference_path("mix")
    try:
        out = export_reference(source, args.out_dir, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}: load it with AutoModelForCausalLM / AutoTokenizer.from_pretrained({str(out)!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
