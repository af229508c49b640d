"""A critical-token finder for any Hugging Face causal LM: the model's certainty J (``kl.certainty``) at
every token of a text, its least certain positions, and an HTML heat map.

J at token i is the certainty of the model's next-token distribution that predicted token i from the tokens
before it (teacher forcing), at ``temperature``: 1 for a one-hot prediction, 0 for a uniform one. The
prioritized KL relaxes the KL penalty where the reference's J is low, so these are the positions it frees.

    python -m fourfold.critical.tokens --model DIR_OR_PT --text FILE [--top K] [--html OUT] [--after TEXT]

``--text`` is a UTF-8 file; texts are separated by a line holding only ``---`` (one text if there is none).
"""

import argparse
import html
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from fourfold.critical.hf import load_causal_lm
from fourfold.critical.kl import CERTAINTY_KINDS, certainty_from_logits
from fourfold.critical.rollout import left_pad, position_ids

TEXT_SEPARATOR = "\n---\n"


def left_padded(id_lists: list[list[int]], pad_id: int):
    """(ids [B, L], attention mask [B, L], position ids [B, L]) of left-padded sequences; positions count
    from each row's first real token (what generate uses; absolute-position models like GPT-2 need it)."""
    ids, mask = left_pad(id_lists, pad_id)
    return ids, mask, position_ids(mask)


def context_length(model) -> int | None:
    config = model.config
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@torch.no_grad()
def sequence_certainty(
    model,
    id_lists: list[list[int]],
    pad_id: int,
    *,
    kind: str = "shannon",
    temperature: float = 1.0,
    batch_size: int = 16,
) -> list[torch.Tensor]:
    """J of the distribution that predicted each token 1..n-1 of every id list (a tensor of n-1 values per
    list; token 0 has no prediction), from one teacher-forced pass per batch of left-padded lists."""
    if kind not in CERTAINTY_KINDS:
        raise ValueError(f"certainty must be one of {CERTAINTY_KINDS}, got {kind!r}")
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(id_lists), batch_size):
        chunk = id_lists[start : start + batch_size]
        ids, mask, pos = left_padded(chunk, pad_id)
        logits = model(
            input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device)
        ).logits
        j = certainty_from_logits(logits[:, :-1].float().cpu(), kind, temperature)  # [B, L-1]
        for row, seq in enumerate(chunk):
            n = len(seq)
            out.append(j[row, j.shape[1] - (n - 1) :] if n > 1 else torch.zeros(0))
    return out


@dataclass
class TokenCertainty:
    """One text: its tokens (as strings), J per token (NaN for the first, which has no prediction), and
    whether the text was cut to the model's context."""

    tokens: list[str]
    certainty: list[float]
    truncated: bool
    start: int = 1  # the first token ``lowest`` ranks (e.g. the first after the prompt)

    def lowest(self, k: int) -> list[tuple[int, str, float]]:
        """The ``k`` least certain positions from ``start`` on as (index, token, J), least certain first."""
        scored = [
            (i, t, j)
            for i, (t, j) in enumerate(zip(self.tokens, self.certainty))
            if i >= self.start and not math.isnan(j)
        ]
        return sorted(scored, key=lambda x: (x[2], x[0]))[:k]


