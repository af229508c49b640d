"""The README's "Use the prioritized KL in your TRL run" example, run as written (on a tiny model)."""

import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl", reason="TRL is an optional extra: pip install 'fourfold[trl]' (make install does)")

README = Path(__file__).parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Use the prioritized KL in your TRL run", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section should hold exactly one python example"
    return blocks[0]


def test_readme_example_runs_as_written(tmp_path, monkeypatch):
    from fourfold.critical.hf import export_reference
    from fourfold.critical.model import build_model
    from fourfold.critical.tokenizer import CharTokenizer

    code = readme_example()
    assert 12 <= len([line for line in code.splitlines() if line.strip()]) <= 20
    torch.manual_seed(0)
    tok = CharTokenizer()
    export_reference((build_model("micro", tok.vocab_size), tok), tmp_path / "reference-hf")
    monkeypatch.chdir(tmp_path)  # the example's relative paths: reference-hf, runs/
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    history = namespace["trainer"].state.log_history
    assert namespace["exponent"] > 0
    assert history[-1]["step"] == 2
    logged = [h for h in history if "kl_weight/mean" in h]
    assert logged and all(0 <= h["kl_weight/min"] <= h["kl_weight/mean"] <= 1 for h in logged)
