"""The task: ``python -m fourfold experiment=critical/<preset>``; it and ``settings`` (the config turned into
typed settings and checked) are the only modules that read the config.

Stages (``critical.stages``), each writing small CSVs under ``<run dir>/results/``:
- ``pretrain``: one cached pre-trained model per degree (``critical.degrees``);
- ``regime``: the regime measures (``regime.measure``) of each pre-trained model and its kept snapshots;
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
from omegaconf import DictConfig

from fourfold.core.runs import current_run_dir
from fourfold.core.seeding import seed_everything
from fourfold.critical.arithmetic import eval_pairs, rl_pairs
from fourfold.critical.evaluation import (
    certainty_at_critical_and_ordinary,
    certainty_gap,
    first_error_positions,
    greedy_accuracy,
)
from fourfold.critical.kl import beta_rule, certainty_from_logits
from fourfold.critical.model import Critic, hidden_size, set_dropout
from fourfold.critical.pretrain import pretrained_model
from fourfold.critical.reference import seed_cache
from fourfold.critical.rl import fine_tune
from fourfold.critical.rollout import reference_outputs, sample
from fourfold.critical.settings import (
    CONDITION_OVERRIDES,
    condition_beta,
    knob,
    rl_run_dir,
    rl_settings,
    validate,
)
from fourfold.critical.tokenizer import CharTokenizer

log = logging.getLogger("fourfold.critical")


def model_device_for(trainer_cfg) -> torch.device:
    """Where evaluations run: the GPU when the trainer asks for one and one is there, else the CPU."""
    wants_gpu = str(trainer_cfg.get("accelerator", "cpu")) in ("gpu", "cuda")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


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
        failures = first_error_positions(models[spec.name], tok, pairs)
        gap = certainty_gap(
            models[spec.name],
            tok,
            pairs,
            spec.n_digits,
            str(t.certainty_kind),
            float(t.certainty_temperature),
            failures=failures,
        )
        n = len(gap["delta_critical"])
        fail = gap["delta_failure"]
        by_position = pd.DataFrame(gap["by_position"], columns=["position", "j", "delta"])
        decision = gap["decision_delta"]
        rows.append(
            {"degree": spec.name, "N": spec.n_digits, "mix": spec.mix_fraction, "n": n,
             "delta_critical": gap["delta_critical"].mean(),
             "delta_critical_se": gap["delta_critical"].std(ddof=1) / np.sqrt(n),
             "delta_decision": decision.mean(),
             "delta_decision_se": decision.std(ddof=1) / np.sqrt(len(decision)),
             "j_decision": gap["decision_j"].mean(),
             "delta_other": gap["delta_other"].mean(),
             "delta_other_se": gap["delta_other"].std(ddof=1) / np.sqrt(n),
             "min_j_critical": gap["critical_min_j"].mean(), "mean_j_all": gap["j_values"].mean(),
             "n_failures": len(fail), "delta_failure": fail.mean() if len(fail) else float("nan"),
             "delta_failure_se": fail.std(ddof=1) / np.sqrt(len(fail)) if len(fail) > 1 else float("nan")}
        )  # fmt: skip
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


def stage_beta_rule(c, model, tok, main_spec) -> tuple[float, pd.DataFrame]:
    """beta by the rule of ``kl.beta_rule`` from the reference's certainty on ordinary tokens of correct
    RL-distribution scratchpads, and what it (and the other betas of the conditions) give at the located
    critical positions and elsewhere."""
    r = c.rl.beta_rule
    rng = np.random.default_rng([int(c.rl.eval_seed), 17])
    pairs = rl_pairs(rng, int(r.examples), main_spec.n_digits, int(c.rl.plus_k))
    j_crit, j_ord = certainty_at_critical_and_ordinary(
        model, tok, pairs, main_spec.n_digits, str(c.rl.certainty_kind), float(c.rl.certainty_temperature)
    )
    needed = any(str(x.beta) == "rule" for x in c.rl.conditions)
    try:
        rule = beta_rule(j_ord, float(r.keep), float(r.quantile))
    except ValueError:
        if needed:
            raise
        rule = float("nan")  # reported as NaN; no condition uses it
    log.info("beta by the rule: %.3g (w >= %.2f on %.0f%% of ordinary tokens)", rule, float(r.keep),
             100 * (1 - float(r.quantile)))  # fmt: skip
    given = {float(x.beta) for x in c.rl.conditions if str(x.beta) != "rule" and x.beta}
    betas = sorted(given | ({rule} if np.isfinite(rule) else set()))
    rows = []
    for beta in betas:
        w_crit, w_ord = j_crit**beta, j_ord**beta
        rows.append(
            {"beta": beta, "is_rule": beta == rule, "w_critical_mean": w_crit.mean(),
             "w_critical_median": np.median(w_crit), "w_ordinary_mean": w_ord.mean(),
             "w_ordinary_p10": np.quantile(w_ord, 0.1), "share_ordinary_below_half": (w_ord < 0.5).mean(),
             "share_critical_below_half": (w_crit < 0.5).mean(), "n_critical": len(j_crit),
             "n_ordinary": len(j_ord)}
        )  # fmt: skip
    return rule, pd.DataFrame(rows)


def run_times(jobs, labels) -> pd.DataFrame:
    rows = []
    for job, label in zip(jobs, labels):
        done = job[-1] / "done"
        seconds = float(done.read_text().split()[0]) if done.is_file() else float("nan")
        rows.append({**label, "seconds": seconds, "folder": str(job[-1])})
    return pd.DataFrame(rows)


def _worker_logging(log_file: str | None) -> None:
    """In a joblib worker (no logging set up), send progress lines to the terminal and the run's log."""
    root = logging.getLogger()
    if root.handlers:
        return
    fmt = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    handlers = [logging.StreamHandler()] + ([logging.FileHandler(log_file)] if log_file else [])
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def _run_log_file() -> str | None:
    files = [h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    return files[0] if files else None


def rl_run(cfg, model, tok, settings, iterations: int, run_dir: Path, log_file=None) -> pd.DataFrame:
    """One RL run from a copy of the pre-trained model (policy) against a frozen copy (reference).
    A finished run (``done`` in its folder) is read back, not rerun."""
    torch.set_num_threads(int(cfg.critical.threads))  # also in joblib worker processes
    _worker_logging(log_file)
    curves = Path(settings.curves_path)
    if (run_dir / "done").is_file():
        log.info("RL run %s: already finished, read from %s", run_dir.name, curves)
        return read_curves(curves)
    policy, reference = copy.deepcopy(model), copy.deepcopy(model)
    set_dropout(policy, 0.0)
    set_dropout(reference, 0.0)
    critic = Critic(hidden_size(policy)) if settings.algorithm == "a2c" else None
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
        label=f"RL {run_dir.name}",
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

    log_file = _run_log_file()
    # Longest first would balance better, but all runs of a stage have the same budget: keep config order.
    return Parallel(n_jobs=workers, backend="loky")(
        delayed(rl_run)(cfg, *job, log_file=log_file) for job in jobs
    )


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
        # A shipped reference stands in for its pre-training (unless snapshots are asked for).
        if bool(c.pretrain.shipped_reference) and not int(c.pretrain.snapshot_every):
            seeded = seed_cache(Path(c.cache_dir), spec)
            if seeded:
                log.info("%s: the reference shipped in the package, copied to %s", spec.name, seeded)
        models[spec.name], infos[spec.name] = pretrained_model(
            spec, tok, Path(c.cache_dir), cfg.trainer, int(c.pretrain.snapshot_every) or None,
            enable_progress_bar=False,
        )  # fmt: skip
        set_dropout(models[spec.name], 0.0)
        models[spec.name].to(model_device_for(cfg.trainer)).eval()
    metrics["pretrain_seconds"] = time.time() - started
    main_spec = specs[int(c.main_degree)]
    write_csv(
        # spec.record(): a learned model's row has no positions column, as before the schemes existed
        pd.DataFrame([{"degree": s.name, **s.record()} for s in specs]),
        results / "degrees.csv",
    )

    if "regime" in stages:  # the regime measures of each reference (and its snapshots, if kept)
        from fourfold.critical.pretrain import cached_model_path
        from fourfold.critical.regime import labelled_scan, scan

        r = c.regime
        tables = [
            labelled_scan(scan(cached_model_path(c.cache_dir, spec).parent, int(r.every), int(r.examples),
                               int(r.min_step)), spec)
            for spec in specs
        ]  # fmt: skip
        write_csv(pd.concat(tables, ignore_index=True), results / "regime.csv")

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
        rule_beta, rule_table = stage_beta_rule(c, models[main_spec.name], tok, main_spec)
        write_csv(rule_table, results / "beta_rule.csv")
        metrics["beta_rule"] = rule_beta
        jobs, labels, recipes = [], [], []
        # Seed-major order: an interrupted stage leaves whole seeds of every condition (paired comparisons).
        for seed in c.rl.seeds:
            for cond in c.rl.conditions:
                beta = condition_beta(cond, rule_beta)
                iterations = int(knob(c, cond, "iterations"))
                where = rl_run_dir(c, main_spec.name, cond, beta, int(seed), iterations)
                settings = rl_settings(
                    c, main_spec.n_digits, int(c.rl.plus_k), cond, float(c.rl.kl_coef), int(seed),
                    where / "curves.jsonl", rule_beta,
                )  # fmt: skip
                jobs.append((models[main_spec.name], tok, settings, iterations, where))
                labels.append({"condition": str(cond.name), "seed": int(seed), "beta": beta})
                knobs = {k: knob(c, cond, k) for k in CONDITION_OVERRIDES}
                recipes.append({"mode": str(cond.mode), **knobs})
        finished = [(j[-1] / "done").is_file() for j in jobs]
        log.info("RL: %d runs (%d finished before) in %s", len(jobs), sum(finished),
                 Path(c.cache_dir) / "rl")  # fmt: skip
        if bool(c.rl.only_finished):  # report what has finished, run nothing
            jobs = [j for j, done in zip(jobs, finished) if done]
            labels = [lab for lab, done in zip(labels, finished) if done]
            recipes = [rec for rec, done in zip(recipes, finished) if done]
            if not jobs:
                raise ValueError("critical.rl.only_finished=true but no RL run of this config has finished")
        frames = [curve_rows(f, **lab) for f, lab in zip(run_all(cfg, jobs), labels)]
        curves = pd.concat(frames, ignore_index=True)
        write_csv(curves, results / "rl_curves.csv")
        recipe_labels = [{**lab, **rec} for lab, rec in zip(labels, recipes)]
        write_csv(run_times(jobs, recipe_labels), results / "rl_runs.csv")
        evals = curves[curves.kind == "eval"]
        final = evals[evals.step == evals.groupby("condition").step.transform("max")]
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
