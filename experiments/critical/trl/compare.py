r"""The arithmetic comparison through TRL (issue 20): standard KL vs prioritized KL (beta by the rule) vs no
KL, fine-tuning the mix reference with ``fourfold.critical.trl.PrioritizedKLGRPOTrainer`` on the mix
preset's prompts, seeds and evaluation sets, next to the Lightning loop's committed results.

    python experiments/critical/trl/compare.py --workers 2   # [--reference other.pt] [--seeds 0 1 ...]

Settings come from ``conf/experiment/critical/mix.yaml`` (composed with Hydra, not copied): 40
iterations of 16 prompts x 4 samples, Adam 3e-5 with a 5-iteration linear warm-up, T = 1, binary reward,
Shannon certainty, alpha = 5. What TRL fixes differently (see ``trl_settings``): its KL estimator is k3
(ours k2) and its advantage is reward minus the group mean (GRPO with ``scale_rewards="none"``), 3/4 of
our leave-one-out advantage with 4 samples; beta = alpha * 3/4 puts the KL term on the same scale
relative to the policy gradient (Adam's step does not depend on the loss's overall scale).

The reference is the mix reference shipped with the package (``fourfold.critical.reference``) unless
``--reference`` names another .pt. Each run lives in
``runs/critical-trl/<reference>_<sha256 prefix>/<condition>_seed<s>/`` (``curves.csv``; ``done``: wall and
CPU seconds, one thread); a rerun reads finished runs and runs the missing ones. Outputs, beside this
file: ``results/trl_curves.csv``, ``results/trl_runs.csv``, ``results/reference.json`` (beta by the rule
both ways, the position trap) and ``tables/comparison.md``.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CONDITIONS = ("standard", "prioritized_rule", "no_kl")
LIGHTNING_CURVES = REPO / "experiments/critical/mix/results/rl_curves.csv"


def mix_settings(overrides: list[str] | None = None) -> dict:
    """The mix preset's RL settings, composed from ``conf/`` exactly as ``python -m fourfold`` would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from fourfold.core.cli import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=critical/mix", *(overrides or [])])
    GlobalHydra.instance().clear()
    c = cfg.critical
    degree = c.degrees[int(c.main_degree)]
    r = c.rl
    return {
        "n_digits": int(degree.n_digits), "plus_k": int(r.plus_k), "iterations": int(r.iterations),
        "episodes": int(r.episodes), "group_size": int(r.group_size), "lr": float(r.lr),
        "warmup_steps": int(r.warmup_steps), "temperature": float(r.temperature), "reward": str(r.reward),
        "kl_coef": float(r.kl_coef), "certainty_kind": str(r.certainty_kind),
        "certainty_temperature": float(r.certainty_temperature), "eval_every": int(r.eval_every),
        "eval_examples": int(r.eval_examples), "comfort_examples": int(r.comfort_examples),
        "eval_seed": int(r.eval_seed), "rule_examples": int(r.beta_rule.examples),
        "rule_keep": float(r.beta_rule.keep), "rule_quantile": float(r.beta_rule.quantile),
        "seeds": [int(s) for s in r.seeds], "entropy_coef": float(r.entropy_coef),
    }  # fmt: skip


