"""How much of one RL batch's policy gradient is signal (``python -m fourfold.critical.gradnoise``, not a
test): the no-KL leave-one-out policy gradient of the quick recipe at the pre-trained reference, on
several independent batches (other prompts, other samples); their pairwise cosines and the norm of
their mean against their mean norm. Independent pure-noise gradients have cosines near 0 and a ratio
near 1/sqrt(batches); identical ones have 1 and 1."""

import argparse
import copy

import numpy as np
import torch

from fourfold.critical.lit import RLLit, RLSettings
from fourfold.critical.losses import LossConfig

DEFAULT_MODEL = ".cache/critical/pretrain/N3_mix0.05_both0.2_tiny_2000steps_345650d5/model.pt"


def agreement(grads: torch.Tensor) -> dict[str, float]:
    """Agreement of n gradients ``grads`` [n, d] (n >= 2): mean and sd of the n(n-1) off-diagonal cosines,
    and ||mean of the gradients|| / mean of their norms."""
    grads = grads.double()
    if grads.ndim != 2 or grads.shape[0] < 2:
        raise ValueError(f"need at least 2 gradients as an [n, d] array, got shape {tuple(grads.shape)}")
    unit = grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-300)
    cos = unit @ unit.T
    off = cos[~torch.eye(len(grads), dtype=torch.bool)]
    ratio = grads.mean(0).norm() / grads.norm(dim=1).mean()
    return {"cosine_mean": float(off.mean()), "cosine_sd": float(off.std()), "mean_norm_ratio": float(ratio)}


def batch_gradient(module: RLLit, step: int, names: list[str]) -> torch.Tensor:
    """The policy gradient of the no-KL loss on the batch that ``module`` collects at ``step``, flattened
    over the parameters ``names`` (a 0 vector when every group of samples agrees)."""
    rollout, rewards, _ = module.collect(step)
    loss, _, _ = module.loss(rollout, rewards)
    module.policy.zero_grad()
    loss.backward()
    params = dict(module.policy.named_parameters())
    return torch.cat([params[n].grad.flatten() for n in names])


def main(argv=None) -> None:
    from fourfold.critical.model import load_checkpoint, set_dropout
    from fourfold.critical.tokenizer import CharTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a cached pre-trained model.pt")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--episodes", type=int, nargs="+", default=[64], help="episodes per batch")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--n-digits", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tok = CharTokenizer()
    model, _, _ = load_checkpoint(args.model, tok)
    set_dropout(model, 0.0)
    names = [n for n, _ in model.named_parameters()]
    groups = {"all": names, "LayerNorms": [n for n in names if ".ln_" in n]}
    for episodes in args.episodes:
        no_kl = LossConfig(kl_coef=0.0, entropy_coef=0.0)
        settings = RLSettings(n_digits=args.n_digits, episodes=episodes, group_size=args.group_size,
                              kl_mode="none", loss=no_kl, seed=0)  # fmt: skip
        module = RLLit(model, copy.deepcopy(model), tok, settings)  # the reference only sits there
        grads = torch.stack([batch_gradient(module, 1000 + b, names) for b in range(args.batches)])
        for label, chosen in groups.items():
            index = np.isin(np.repeat(names, [model.get_parameter(n).numel() for n in names]), chosen)
            a = agreement(grads[:, torch.from_numpy(index)])
            print(f"{episodes} episodes, {label}: pairwise cosine {a['cosine_mean']:+.3f} "
                  f"± {a['cosine_sd']:.3f} (sd), |mean| / mean |g| = {a['mean_norm_ratio']:.3f} "
                  f"(pure noise: {1 / np.sqrt(args.batches):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
