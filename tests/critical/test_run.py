"""The task's config checks fail before compute; the smoke preset runs every stage end to end (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from fourfold.core.cli import CONF_DIR
from fourfold.critical.settings import degree_specs, validate

ROOT = Path(__file__).resolve().parents[2]


def config(*overrides, preset="mix"):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"experiment=critical/{preset}", *overrides])


def test_quick_mix_and_paper_presets_validate():
    assert [s.n_digits for s in validate(config())] == [3]
    (quick,) = validate(config(preset="quick"))
    knobs = (quick.positions, quick.size, quick.mix_fraction, quick.both_fraction)
    assert knobs == ("nope", "tiny_long", 0.02, 0.2)
    same_recipe = ("rl", "table1", "generalisation", "stages", "workers")
    assert all(config(preset="quick").critical[k] == config().critical[k] for k in same_recipe)
    paper = None
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        paper = compose("config", overrides=["experiment=critical/paper"])
    specs = validate(paper)
    assert specs[0].size == "paper" and [s.n_digits for s in specs] == [7, 9, 11, 13]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("critical.rl.conditions=[{name: x, mode: prioritized, beta: -1}]", "beta"),
        ("critical.degrees=[{n_digits: 0, mix_fraction: 0.0, steps: 10}]", "N"),
        ("critical.main_degree=5", "main_degree"),
        ("critical.rl.conditions=[{name: x, mode: none, beta: 0, group_size: 3}]", "group_size"),
        ("critical.model_size=huge", "model_size"),
        ("critical.stages=[pretrain, dance]", "stages"),
        ("critical.model.positions=alibi", "position scheme"),
    ],
)
def test_invalid_settings_fail_before_compute(override, message):
    with pytest.raises(ValueError, match=message):
        validate(config(override))


def test_operands_longer_than_the_context_fail_before_compute():
    with pytest.raises(ValueError, match="positions"):
        validate(
            config("critical.degrees=[{n_digits: 7, mix_fraction: 0.0, steps: 10}]", "critical.main_degree=0")
        )


def test_degree_specs_carry_the_pretraining_knobs():
    spec = degree_specs(config().critical)[0]
    assert (spec.batch_size, spec.size, spec.mix_fraction, spec.both_fraction) == (32, "tiny", 0.05, 0.2)
    assert spec.positions == "learned" and spec.name == "N3_mix0.05_both0.2_tiny_2000steps_345650d5"
    nope = degree_specs(config("critical.model.positions=nope").critical)[0]
    assert nope.positions == "nope" and "_tiny_nope_2000steps_" in nope.name


def test_conditions_override_recipe_knobs_and_reject_unknown_keys():
    from fourfold.critical.settings import rl_settings

    c = config().critical
    cond = config("critical.rl.conditions=[{name: a, mode: none, beta: 0, lr: 0.001, group_size: 8}]")
    settings = rl_settings(c, 2, 1, cond.critical.rl.conditions[0], 5.0, 0, "x")
    assert (settings.lr, settings.group_size, settings.loss.kl_coef) == (0.001, 8, 0.0)
    alpha = config("critical.rl.conditions=[{name: a, mode: standard, beta: 0, kl_coef: 0.5}]")
    assert rl_settings(c, 2, 1, alpha.critical.rl.conditions[0], 5.0, 0, "x").loss.kl_coef == 0.5
    assert rl_settings(c, 2, 1, cond.critical.rl.conditions[0], 5.0, 0, "x").loss.kl_coef == 0.0  # no KL
    with pytest.raises(ValueError, match="unknown keys"):
        validate(config("critical.rl.conditions=[{name: a, mode: none, beta: 0, lrr: 1}]"))


def test_rl_run_folders_are_stable_and_keyed_by_what_shapes_them():
    from fourfold.critical.settings import rl_run_dir

    c = config().critical
    std, rule = c.rl.conditions[0], c.rl.conditions[1]
    a = rl_run_dir(c, "ref", std, 0.0, 0, 80)
    other = config("critical.rl.seeds=[9]", "critical.workers=1").critical
    assert a == rl_run_dir(other, "ref", std, 0.0, 0, 80)
    assert a != rl_run_dir(c, "ref", std, 0.0, 1, 80) != rl_run_dir(c, "ref", std, 0.0, 0, 81)
    assert rl_run_dir(c, "ref", rule, 12.0, 0, 80) != rl_run_dir(c, "ref", rule, 13.0, 0, 80)
    assert a != rl_run_dir(config("critical.rl.lr=1").critical, "ref", std, 0.0, 0, 80)


@pytest.mark.slow
def test_smoke_preset_runs_every_stage(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "fourfold", "experiment=critical/smoke", f"hydra.run.dir={run_dir}",
           f"critical.cache_dir={tmp_path / 'cache'}", "trainer.enable_progress_bar=false"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"rl_standard_acc", "rl_no_kl_acc", "dJ_critical_N2", "degrees_rl_N1_acc"} <= set(metrics)
    names = ("generalisation", "table1", "weights", "beta_rule", "rl_curves", "rl_runs", "degrees_rl_curves")
    for name in names:
        assert (run_dir / "results" / f"{name}.csv").is_file()


def test_run_folders_ignore_knobs_that_do_not_shape_a_run():
    from fourfold.critical.settings import rl_run_dir

    c = config().critical
    std = c.rl.conditions[0]
    a = rl_run_dir(c, "ref", std, 0.0, 0, 80)
    for override in ("critical.rl.only_finished=true", "critical.rl.checkpoint_every=3",
                     "critical.rl.beta_rule.keep=0.5"):  # fmt: skip
        assert rl_run_dir(config(override).critical, "ref", std, 0.0, 0, 80) == a


def test_later_knobs_at_their_old_value_keep_earlier_run_folders():
    from omegaconf import OmegaConf

    from fourfold.critical.settings import LATER_KNOBS, rl_run_dir

    c = config().critical
    std = c.rl.conditions[0]
    old = OmegaConf.create(OmegaConf.to_container(c))
    for key in LATER_KNOBS:
        del old.rl[key]  # the config as it was before these knobs existed
    assert rl_run_dir(c, "ref", std, 0.0, 0, 80) == rl_run_dir(old, "ref", std, 0.0, 0, 80)
    moved = config("critical.rl.optimizer=sgd", "critical.rl.trainable=head").critical
    assert rl_run_dir(moved, "ref", std, 0.0, 0, 80) != rl_run_dir(c, "ref", std, 0.0, 0, 80)