def training_prompts(seed: int, s: dict) -> list[tuple[int, int]]:
    """The Lightning loop's prompts, in its order: iteration i draws from default_rng([seed, i]) after the
    sampling generator's seed (``lit.RLLit.collect``)."""
    from fourfold.critical.arithmetic import rl_pairs

    pairs = []
    for step in range(s["iterations"]):
        rng = np.random.default_rng([seed, step])
        rng.integers(2**31)  # the loop's sampling seed: drawn to keep the prompts in step
        pairs += rl_pairs(rng, s["episodes"] // s["group_size"], s["n_digits"], s["plus_k"])
    return pairs


def evaluation_sets(s: dict):
    from fourfold.critical.arithmetic import comfort_pairs, rl_pairs

    rng = np.random.default_rng(s["eval_seed"])  # as run.rl_settings draws them
    return rl_pairs(rng, s["eval_examples"], s["n_digits"], s["plus_k"]), comfort_pairs(
        rng, s["comfort_examples"], s["n_digits"]
    )


def rule_betas(reference, tokenizer, char_model, s: dict) -> dict:
    """beta by the rule two ways: ``trl.beta_by_rule`` on every token of the correct scratchpads, and the
    Lightning loop's ``kl.beta_rule`` on their ordinary (not located-critical) tokens."""
    from fourfold.critical.arithmetic import prompt, rl_pairs, scratchpad
    from fourfold.critical.evaluation import certainty_at_critical_and_ordinary
    from fourfold.critical.kl import beta_rule
    from fourfold.critical.tokenizer import CharTokenizer
    from fourfold.critical.trl import beta_by_rule

    pairs = rl_pairs(
        np.random.default_rng([s["eval_seed"], 17]), s["rule_examples"], s["n_digits"], s["plus_k"]
    )
    trl_beta = beta_by_rule(
        reference, tokenizer, [prompt(a, b) for a, b in pairs], [scratchpad(a, b) for a, b in pairs],
        keep=s["rule_keep"], quantile=s["rule_quantile"], temperature=s["certainty_temperature"],
    )  # fmt: skip
    _, j_ord = certainty_at_critical_and_ordinary(
        char_model, CharTokenizer(), pairs, s["n_digits"], s["certainty_kind"], s["certainty_temperature"]
    )
    lightning_beta = beta_rule(j_ord, s["rule_keep"], s["rule_quantile"])
    return {"beta_by_rule_trl": trl_beta, "beta_rule_lightning": lightning_beta, "examples": len(pairs)}


@torch.no_grad()
def position_trap(reference, tokenizer, s: dict, seed: int = 0) -> dict:
    """What TRL's scoring without ``position_ids`` does to the reference: log-probs of the correct
    scratchpads of 16 left-padded RL prompts, with positions counted from the mask (as ``generate`` and
    the subclass use) and without (TRL's own ``_get_per_token_logps_and_entropies``)."""
    from fourfold.critical.arithmetic import prompt, rl_pairs, scratchpad
    from fourfold.critical.tokens import left_padded

    pairs = rl_pairs(np.random.default_rng(seed), 16, s["n_digits"], s["plus_k"])
    seqs = [tokenizer.encode(prompt(a, b) + scratchpad(a, b)) for a, b in pairs]
    ids, mask, pos = left_padded(seqs, tokenizer.pad_token_id)
    scores = {}
    for name, extra in (("mask_positions", {"position_ids": pos}), ("trl_positions", {})):
        logits = reference(input_ids=ids, attention_mask=mask, **extra).logits
        scores[name] = torch.log_softmax(logits.float(), -1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    rows = []
    for i, ((a, b), seq) in enumerate(zip(pairs, seqs)):
        pads = ids.shape[1] - len(seq)
        target = slice(ids.shape[1] - 1 - len(scratchpad(a, b)), None)  # the scratchpad's tokens
        right, wrong = scores["mask_positions"][i, target], scores["trl_positions"][i, target]
        rows.append((pads, float(right.sum()), float(wrong.sum()), float((right - wrong).abs().max())))
    padded = [r for r in rows if r[0] > 0]
    one_pad = min(padded, key=lambda r: r[0])
    return {
        "prompts": len(rows), "padded_prompts": len(padded),
        "median_sequence_logp_mask_positions": float(np.median([r[1] for r in padded])),
        "median_sequence_logp_trl_positions": float(np.median([r[2] for r in padded])),
        "max_token_error_nats": max(r[3] for r in padded),
        "fewest_pads": one_pad[0], "its_sequence_logp_mask_positions": one_pad[1],
        "its_sequence_logp_trl_positions": one_pad[2],
    }  # fmt: skip


def trl_settings(s: dict, condition: str, rule_beta: float) -> tuple[float, float]:
    """(GRPOConfig.beta, kl_priority_exponent) of a condition."""
    beta = s["kl_coef"] * (s["group_size"] - 1) / s["group_size"]  # see the module docstring
    return {"standard": (beta, 0.0), "prioritized_rule": (beta, rule_beta), "no_kl": (0.0, 0.0)}[condition]


class _Evaluate:
    """Greedy accuracy (RL distribution and in distribution) and p(correct) where the reference fails, every
    ``eval_every`` iterations, with the Lightning loop's own evaluation functions."""

    def __init__(self, s, eval_pairs, comfort, failures, rows):
        self.s, self.eval_pairs, self.comfort, self.failures, self.rows = (
            s,
            eval_pairs,
            comfort,
            failures,
            rows,
        )

    def __call__(self, model, step: int) -> None:
        from fourfold.critical.evaluation import greedy_accuracy, probability_at
        from fourfold.critical.tokenizer import CharTokenizer

        tok = CharTokenizer()
        was_training = model.training
        model.eval()
        every = list(self.eval_pairs) + list(self.comfort)
        correct = greedy_accuracy(model, tok, every, batch_size=len(every))
        n = len(self.eval_pairs)
        prob = probability_at(model, tok, self.eval_pairs, self.failures, self.s["temperature"])
        self.rows.append({"step": step, "kind": "eval", "acc_rl": float(correct[:n].mean()),
                          "acc_comfort": float(correct[n:].mean()), "failure_prob": prob})  # fmt: skip
        model.train(was_training)


def run_one(ref_dir: Path, condition: str, seed: int, s: dict, rule_beta: float, sets, work: Path) -> Path:
    """One TRL run; writes ``work/curves.csv`` and ``work/done`` (seconds) and returns ``work``."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig

    from fourfold.core.files import atomic_path, atomic_write_text
    from fourfold.critical.arithmetic import is_correct, max_continuation_length, prompt
    from fourfold.critical.hf import SCRATCHPAD_STOP, load_causal_lm
    from fourfold.critical.trl import PrioritizedKLGRPOTrainer

    if (work / "done").is_file():
        return work
    started, cpu_started = time.time(), time.process_time()
    torch.set_num_threads(1)
    eval_pairs, comfort, failures = sets
    pairs = training_prompts(seed, s)
    data = Dataset.from_dict({"prompt": [prompt(a, b) for a, b in pairs], "a": [a for a, _ in pairs],
                              "b": [b for _, b in pairs]})  # fmt: skip

    def reward(completions, a, b, **_):  # binary: 1 if the result is correct, else 0
        return [float(is_correct(text, x, y)) for text, x, y in zip(completions, a, b)]

    beta, exponent = trl_settings(s, condition, rule_beta)
    model, tokenizer = load_causal_lm(ref_dir)
    model.train()
    args = GRPOConfig(
        output_dir=str(work / "trainer"), max_steps=s["iterations"],
        per_device_train_batch_size=s["episodes"],
        num_generations=s["group_size"], steps_per_generation=1, gradient_accumulation_steps=1,
        max_completion_length=max_continuation_length(s["n_digits"] + s["plus_k"]),
        temperature=s["temperature"], top_k=0, top_p=1.0, beta=beta, loss_type="bnpo", scale_rewards="none",
        learning_rate=s["lr"], max_grad_norm=0.0, shuffle_dataset=False, disable_dropout=True,
        bf16=False, gradient_checkpointing=False, use_cpu=True, report_to="none", save_strategy="no",
        logging_steps=1, disable_tqdm=True, seed=seed,
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=s["lr"])  # the loop's optimizer and warm-up
    warmup = max(1, s["warmup_steps"])
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / warmup))
    rows: list[dict] = []
    evaluate = _Evaluate(s, eval_pairs, comfort, failures, rows)

    class Every(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            evaluate(model, 0)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % s["eval_every"] == 0:
                evaluate(model, state.global_step)

        def on_train_end(self, args, state, control, model=None, **kw):
            if rows[-1]["step"] != state.global_step:  # the loop also evaluates at the end
                evaluate(model, state.global_step)

    trainer = PrioritizedKLGRPOTrainer(
        model=model, reward_funcs=reward, args=args, train_dataset=data, processing_class=tokenizer,
        optimizers=(optimizer, schedule), callbacks=[Every()], kl_priority_exponent=exponent,
        completion_stop=SCRATCHPAD_STOP,
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # the per-step dicts; the curves keep them
    trainer.train()
    for h in trainer.state.log_history:
        if "reward" in h:
            rows.append({"step": int(h["step"]) - 1, "kind": "train", "success": h["reward"],
                         "kl_k3": h.get("kl"), "w_mean": h.get("kl_weight/mean", 1.0 if beta else 0.0),
                         "w_p10": h.get("kl_weight/p10"), "w_min": h.get("kl_weight/min"),
                         "episode_len": h.get("completions/mean_length"), "lr": h.get("learning_rate"),
                         "step_time": h.get("step_time")})  # fmt: skip
    frame = pd.DataFrame(rows).assign(condition=condition, seed=seed, beta=beta, exponent=exponent)
    with atomic_path(work / "curves.csv") as tmp:
        frame.to_csv(tmp, index=False)
    atomic_write_text(work / "done", f"{time.time() - started:.1f} {time.process_time() - cpu_started:.1f}\n")
    return work


# --- the table ------------------------------------------------------------------------------------------


def _summary(curves: pd.DataFrame, implementation: str, last_step: int, window: int) -> list[dict]:
    from fourfold.critical.report import t_interval

    rows = []
    evals = curves[(curves.kind == "eval") & (curves.step == last_step)].set_index(["condition", "seed"])
    train = curves[curves.kind == "train"]
    first = train[train.step < window].groupby(["condition", "seed"]).success.mean()
    last = train[train.step >= last_step - window].groupby(["condition", "seed"]).success.mean()
    start = curves[(curves.kind == "eval") & (curves.step == 0)].groupby("condition").acc_rl.mean()
    for condition in CONDITIONS:
        if condition not in evals.index.get_level_values(0):
            continue
        e = evals.loc[condition]
        seeds = sorted(e.index)

        def paired(series, cond=condition, seeds=seeds):
            if cond == "standard" or "standard" not in series.index.get_level_values(0):
                return ""
            d = [
                series.loc[(cond, k)] - series.loc[("standard", k)]
                for k in seeds
                if ("standard", k) in series.index
            ]
            m, lo, hi, _ = t_interval(d)
            return f"{m:+.3f} ({lo:+.3f}, {hi:+.3f})"

        acc = evals.acc_rl
        se = e.acc_rl.std(ddof=1) / np.sqrt(len(e))
        gain = [last.loc[(condition, k)] - first.loc[(condition, k)] for k in seeds]
        m, lo, hi, _ = t_interval(gain)
        w = train[train.condition == condition].w_mean.mean() if "w_mean" in train else float("nan")
        rows.append({
            "implementation": implementation, "condition": condition, "seeds": len(seeds),
            "greedy N+1 acc., start -> end": f"{start[condition]:.2f} -> {e.acc_rl.mean():.3f} ± {se:.3f}",
            "vs standard, greedy acc. at end": paired(acc),
            "sampled success, last - first 10%": f"{m:+.3f} ({lo:+.3f}, {hi:+.3f})",
            "vs standard, sampled success last 10%": paired(last),
            "p(correct) where the reference fails, end": f"{e.failure_prob.mean():.3f}",
            "vs standard, p(correct) at end": paired(evals.failure_prob),
            "in-distribution acc., end": f"{e.acc_comfort.mean():.2f}",
            "mean w": f"{w:.3f}" if np.isfinite(w) else "-",
        })  # fmt: skip
    return rows


def comparison_table(trl_curves: pd.DataFrame, s: dict) -> str:
    window = max(1, s["iterations"] // 10)
    rows = _summary(trl_curves, "TRL GRPOTrainer", s["iterations"], window)
    if LIGHTNING_CURVES.is_file():
        lightning = pd.read_csv(LIGHTNING_CURVES)
        seeds = sorted(trl_curves.seed.unique())
        lightning = lightning[lightning.condition.isin(CONDITIONS) & lightning.seed.isin(seeds)]
        rows = _summary(lightning, "Lightning loop", s["iterations"], window) + rows
    frame = pd.DataFrame(rows)
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return header + "".join(
        "| " + " | ".join(str(v) for v in row) + " |\n" for row in frame.itertuples(index=False)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference", help="the reference's .pt checkpoint (default: the shipped mix reference)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="default: the mix preset's seeds")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--work", default=str(REPO / "runs/critical-trl"), help="run folders (resumable)")
    parser.add_argument("--out", default=str(HERE), help="where results/ and tables/ go")
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides of the mix preset")
    parser.add_argument("--only-reference", action="store_true", help="write results/reference.json, no RL")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel processes (one thread each)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from fourfold.core.files import atomic_path, atomic_write_text
    from fourfold.critical.arithmetic import max_continuation_length  # noqa: F401 (import check)
    from fourfold.critical.evaluation import first_error_positions
    from fourfold.critical.hf import export_reference, load_causal_lm
    from fourfold.critical.model import load_checkpoint

    s = mix_settings(args.override)
    if s["entropy_coef"] or s["reward"] != "binary":
        raise ValueError("the TRL comparison covers the mix recipe: binary reward and no entropy bonus")
    seeds = args.seeds if args.seeds is not None else s["seeds"]
    from fourfold.critical.reference import file_sha256, shipped_reference_path

    reference_pt = Path(args.reference) if args.reference else shipped_reference_path("mix")
    char_model, char_tok, _ = load_checkpoint(reference_pt)
    char_model.eval()
    work = Path(args.work) / f"{reference_pt.stem}_{file_sha256(reference_pt)[:8]}"
    ref_dir = work / "reference-hf"  # the folder name holds the checkpoint's hash: export once
    if not (ref_dir / "config.json").is_file():
        export_reference(reference_pt, ref_dir)
    reference, tokenizer = load_causal_lm(ref_dir)
    betas = rule_betas(reference, tokenizer, char_model, s)
    print(
        f"beta by the rule: TRL {betas['beta_by_rule_trl']:.2f}, Lightning {betas['beta_rule_lightning']:.2f}"
    )
    betas["position_trap"] = position_trap(reference, tokenizer, s)
    print("positions of left-padded prompts:", betas["position_trap"])
    out = Path(args.out)
    atomic_write_text(out / "results/reference.json", json.dumps(betas, indent=2) + "\n")
    if args.only_reference:
        return 0
    eval_pairs, comfort = evaluation_sets(s)
    failures = first_error_positions(char_model, char_tok, eval_pairs)
    jobs = [(condition, seed) for seed in seeds for condition in args.conditions]  # seed-major order
    folders = [work / f"{condition}_seed{seed}" for condition, seed in jobs]
    sets = (eval_pairs, comfort, failures)
    todo = [(job, folder) for job, folder in zip(jobs, folders) if not (folder / "done").is_file()]
    print(f"{len(jobs)} runs, {len(jobs) - len(todo)} finished before, {args.workers} worker(s)", flush=True)
    run = [(ref_dir, c, seed, s, betas["beta_by_rule_trl"], sets, folder) for (c, seed), folder in todo]
    if args.workers > 1:
        from joblib import Parallel, delayed

        Parallel(n_jobs=args.workers, backend="loky")(delayed(run_one)(*job) for job in run)
    else:
        for job in run:
            run_one(*job)
    times, frames = [], []
    for (condition, seed), folder in zip(jobs, folders):
        wall, cpu = (float(x) for x in (folder / "done").read_text().split())
        print(f"{condition} seed {seed}: {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
        times.append({"condition": condition, "seed": seed, "seconds": wall, "cpu_seconds": cpu,
                      "folder": os.path.relpath(folder, REPO)})  # fmt: skip
        frames.append(pd.read_csv(folder / "curves.csv"))
    curves = pd.concat(frames, ignore_index=True)
    for name, frame in (("trl_curves", curves), ("trl_runs", pd.DataFrame(times))):
        with atomic_path(out / "results" / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    atomic_write_text(out / "tables/comparison.md", comparison_table(curves, s))
    print((out / "tables/comparison.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
