"""Measurements on a model: greedy exact-match accuracy, the certainty gap at critical tokens (Table 1
analogue), the policy's probability of the correct critical character, and weight distributions.

Critical tokens are measured on the correct scratchpad (teacher forcing), so the list prefix before each
critical position is correct by construction (the authors' condition for logging them).
"""

import numpy as np
import torch

from fourfold.critical.arithmetic import (
    critical_positions,
    is_correct,
    max_continuation_length,
    prompt,
    scratchpad,
)
from fourfold.critical.kl import certainty_from_logits
from fourfold.critical.model import context_length
from fourfold.critical.rollout import Rollout, left_pad, position_ids, sample, teacher_forced
from fourfold.critical.tokenizer import CharTokenizer


def _batches(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def generation_limit(model, tokenizer: CharTokenizer, pairs, digits: int) -> int:
    """The episode length limit for ``digits``, capped so prompt + episode fit in the model's context."""
    longest_prompt = max(len(prompt(a, b)) for a, b in pairs)
    return min(max_continuation_length(digits), context_length(model) - longest_prompt)


@torch.no_grad()
def greedy_accuracy(model, tokenizer: CharTokenizer, pairs, batch_size: int = 128) -> np.ndarray:
    """Per-pair exact match (bool array) of greedy generations."""
    digits = max(len(str(x)) for pair in pairs for x in pair)
    limit = generation_limit(model, tokenizer, pairs, digits)
    correct = []
    for chunk in _batches(list(pairs), batch_size):
        out = sample(model, tokenizer, [prompt(a, b) for a, b in chunk], limit, greedy=True)
        correct.extend(is_correct(text, a, b) for text, (a, b) in zip(out.texts, chunk))
    return np.array(correct, dtype=bool)


def target_rollout(tokenizer: CharTokenizer, pairs) -> Rollout:
    """The correct episodes of ``pairs`` laid out like a sampled ``Rollout`` (prompts left-padded)."""
    ids, mask = left_pad([tokenizer.encode(prompt(a, b)) for a, b in pairs], tokenizer.pad_id)
    targets = [scratchpad(a, b) for a, b in pairs]
    length = max(len(t) for t in targets)
    cont = torch.full((len(pairs), length), tokenizer.pad_id, dtype=torch.long)
    action_mask = torch.zeros((len(pairs), length), dtype=torch.bool)
    for i, t in enumerate(targets):
        cont[i, : len(t)] = torch.tensor(tokenizer.encode(t))
        action_mask[i, : len(t)] = True
    full_mask = torch.cat([mask, torch.ones_like(cont)], dim=1)
    return Rollout(
        tokens=torch.cat([ids, cont], dim=1),
        attention_mask=full_mask,
        position_ids=position_ids(full_mask),
        action_mask=action_mask,
        prompt_len=ids.shape[1],
        texts=targets,
    )


# The decision characters of the authors' locator: the first line's commas before each long operand's
# (N+1)-th digit, where a model that treats the number as N-digit closes the list instead.
DECISION_POSITIONS = ("step1/operand1/comma", "step1/operand2/comma")


@torch.no_grad()
def certainty_gap(
    model,
    tokenizer,
    pairs,
    n_digits: int,
    kind: str = "shannon",
    temperature: float = 1.0,
    batch_size=64,
    failures: dict | None = None,
):
    """Table 1 analogue. For each example, dJ at a position = J there minus the mean J of the example's
    other target positions. Returns per-example arrays: mean dJ at critical positions, mean dJ at the
    others, the minimum J at critical positions, all J values (for histograms), and ``by_position``:
    (label, J, dJ) per critical position, labelled ``step<s>/operand<o>/<comma|digit>``, and J and dJ at
    the ``DECISION_POSITIONS`` alone (``decision_j``, ``decision_delta``). With
    ``failures`` ({pair index: (offset, char)}, from ``first_error_positions``) also ``delta_failure``: dJ
    at each failed example's first-error position."""
    crit, other, crit_min, all_j, by_position, at_failure = [], [], [], [], [], []
    failures = failures or {}
    for start, chunk in zip(range(0, len(pairs), batch_size), _batches(list(pairs), batch_size)):
        episodes = target_rollout(tokenizer, chunk)
        j = certainty_from_logits(teacher_forced(model, episodes), kind, temperature)
        for i, (a, b) in enumerate(chunk):
            n = int(episodes.action_mask[i].sum())
            ji = j[i, :n].double()
            total = ji.sum()
            delta = ji - (total - ji) / (n - 1)  # J at p minus the mean J of the other positions
            if start + i in failures:
                at_failure.append(float(delta[failures[start + i][0]]))
            found = critical_positions(a, b, n_digits)
            offsets = [p.offset for p in found]
            if not offsets:
                continue
            is_crit = torch.zeros(n, dtype=torch.bool)
            is_crit[offsets] = True
            crit.append(float(delta[is_crit].mean()))
            other.append(float(delta[~is_crit].mean()))
            crit_min.append(float(ji[is_crit].min()))
            all_j.append(ji.numpy())
            for p in found:
                char_kind = "comma" if p.char == "," else "digit"  # not `kind`: that is J's form
                label = f"step{p.step}/operand{p.operand}/{char_kind}"
                by_position.append((label, float(ji[p.offset]), float(delta[p.offset])))
    decision = [(j, d) for label, j, d in by_position if label in DECISION_POSITIONS]
    return {
        "decision_j": np.array([j for j, _ in decision]),
        "decision_delta": np.array([d for _, d in decision]),
        "delta_critical": np.array(crit),
        "delta_other": np.array(other),
        "critical_min_j": np.array(crit_min),
        "j_values": np.concatenate(all_j) if all_j else np.array([]),
        "by_position": by_position,
        "delta_failure": np.array(at_failure),
    }


@torch.no_grad()
def critical_token_probability(
    model, tokenizer, pairs, n_digits: int, temperature: float = 1.0, batch_size=64
):
    """Mean probability (at ``temperature``) of the correct character at the critical positions, with the
    correct scratchpad as prefix; NaN when no pair has an operand longer than N."""
    probs = []
    for chunk in _batches(list(pairs), batch_size):
        episodes = target_rollout(tokenizer, chunk)
        p = torch.softmax(teacher_forced(model, episodes).float() / temperature, dim=-1)
        for i, (a, b) in enumerate(chunk):
            for pos in critical_positions(a, b, n_digits):
                probs.append(float(p[i, pos.offset, tokenizer.stoi[pos.char]]))
    return float(np.mean(probs)) if probs else float("nan")


@torch.no_grad()
def certainty_at_critical_and_ordinary(
    model, tokenizer, pairs, n_digits: int, kind: str = "shannon", temperature: float = 1.0, batch_size=64
):
    """The reference's certainty J on the correct scratchpads of ``pairs``, split into the located critical
    positions and every other target position; returns (J critical, J ordinary) as 1-D numpy arrays."""
    critical, ordinary = [], []
    for chunk in _batches(list(pairs), batch_size):
        episodes = target_rollout(tokenizer, chunk)
        j = certainty_from_logits(teacher_forced(model, episodes), kind, temperature)
        for i, (a, b) in enumerate(chunk):
            n = int(episodes.action_mask[i].sum())
            is_crit = torch.zeros(n, dtype=torch.bool)
            is_crit[[p.offset for p in critical_positions(a, b, n_digits)]] = True
            critical.append(j[i, :n][is_crit].double().numpy())
            ordinary.append(j[i, :n][~is_crit].double().numpy())
    return np.concatenate(critical), np.concatenate(ordinary)


@torch.no_grad()
def first_error_positions(model, tokenizer, pairs, batch_size: int = 128) -> dict[int, tuple[int, str]]:
    """Where the model's greedy generation first departs from the correct scratchpad, for every pair it
    gets wrong: {pair index: (offset in the continuation, the correct character)}. With the correct
    prefix before it, this is a position where the model's top choice is wrong: the data-located
    analogue of a critical token (decisive, since the answer ends wrong)."""
    digits = max(len(str(x)) for pair in pairs for x in pair)
    limit = generation_limit(model, tokenizer, pairs, digits)
    found = {}
    for start in range(0, len(pairs), batch_size):
        chunk = list(pairs[start : start + batch_size])
        out = sample(model, tokenizer, [prompt(a, b) for a, b in chunk], limit, greedy=True)
        for i, ((a, b), text) in enumerate(zip(chunk, out.texts)):
            target = scratchpad(a, b)
            if text == target:
                continue
            k = next((j for j in range(min(len(text), len(target))) if text[j] != target[j]), None)
            k = min(len(text), len(target)) if k is None else k
            if k < len(target):
                found[start + i] = (k, target[k])
    return found


@torch.no_grad()
def probability_at(model, tokenizer, pairs, positions: dict, temperature: float = 1.0, batch_size=64):
    """Mean probability (at ``temperature``) of the correct character at ``positions`` ({pair index:
    (offset, char)}), with the correct scratchpad as prefix; NaN when there are none."""
    probs = []
    for start in range(0, len(pairs), batch_size):
        chunk = list(pairs[start : start + batch_size])
        wanted = [(i, *positions[start + i]) for i in range(len(chunk)) if start + i in positions]
        if not wanted:
            continue
        p = torch.softmax(teacher_forced(model, target_rollout(tokenizer, chunk)).float() / temperature, -1)
        probs.extend(float(p[i, offset, tokenizer.stoi[char]]) for i, offset, char in wanted)
    return float(np.mean(probs)) if probs else float("nan")
