"""The task: ``python -m fourfold experiment=critical/<preset>``; the only module that reads the config.

Stages (``critical.stages``), each writing small CSVs under ``<run dir>/results/``:
- ``pretrain``: one cached pre-trained model per degree (``critical.degrees``);
- ``generalisation``: greedy accuracy at N..N+3 digits, identical and varying operands (Tables 4/5);
- ``table1``: the certainty gap at critical tokens per degree, and the prioritized weights' distribution;
- ``rl``: RL on N+k for every condition x seed, matched iteration counts (``rl/<run>/curves.jsonl``);
- ``degrees_rl``: RL on N+2 from every degree.
"""

import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from fourfold.core.runs import current_run_dir
from fourfold.core.seeding import seed_everything
from fourfold.critical.arithmetic import comfort_pairs, eval_pairs, rl_pairs
from fourfold.critical.evaluation import certainty_gap, greedy_accuracy
from fourfold.critical.kl import certainty_from_logits, check_beta
from fourfold.critical.lit import RLSettings
from fourfold.critical.model import SIZES, Critic, set_dropout
from fourfold.critical.pretrain import PretrainSpec, pretrained_model
from fourfold.critical.rl import LossConfig, fine_tune
from fourfold.critical.rollout import reference_outputs, sample
from fourfold.critical.tokenizer import CharTokenizer

log = logging.getLogger("fourfold.critical")
STAGES = ("pretrain", "generalisation", "table1", "rl", "degrees_rl")


def degree_specs(c: DictConfig) -> list[PretrainSpec]:
    p = c.pretrain
    return [
        PretrainSpec(
            n_digits=int(d.n_digits),
            mix_fraction=float(d.mix_fraction),
            steps=int(d.steps),
            batch_size=int(p.batch_size),
            lr=float(p.lr),
            warmup_steps=int(p.warmup_steps),
            weight_decay=float(p.weight_decay),
            size=str(c.model_size),
            seed=int(p.seed),
        ).validate()
        for d in c.degrees
    ]


def rl_settings(c: DictConfig, n_digits: int, plus_k: int, condition, kl_coef: float, seed: int, curves):
    r = c.rl
    rng = np.random.default_rng(int(r.eval_seed))
    return RLSettings(
        n_digits=n_digits,
        plus_k=plus_k,
        episodes=int(r.episodes),
        temperature=float(r.temperature),
        reward_kind=str(r.reward),
        kl_mode=str(condition.mode),
        beta=check_beta(float(condition.beta)),
        certainty_kind=str(r.certainty_kind),
        certainty_temperature=float(r.certainty_temperature),
        algorithm=str(r.algorithm),
        lr=float(r.lr),
        gamma=float(r.gamma),
        gae_lambda=float(r.gae_lambda),
        loss=LossConfig(
            kl_coef=0.0 if condition.mode == "none" else kl_coef,
            entropy_coef=float(r.entropy_coef),
            value_coef=float(r.value_coef),
            estimator=str(r.estimator),
            aggregation=str(r.aggregation),
        ),
        eval_every=int(r.eval_every),
        eval_pairs=rl_pairs(rng, int(r.eval_examples), n_digits, plus_k),
        comfort_pairs=comfort_pairs(rng, int(r.comfort_examples), n_digits),
        seed=seed,
        curves_path=str(curves),
    )


