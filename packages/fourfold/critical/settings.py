"""From the config to typed settings, and every check on it before any compute: the pre-training specs
per degree (``critical.degrees``), each RL condition's settings (``critical.rl`` and its overrides), and the
cache folder of an RL run, keyed by everything that shapes it."""

import hashlib
import json
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from fourfold.critical.arithmetic import comfort_pairs, rl_pairs
from fourfold.critical.kl import check_beta
from fourfold.critical.lit import RLSettings
from fourfold.critical.losses import LossConfig
from fourfold.critical.model import SIZES
from fourfold.critical.pretrain import PretrainSpec

STAGES = ("pretrain", "regime", "generalisation", "table1", "rl", "degrees_rl")


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
            both_fraction=float(d.get("both_fraction", 0.0)),
            stop_at=int(d.get("stop_at", 0)),
            positions=str(c.model.positions),
        ).validate()
        for d in c.degrees
    ]


def condition_beta(condition, rule_beta: float | None) -> float:
    """A condition's beta: a number, or ``rule`` (the brief's rule, ``kl.beta_rule``, on the reference)."""
    if str(condition.beta) == "rule":
        if rule_beta is None:
            raise ValueError(f"condition {condition.name}: beta 'rule' needs the reference's certainty")
        return rule_beta
    return check_beta(float(condition.beta))


# Knobs of ``critical.rl`` that a condition may override (ablations of the recipe run as conditions).
CONDITION_OVERRIDES = (
    "iterations", "episodes", "group_size", "baseline", "algorithm", "trainable", "optimizer", "momentum",
    "lr", "warmup_steps", "entropy_coef", "temperature", "kl_coef",
)  # fmt: skip


# Knobs added after RL runs were cached, with the value those runs had: at that value a knob stays out of
# the folder's key, so the earlier runs are still found.
LATER_KNOBS = {"optimizer": "adam", "momentum": 0.0, "trainable": "all"}


def knob(c: DictConfig, condition, key: str):
    if condition is not None and key in condition:
        return condition[key]
    return c.rl[key]


def check_condition(condition) -> None:
    unknown = set(condition) - {"name", "mode", "beta", *CONDITION_OVERRIDES}
    if unknown:
        raise ValueError(
            f"condition {condition.get('name')}: unknown keys {sorted(unknown)}; a condition has name, mode, "
            f"beta and may override {list(CONDITION_OVERRIDES)}"
        )


def rl_settings(
    c: DictConfig, n_digits: int, plus_k: int, condition, kl_coef: float, seed: int, curves, rule_beta=1.0
):
    r = c.rl
    check_condition(condition)
    kl_coef = float(condition.kl_coef) if "kl_coef" in condition else kl_coef  # alpha per condition
    rng = np.random.default_rng(int(r.eval_seed))
    return RLSettings(
        n_digits=n_digits,
        plus_k=plus_k,
        episodes=int(knob(c, condition, "episodes")),
        temperature=float(knob(c, condition, "temperature")),
        reward_kind=str(r.reward),
        kl_mode=str(condition.mode),
        beta=condition_beta(condition, rule_beta),
        certainty_kind=str(r.certainty_kind),
        certainty_temperature=float(r.certainty_temperature),
        algorithm=str(knob(c, condition, "algorithm")),
        baseline=str(knob(c, condition, "baseline")),
        group_size=int(knob(c, condition, "group_size")),
        trainable=str(knob(c, condition, "trainable")),
        optimizer=str(knob(c, condition, "optimizer")),
        momentum=float(knob(c, condition, "momentum")),
        lr=float(knob(c, condition, "lr")),
        warmup_steps=int(knob(c, condition, "warmup_steps")),
        gamma=float(r.gamma),
        gae_lambda=float(r.gae_lambda),
        loss=LossConfig(
            kl_coef=0.0 if condition.mode == "none" else kl_coef,
            entropy_coef=float(knob(c, condition, "entropy_coef")),
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
    if "generalisation" in c.stages:  # longer problems would be cut at the context and score 0
        from fourfold.critical.arithmetic import prompt, scratchpad

        for spec in specs:
            digits = spec.n_digits + int(c.generalisation.extra_digits)
            nines = 10**digits - 1
            need = len(prompt(nines, nines) + scratchpad(nines, nines))
            if need > n_positions:
                raise ValueError(
                    f"generalisation at {digits} digits needs {need} positions, the {c.model_size} model has "
                    f"{n_positions}: lower critical.generalisation.extra_digits or use size tiny_long"
                )
    for beta in c.table1.betas:
        check_beta(float(beta))
    return specs


def rl_run_dir(c: DictConfig, reference: str, condition, beta: float, seed: int, iterations: int) -> Path:
    """A stable folder per RL run, keyed by everything that shapes it, so that rerunning the same command
    reuses finished runs and resumes interrupted ones: ``<cache_dir>/rl/<reference>/<name>_seed<s>_<key>``.
    """
    shaping = OmegaConf.to_container(c.rl, resolve=True)
    # Not shaping a run: which runs exist, how often they checkpoint, whether to run them; the rule's beta
    # enters through `beta` itself.
    for key in ("conditions", "seeds", "iterations", "checkpoint_every", "only_finished", "beta_rule"):
        shaping.pop(key, None)
    for key, default in LATER_KNOBS.items():  # knobs added later do not move the runs made before them
        if shaping.get(key) == default:
            shaping.pop(key)
    shaping.update(condition=dict(OmegaConf.to_container(condition)), beta=beta, iterations=iterations)
    digest = hashlib.sha1(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:8]
    return Path(c.cache_dir) / "rl" / reference / f"{condition.name}_seed{seed}_{digest}"
