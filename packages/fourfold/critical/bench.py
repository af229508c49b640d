"""Speed (``python -m fourfold.critical.bench``, not a test): rollout tokens/s with the static KV buffer
against the library's growing KV cache and against naive re-encoding of the whole prefix at every token
(same model, same batch), the parts of one RL iteration, and pre-training tokens/s. Medians of several
repeats, one torch thread, random-weight tiny model."""

import argparse

import numpy as np
import torch

from fourfold.core.benchmark import median_seconds
from fourfold.critical.arithmetic import pretrain_pairs, prompt
from fourfold.critical.losses import target_loss
from fourfold.critical.model import build_model, count_parameters
from fourfold.critical.pretrain import AdditionExamples, collate
from fourfold.critical.rollout import sample
from fourfold.critical.tokenizer import CharTokenizer


@torch.no_grad()
def library_cache_tokens(model, tok, prompts, tokens: int) -> int:
    """Greedy generation through the library's own growing KV cache (``DynamicCache``): the baseline the
    static buffer of ``decoding.StaticDecoder`` replaced. Returns the tokens generated."""
    import inspect

    from fourfold.critical.rollout import left_pad, position_ids

    keyword = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    ids, mask = left_pad([tok.encode(p) for p in prompts], tok.pad_id)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask), use_cache=True)
    for _ in range(tokens - 1):
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        past = getattr(out, keyword)
        out = model(input_ids=token, attention_mask=mask, position_ids=position_ids(mask)[:, -1:],
                    use_cache=True, **{keyword: past})  # fmt: skip
    return len(prompts) * tokens


def rl_iteration_profile(model, tok, batch: int, tokens: int, repeats: int) -> None:
    """Seconds per part of one RL iteration (medians): sampling, the reference's and the policy's
    teacher-forced passes, the loss, backward and the optimiser step."""
    from fourfold.critical.kl import token_weights
    from fourfold.critical.losses import LossConfig, leave_one_out_advantages, rl_loss
    from fourfold.critical.rollout import action_log_probs, reference_outputs, teacher_forced

    prompts = [
        prompt(a, b) for a, b in pretrain_pairs(np.random.default_rng(2), batch // 4, 3) for _ in range(4)
    ]
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    parts = {}

    def timed(name, fn):
        parts[name] = median_seconds(fn, repeats)
        return fn()

    rollout = timed(
        "sample", lambda: sample(model, tok, prompts, tokens, generator=torch.Generator().manual_seed(0))
    )
    ref = timed("reference forward", lambda: reference_outputs(model, rollout))
    rewards = torch.arange(len(prompts)) % 2 == 0

    def policy_step():
        logp, entropy = action_log_probs(teacher_forced(model, rollout), rollout.actions)
        weights = token_weights("prioritized", ref.logits, rollout.action_mask, 10.0)
        adv = leave_one_out_advantages(rewards.float(), rollout.action_mask, 4)
        loss, _ = rl_loss(logp, entropy, rollout.action_mask, adv, ref.logp, weights, LossConfig())
        opt.zero_grad()
        loss.backward()
        opt.step()

    timed("policy forward + loss + backward + step", policy_step)
    total = sum(parts.values())
    print(f"one RL iteration, {len(prompts)} episodes x {rollout.action_mask.shape[1]} tokens: {total:.2f} s")
    for name, seconds in parts.items():
        print(f"  {name:<42} {seconds:6.2f} s  ({100 * seconds / total:4.1f}%)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=150, help="generated tokens per episode")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tok = CharTokenizer()
    torch.manual_seed(0)
    model = build_model(args.size, tok.vocab_size).eval()
    pairs = pretrain_pairs(np.random.default_rng(0), args.batch, 4)
    prompts = [prompt(a, b) for a, b in pairs]
    print(f"model {args.size}: {count_parameters(model) / 1e6:.2f}M parameters, 1 thread, batch {args.batch}")

    def rollout(use_cache):
        out = sample(model, tok, prompts, args.tokens, temperature=1.0, use_cache=use_cache,
                     generator=torch.Generator().manual_seed(0))  # fmt: skip
        return int(out.action_mask.sum())

    generated = rollout(True)
    steps = sample(
        model, tok, prompts, args.tokens, generator=torch.Generator().manual_seed(0)
    ).action_mask.shape[1]
    cached = median_seconds(lambda: rollout(True), args.repeats)
    naive = median_seconds(lambda: rollout(False), args.repeats)
    # The library's cache decodes every row for the same number of steps: compare seconds, not tokens/s.
    library = median_seconds(lambda: library_cache_tokens(model, tok, prompts, steps), args.repeats)
    print(f"rollout of {args.batch} episodes, {steps} decoding steps ({generated} tokens inside episodes):")
    print(f"  static KV buffer:   {cached:7.2f} s")
    print(f"  library KV cache:   {library:7.2f} s  (baseline 1)  -> {library / cached:5.2f}x")
    print(f"  naive re-encoding:  {naive:7.2f} s  (baseline 2)  -> {naive / cached:5.2f}x")

    rl_iteration_profile(model, tok, args.batch, args.tokens, args.repeats)

    model.train()
    batch = collate(
        list(AdditionExamples(tok, pretrain_pairs(np.random.default_rng(1), 32, 3, 0.05))), tok.pad_id
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss = target_loss(out.logits, batch["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    train_step()
    seconds = median_seconds(train_step, args.repeats + 2)
    tokens = int(batch["attention_mask"].sum())
    print(f"pre-training, batch 32 x {batch['input_ids'].shape[1]}: {tokens / seconds:9.0f} tokens/s "
          f"({seconds:.2f} s/step)")  # fmt: skip


if __name__ == "__main__":
    main()
