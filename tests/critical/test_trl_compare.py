"""The TRL comparison script (experiments/critical/trl/compare.py) end to end at toy size."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch

pytest.importorskip("trl", reason="TRL is an optional extra: pip install 'fourfold[trl]' (make install does)")

from fourfold.critical.model import build_model, save_checkpoint  # noqa: E402
from fourfold.critical.tokenizer import CharTokenizer  # noqa: E402

SCRIPT = Path(__file__).parents[2] / "experiments/critical/trl/compare.py"


def load_script():
    spec = importlib.util.spec_from_file_location("trl_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prompts_are_the_lightning_loops():
    """Iteration i's prompts are the ones lit.RLLit.collect draws for the same seed and iteration."""
    import numpy as np

    from fourfold.critical.arithmetic import rl_pairs

    compare = load_script()
    s = compare.mix_settings()
    assert (s["iterations"], s["episodes"], s["group_size"], s["lr"], s["kl_coef"]) == (40, 64, 4, 3e-5, 5.0)
    pairs = compare.training_prompts(3, s)
    rng = np.random.default_rng([3, 7])
    rng.integers(2**31)
    assert pairs[7 * 16 : 8 * 16] == rl_pairs(rng, 16, 3, 1)
    assert compare.trl_settings(s, "prioritized_rule", 27.4) == (3.75, 27.4)
    assert compare.trl_settings(s, "no_kl", 27.4) == (0.0, 0.0)


@pytest.mark.slow
def test_compare_runs_end_to_end_at_toy_size(tmp_path):
    torch.manual_seed(0)
    tok = CharTokenizer()
    ckpt = save_checkpoint(tmp_path / "ref" / "model.pt", build_model("micro", tok.vocab_size), tok)
    rl = {"iterations": 2, "episodes": 8, "eval_examples": 4, "comfort_examples": 2, "eval_every": 1}
    overrides = [f"critical.rl.{k}={v}" for k, v in rl.items()] + ["critical.rl.beta_rule.examples=6"]
    args = ["--reference", str(ckpt), "--seeds", "0", "--work", str(tmp_path / "work"),
            "--out", str(tmp_path / "out"), "--override", *overrides]  # fmt: skip
    assert load_script().main(args) == 0
    curves = pd.read_csv(tmp_path / "out/results/trl_curves.csv")
    assert set(curves.condition) == {"standard", "prioritized_rule", "no_kl"}
    assert sorted(curves[curves.kind == "eval"].step.unique()) == [0, 1, 2]
    assert len(curves[curves.kind == "train"]) == 6
    assert "TRL GRPOTrainer" in (tmp_path / "out/tables/comparison.md").read_text()
    assert load_script().main(args) == 0  # a rerun reads the finished runs
