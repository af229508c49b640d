"""Batched episodes: left-padded prompts, sampling with a KV cache, episode ends, one teacher-forced pass.

Prompts of different lengths are left-padded and every forward pass gets the attention mask and position
ids counted from each row's first real token, so a row's numbers do not depend on its batch mates (learned
absolute and rotary positions read the ids; NoPE and digit-index models ignore them). Models are used
through the causal-LM interface, so every position scheme of ``model.POSITIONS`` works here.

An episode ends at whichever comes first: the ``\\n`` that closes the line after ``</scratch>\\n``, the
EOS/pad token (kept as the last action), or the length limit. Tokens after the end are pad and are masked
out of every loss term (``action_mask``).
"""

from dataclasses import dataclass

import torch

from fourfold.critical.arithmetic import SCRATCH_CLOSE
from fourfold.critical.decoding import decoder as incremental_decoder
from fourfold.critical.model import context_length
from fourfold.critical.tokenizer import CharTokenizer


@dataclass
class Rollout:
    """A batch of finished episodes.

    tokens, attention_mask, position_ids: [B, P + T] (P = padded prompt length, T = generated steps);
    action_mask: [B, T] bool, True for the actions inside each episode; texts: the episodes' continuations;
    logp: [B, T], the sampler's log-probability of each action (at the sampling temperature; at T = 1 for
    greedy decoding), for checks against ``teacher_forced`` (0 after an episode's end).
    """

    tokens: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    action_mask: torch.Tensor
    prompt_len: int
    texts: list[str]
    logp: torch.Tensor | None = None

    @property
    def actions(self) -> torch.Tensor:
        return self.tokens[:, self.prompt_len :]


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists to one length; returns (ids [B, L], attention mask [B, L])."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, length - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[i, length - len(seq) :] = 1
    return ids, mask


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first attended token (0 on the padding before it)."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


class _EpisodeEnds:
    """Tracks, per row, whether the episode has ended (see the module docstring)."""

    def __init__(self, batch: int, tokenizer: CharTokenizer):
        self.tokenizer = tokenizer
        self.texts = [""] * batch
        self.closed = [False] * batch
        self.done = torch.zeros(batch, dtype=torch.bool)
        self.marker = SCRATCH_CLOSE + "\n"

    def update(self, tokens: list[int]) -> None:
        for i, tok in enumerate(tokens):
            if self.done[i]:
                continue
            if tok == self.tokenizer.eos_id:
                self.done[i] = True
                continue
            char = self.tokenizer.itos[tok]
            self.texts[i] += char
            if self.closed[i] and char == "\n":
                self.done[i] = True
            elif self.texts[i].endswith(self.marker):
                self.closed[i] = True


def model_device(model) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _next_token(logits: torch.Tensor, temperature: float, greedy: bool, generator) -> torch.Tensor:
    """The next token per row, on the CPU (``logits`` [B, V] on the CPU; the generator is a CPU one)."""
    if greedy:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _full_forward(model, ids, mask, device):
    """The library's forward pass over whole sequences (the naive path: no cache)."""
    pos = position_ids(mask)
    return model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device)).logits


@torch.no_grad()
def sample(
    model,
    tokenizer: CharTokenizer,
    prompts: list[str],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Rollout:
    """Generate one episode per prompt. ``use_cache=False`` re-encodes the whole prefix at every token (the
    slow reference the KV-cache path must agree with); the cached path uses ``decoding.decoder``.
    The model may sit on any device; sampling and the returned tensors are on the CPU (a GPU model gets
    its inputs moved, one small transfer per token)."""
    if temperature <= 0 and not greedy:
        raise ValueError(f"sampling temperature must be > 0, got {temperature}")
    n_positions = context_length(model)
    ids, mask = left_pad([tokenizer.encode(p) for p in prompts], tokenizer.pad_id)
    if ids.shape[1] + max_new_tokens > n_positions:
        raise ValueError(
            f"prompt ({ids.shape[1]}) + episode limit ({max_new_tokens}) exceeds the model's context of "
            f"{n_positions} positions: use fewer digits or a model with more positions"
        )
    was_training = model.training
    model.eval()
    device = model_device(model)
    ends = _EpisodeEnds(len(prompts), tokenizer)
    prompt_len = ids.shape[1]
    action_mask, action_logp = [], []
    if use_cache:
        decoder = incremental_decoder(model, len(prompts), prompt_len + max_new_tokens)
        logits = decoder(ids, position_ids(mask), mask.bool())[:, -1].float().cpu()
    else:
        logits = _full_forward(model, ids, mask, device)[:, -1].float().cpu()
    for _ in range(max_new_tokens):
        token = _next_token(logits, temperature, greedy, generator)
        active = ~ends.done
        token = torch.where(active, token, torch.full_like(token, tokenizer.pad_id))
        logp_all = torch.log_softmax(logits if greedy else logits / temperature, dim=-1)
        action_logp.append(torch.where(active, logp_all.gather(-1, token[:, None]).squeeze(-1), 0.0))
        action_mask.append(active)
        ends.update(token.tolist())
        ids = torch.cat([ids, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(token[:, None])], dim=1)
        if bool(ends.done.all()):
            break
        pos = position_ids(mask)
        if use_cache:
            logits = decoder(token[:, None], pos[:, -1:], torch.ones_like(token[:, None], dtype=torch.bool))
        else:
            logits = _full_forward(model, ids, mask, device)
        logits = logits[:, -1].float().cpu()
    model.train(was_training)
    return Rollout(
        tokens=ids,
        attention_mask=mask,
        position_ids=position_ids(mask),
        action_mask=torch.stack(action_mask, dim=1),
        prompt_len=prompt_len,
        texts=ends.texts,
        logp=torch.stack(action_logp, dim=1),
    )


def teacher_forced(model, rollout: Rollout, *, output_hidden: bool = False):
    """One forward pass over the whole episodes; returns the logits that chose each action, [B, T, V]
    (and the last hidden states of the same states, [B, T, d], with ``output_hidden``), on the CPU
    whatever the model's device (the move keeps the gradient)."""
    device = model_device(model)
    # The trunk, then the head (a causal LM's two parts): the final hidden states feed the critic.
    hidden = model.base_model(
        input_ids=rollout.tokens.to(device),
        attention_mask=rollout.attention_mask.to(device),
        position_ids=rollout.position_ids.to(device),
    ).last_hidden_state
    p = rollout.prompt_len
    hidden = hidden[:, p - 1 : -1]
    logits = model.get_output_embeddings()(hidden).cpu()
    return (logits, hidden.cpu()) if output_hidden else logits


def action_log_probs(logits: torch.Tensor, actions: torch.Tensor, temperature: float = 1.0):
    """log softmax(logits / T) of the taken actions and the entropy of each step's distribution, [B, T]."""
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)
    logp = logp_all.gather(-1, actions[..., None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


@dataclass
class ReferenceOutputs:
    """The frozen reference model on a rollout: log-prob of each action at the sampling temperature, and
    its raw logits (for the certainty J and the weights)."""

    logp: torch.Tensor
    logits: torch.Tensor


@torch.no_grad()
def reference_outputs(ref_model, rollout: Rollout, temperature: float = 1.0) -> ReferenceOutputs:
    logits = teacher_forced(ref_model, rollout)
    logp, _ = action_log_probs(logits, rollout.actions, temperature)
    return ReferenceOutputs(logp=logp, logits=logits.float())