def token_certainty(
    model,
    tokenizer,
    texts: list[str],
    *,
    kind: str = "shannon",
    temperature: float = 1.0,
    after: str | None = None,
) -> list[TokenCertainty]:
    """J at every token of each text (see the module docstring); texts longer than the model's context
    are cut to it (``truncated``). With ``after`` (e.g. the end of a prompt), ``lowest`` ranks only the
    tokens after its first occurrence in each text (all tokens where it does not occur)."""
    limit = context_length(model)
    id_lists, truncated = [], []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        truncated.append(limit is not None and len(ids) > limit)
        id_lists.append(ids[:limit] if limit else ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    values = sequence_certainty(model, id_lists, pad_id or 0, kind=kind, temperature=temperature)
    results = []
    for text, ids, j, cut in zip(texts, id_lists, values, truncated):
        tokens = [tokenizer.decode([i]) for i in ids]
        start = 1
        if after and after in text:
            head = text[: text.index(after) + len(after)]
            start = max(1, len(tokenizer.encode(head, add_special_tokens=False)))
        results.append(TokenCertainty(tokens, [math.nan] + [float(x) for x in j], cut, start))
    return results


HTML_STYLE = """body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }
pre.scratch { font-family: ui-monospace, monospace; font-size: 15px; line-height: 1.6; background: #fff;
  border: 1px solid #ddd; padding: 0.8em; white-space: pre-wrap; }
pre.scratch span.low { outline: 2px solid #c00; }
.hint { color: #555; }"""


def heat_map_html(results: list[TokenCertainty], title: str, top: int) -> str:
    """A standalone HTML page: each text with every token's background from white (J = 1) to orange
    (J = 0), like the web app's critical page, J on hover, and the ``top`` least certain outlined."""
    parts = [
        "<!doctype html>",
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{HTML_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p class='hint'>Background: white = certain (J = 1), orange = uncertain (J = 0); hover a token for "
        f"its J. The {top} least certain tokens of each text are outlined in red.</p>",
    ]
    for n, result in enumerate(results):
        low = {i for i, _, _ in result.lowest(top)}
        spans = []
        for i, (token, j) in enumerate(zip(result.tokens, result.certainty)):
            attrs = " class='low'" if i in low else ""
            if not math.isnan(j):
                attrs += f" title='J = {j:.3f}' style='background: rgba(255,140,0,{1 - j:.2f})'"
            spans.append(f"<span{attrs}>{html.escape(token)}</span>")
        cut = " (cut to the model's context)" if result.truncated else ""
        parts.append(f"<h2>text {n + 1}{cut}</h2>")
        parts.append(f"<pre class='scratch' id='text{n + 1}'>{''.join(spans)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def read_texts(path: str | Path) -> list[str]:
    text = Path(path).read_text(encoding="utf-8")
    texts = [t for t in text.split(TEXT_SEPARATOR) if t.strip()]
    if not texts:
        raise ValueError(f"{path} holds no text")
    return texts


def report_lines(results: list[TokenCertainty], top: int) -> list[str]:
    lines = []
    for n, result in enumerate(results):
        cut = ", cut to the model's context" if result.truncated else ""
        lines.append(f"text {n + 1} ({len(result.tokens)} tokens{cut}): the {top} least certain")
        for i, token, j in result.lowest(top):
            lines.append(f"  position {i:5d}  J = {j:.4f}  token {token!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fourfold.critical.tokens", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", required=True, help="Hugging Face model directory or critical .pt checkpoint"
    )
    parser.add_argument("--text", required=True, help="UTF-8 text file; texts separated by a '---' line")
    parser.add_argument("--top", type=int, default=10, help="least certain positions to list per text")
    parser.add_argument("--html", help="write an HTML heat map here")
    parser.add_argument("--certainty", default="shannon", choices=CERTAINTY_KINDS)
    parser.add_argument("--temperature", type=float, default=1.0, help="of the next-token distribution")
    parser.add_argument("--after", help="rank only tokens after this text (e.g. the prompt's end: 'Target:')")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be >= 1")
    try:
        model, tokenizer = load_causal_lm(args.model)
        texts = read_texts(args.text)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = token_certainty(
        model, tokenizer, texts, kind=args.certainty, temperature=args.temperature, after=args.after
    )
    print("\n".join(report_lines(results, args.top)))
    if args.html:
        from fourfold.core.files import atomic_write_text

        title = f"certainty J of {Path(args.model).name} ({args.certainty}, T = {args.temperature:g})"
        atomic_write_text(args.html, heat_map_html(results, title, args.top))
        print(f"heat map: {args.html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
