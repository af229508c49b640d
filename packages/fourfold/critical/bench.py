"""Speed (``python -m fourfold.critical.bench``, not a test): rollout tokens/s with the KV cache against
naive re-encoding of the whole prefix at every token (same model, same batch, same generator), and
pre-training tokens/s. Medians of several repeats, one torch thread, random-weight tiny model."""

import argparse

import numpy as np
import torch

from fourfold.core.benchmark import median_seconds
from fourfold.critical.arithmetic import pretrain_pairs, prompt
from fourfold.critical.model import build_model, count_parameters
from fourfold.critical.pretrain import AdditionExamples, collate, target_loss
from fourfold.critical.rollout import sample
from fourfold.critical.tokenizer import CharTokenizer


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
    cached = median_seconds(lambda: rollout(True), args.repeats)
    naive = median_seconds(lambda: rollout(False), args.repeats)
    print(f"rollout, KV cache:          {generated / cached:9.0f} tokens/s")
    print(f"rollout, naive re-encoding: {generated / naive:9.0f} tokens/s  (baseline)")
    print(f"KV cache speed-up vs naive: {naive / cached:9.2f}x")

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