def validate(cfg: DictConfig) -> list[PretrainSpec]:
    """Every check that can fail, before any compute."""
    c = cfg.critical
    unknown = set(c.stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown critical.stages {sorted(unknown)}; choose from {list(STAGES)}")
    if c.model_size not in SIZES:
        raise ValueError(f"critical.model_size must be one of {sorted(SIZES)}, got {c.model_size!r}")
    specs = degree_specs(c)
    if not specs:
        raise ValueError("critical.degrees is empty: give at least one {n_digits, mix_fraction, steps}")
    n_positions = SIZES[c.model_size]["n_positions"]
    if not -len(specs) <= int(c.main_degree) < len(specs):
        raise ValueError(f"critical.main_degree={c.main_degree} is not an index of the {len(specs)} degrees")
    main = specs[int(c.main_degree)]
    for cond in c.rl.conditions:
        rl_settings(c, main.n_digits, int(c.rl.plus_k), cond, float(c.rl.kl_coef), 0, "").validate(
            n_positions
        )
    if "degrees_rl" in c.stages:
        for spec in specs:
            cond = c.degrees_rl.condition
            kl = float(c.degrees_rl.kl_coef)
            rl_settings(c, spec.n_digits, int(c.degrees_rl.plus_k), cond, kl, 0, "").validate(n_positions)
    for beta in c.table1.betas:
        check_beta(float(beta))
    return specs


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    from fourfold.core.files import atomic_path

    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def stage_generalisation(c, specs, models, tok) -> pd.DataFrame:
    rows = []
    for spec in specs:
        model = models[spec.name]
        for digits in range(spec.n_digits, spec.n_digits + int(c.generalisation.extra_digits) + 1):
            for mode in ("identical", "varying"):
                rng = np.random.default_rng([int(c.generalisation.seed), digits])
                pairs = eval_pairs(rng, int(c.generalisation.examples), digits, mode)
                acc = greedy_accuracy(model, tok, pairs)
                rows.append(
                    {"degree": spec.name, "N": spec.n_digits, "mix": spec.mix_fraction, "digits": digits,
                     "offset": digits - spec.n_digits, "mode": mode, "accuracy": acc.mean(),
                     "se": acc.std(ddof=1) / np.sqrt(len(acc)), "n": len(acc)}
                )  # fmt: skip
    return pd.DataFrame(rows)


def stage_table1(c, specs, models, tok, main_spec):
    t = c.table1
    rows, positions = [], []
    for spec in specs:
        rng = np.random.default_rng([int(c.generalisation.seed), 99, spec.n_digits])
        pairs = eval_pairs(rng, int(t.examples), spec.n_digits + 1, "identical")
        gap = certainty_gap(
            models[spec.name],
            tok,
            pairs,
            spec.n_digits,
            str(t.certainty_kind),
            float(t.certainty_temperature),
        )
        n = len(gap["delta_critical"])
        rows.append(
            {"degree": spec.name, "N": spec.n_digits, "mix": spec.mix_fraction, "n": n,
             "delta_critical": gap["delta_critical"].mean(),
             "delta_critical_se": gap["delta_critical"].std(ddof=1) / np.sqrt(n),
             "delta_other": gap["delta_other"].mean(),
             "delta_other_se": gap["delta_other"].std(ddof=1) / np.sqrt(n),
             "min_j_critical": gap["critical_min_j"].mean(), "mean_j_all": gap["j_values"].mean()}
        )  # fmt: skip
        by_position = pd.DataFrame(gap["by_position"], columns=["position", "j", "delta"])
        for label, group in by_position.groupby("position"):
            positions.append(
                {"N": spec.n_digits, "position": label, "n": len(group), "j": group.j.mean(),
                 "delta": group.delta.mean(), "delta_se": group.delta.std(ddof=1) / np.sqrt(len(group))}
            )  # fmt: skip
    # Weights on sampled reference episodes of the RL distribution (what the prioritized KL sees).
    model = models[main_spec.name]
    rng = np.random.default_rng([int(c.generalisation.seed), 7])
    pairs = rl_pairs(rng, int(t.weight_rollouts), main_spec.n_digits, int(c.rl.plus_k))
    from fourfold.critical.arithmetic import max_continuation_length, prompt

    episodes = sample(
        model,
        tok,
        [prompt(a, b) for a, b in pairs],
        max_continuation_length(main_spec.n_digits + int(c.rl.plus_k)),
        temperature=float(c.rl.temperature),
        generator=torch.Generator().manual_seed(7),
    )
    ref = reference_outputs(model, episodes, float(c.rl.temperature))
    j = certainty_from_logits(ref.logits, str(c.rl.certainty_kind), float(c.rl.certainty_temperature))
    j = j[episodes.action_mask].double().numpy()
    bins = np.linspace(0, 1, 21)
    hist = []
    for beta in t.betas:
        w = j ** float(beta)
        counts, _ = np.histogram(w, bins=bins)
        hist.append(
            {"beta": float(beta), "mean_w": w.mean(), "p10": np.quantile(w, 0.1), "median": np.median(w),
             "share_below_half": float((w < 0.5).mean()),
             **{f"bin{i:02d}": int(k) for i, k in enumerate(counts)}}
        )  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(hist), pd.DataFrame(positions)


def read_curves(path: Path) -> pd.DataFrame:
    """The last record of each (kind, step) in a curves.jsonl (a resumed run rewrites some steps)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(records)
    return frame.drop_duplicates(subset=["kind", "step"], keep="last").sort_values(["kind", "step"])


def rl_run(cfg, model, tok, settings, iterations: int, run_dir: Path) -> pd.DataFrame:
    """One RL run from a copy of the pre-trained model (policy) against a frozen copy (reference)."""
    torch.set_num_threads(int(cfg.critical.threads))  # also in joblib worker processes
    policy, reference = copy.deepcopy(model), copy.deepcopy(model)
    set_dropout(policy, 0.0)
    set_dropout(reference, 0.0)
    critic = Critic(policy.config.n_embd) if settings.algorithm == "a2c" else None
    curves = Path(settings.curves_path)
    if (run_dir / "done").is_file():
        return read_curves(curves)
    torch.manual_seed(settings.seed)
    start = time.time()
    fine_tune(
        policy,
        reference,
        tok,
        settings,
        iterations=iterations,
        run_dir=run_dir,
        trainer_cfg=cfg.trainer,
        critic=critic,
        checkpoint_every=int(cfg.critical.rl.checkpoint_every),
        enable_progress_bar=False,
    )
    (run_dir / "done").write_text(f"{time.time() - start:.1f} s\n")
    log.info("RL run %s: %.0f s", run_dir.name, time.time() - start)
    return read_curves(curves)


def run_all(cfg, jobs: list[tuple]) -> list[pd.DataFrame]:
    """``rl_run`` for every (model, tokenizer, settings, iterations, run_dir) job, in ``critical.workers``
    processes (each run is independent and seeded, so the result does not depend on the worker count)."""
    workers = int(cfg.critical.workers)
    if workers <= 1:
        return [rl_run(cfg, *job) for job in jobs]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=workers, backend="loky")(delayed(rl_run)(cfg, *job) for job in jobs)


def curve_rows(curves: pd.DataFrame, **labels) -> pd.DataFrame:
    frame = curves.copy()
    for key, value in labels.items():
        frame[key] = value
    return frame


def main(cfg: DictConfig) -> dict[str, float]:
    c = cfg.critical
    specs = validate(cfg)
    torch.set_num_threads(int(c.threads))
    seed_everything(int(cfg.seed))
    run_dir = current_run_dir()
    results = run_dir / "results"
    tok = CharTokenizer()
    metrics: dict[str, float] = {}
    stages = list(c.stages)

    models, infos = {}, {}
    started = time.time()
    for spec in specs:
        models[spec.name], infos[spec.name] = pretrained_model(
            spec, tok, Path(c.cache_dir), cfg.trainer, enable_progress_bar=False
        )
        set_dropout(models[spec.name], 0.0)
        models[spec.name].eval()
    metrics["pretrain_seconds"] = time.time() - started
    main_spec = specs[int(c.main_degree)]
    write_csv(
        pd.DataFrame([{"degree": s.name, **OmegaConf.to_container(OmegaConf.structured(s))} for s in specs]),
        results / "degrees.csv",
    )

    if "generalisation" in stages:
        table = stage_generalisation(c, specs, models, tok)
        write_csv(table, results / "generalisation.csv")
        for row in table.itertuples():
            metrics[f"acc_N{row.N}_mix{row.mix:g}_{row.mode}_plus{row.offset}"] = float(row.accuracy)

    if "table1" in stages:
        gap, hist, positions = stage_table1(c, specs, models, tok, main_spec)
        write_csv(gap, results / "table1.csv")
        write_csv(positions, results / "table1_positions.csv")
        write_csv(hist, results / "weights.csv")
        for row in gap.itertuples():
            metrics[f"dJ_critical_N{row.N}"] = float(row.delta_critical)
            metrics[f"dJ_other_N{row.N}"] = float(row.delta_other)

    if "rl" in stages:
        started = time.time()
        jobs, labels = [], []
        for cond in c.rl.conditions:
            for seed in c.rl.seeds:
                where = run_dir / "rl" / f"{cond.name}_seed{seed}"
                settings = rl_settings(
                    c, main_spec.n_digits, int(c.rl.plus_k), cond, float(c.rl.kl_coef), int(seed),
                    where / "curves.jsonl",
                )  # fmt: skip
                jobs.append((models[main_spec.name], tok, settings, int(c.rl.iterations), where))
                labels.append({"condition": str(cond.name), "seed": int(seed)})
        frames = [curve_rows(f, **lab) for f, lab in zip(run_all(cfg, jobs), labels)]
        curves = pd.concat(frames, ignore_index=True)
        write_csv(curves, results / "rl_curves.csv")
        final = curves[(curves.kind == "eval") & (curves.step == curves.step.max())]
        for name, group in final.groupby("condition"):
            metrics[f"rl_{name}_acc"] = float(group.acc_rl.mean())
            metrics[f"rl_{name}_comfort"] = float(group.acc_comfort.mean())
        metrics["rl_seconds"] = time.time() - started

    if "degrees_rl" in stages:
        d = c.degrees_rl
        started = time.time()
        jobs, labels = [], []
        for spec in specs:
            for seed in d.seeds:
                where = run_dir / "degrees_rl" / f"{spec.name}_seed{seed}"
                settings = rl_settings(
                    c, spec.n_digits, int(d.plus_k), d.condition, float(d.kl_coef), int(seed),
                    where / "curves.jsonl",
                )  # fmt: skip
                jobs.append((models[spec.name], tok, settings, int(d.iterations), where))
                labels.append({"degree": spec.name, "N": spec.n_digits, "seed": int(seed)})
        frames = [curve_rows(f, **lab) for f, lab in zip(run_all(cfg, jobs), labels)]
        curves = pd.concat(frames, ignore_index=True)
        write_csv(curves, results / "degrees_rl_curves.csv")
        final = curves[(curves.kind == "eval") & (curves.step == curves.step.max())]
        for n, group in final.groupby("N"):
            metrics[f"degrees_rl_N{n}_acc"] = float(group.acc_rl.mean())
        metrics["degrees_rl_seconds"] = time.time() - started
    return metrics
