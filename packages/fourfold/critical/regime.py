"""Is a pre-trained model in the paper's regime? Measured on every snapshot of a pre-training run
(``critical.pretrain.snapshot_every``), on validation problems drawn apart from every evaluation set:

- greedy accuracy on the RL distribution (N -> N+1), per case (one or both operands long), and in
  distribution (1..N digits): the reference should be partly right on N+1 and right in distribution;
- the certainty gap dJ (Table 1's measure) at the *decision* characters of the authors' locator (the
  commas before the (N+1)-th digit of each long operand in the first line, where a model that treats the
  number as N-digit closes the list instead), over the whole locator window, and at the model's own first
  errors.

``python -m fourfold.critical.regime <cache>/pretrain/<name>`` tabulates the snapshots and names the
latest one that meets ``RegimeRule`` (the reference is then that run with ``stop_at`` = its step).
"""

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fourfold.critical.arithmetic import comfort_pairs, eval_pairs, operand_case, rl_pairs
from fourfold.critical.evaluation import certainty_gap, first_error_positions, greedy_accuracy
from fourfold.critical.kl import CERTAINTY_KINDS

VALIDATION_SEED = 2718  # apart from generalisation.seed (1234) and rl.eval_seed (4321)


@dataclass(frozen=True)
class RegimeRule:
    """What "in the paper's regime" means here (issue 10): right in distribution, partly right on N+1
    including the both-long case, and clearly less certain at the decision characters."""

    min_in_distribution: float = 0.98
    both_long_accuracy: tuple[float, float] = (0.2, 0.6)
    max_decision_gap: float = -0.1

    def holds(self, row) -> bool:
        low, high = self.both_long_accuracy
        return bool(
            row["acc_in_distribution"] >= self.min_in_distribution
            and low <= row["acc_both_long"] <= high
            and row["dJ_decision"] <= self.max_decision_gap
        )


def measure(
    model,
    tokenizer,
    n_digits: int,
    examples: int = 100,
    seed: int = VALIDATION_SEED,
    certainty: str = "shannon",
    temperature: float = 1.0,
) -> dict:
    """The regime measures of one model (see the module docstring) on ``examples`` validation problems
    per set (half as many in distribution); J is ``certainty`` (shannon | max_prob) at ``temperature``."""
    rng = np.random.default_rng([seed, n_digits])
    rl = rl_pairs(rng, examples, n_digits)
    correct = greedy_accuracy(model, tokenizer, rl)
    cases = np.array([operand_case(a, b, n_digits) for a, b in rl])
    both = eval_pairs(rng, examples, n_digits + 1, "identical")
    failures = first_error_positions(model, tokenizer, both)
    gap = certainty_gap(model, tokenizer, both, n_digits, certainty, temperature, failures=failures)
    in_distribution = greedy_accuracy(model, tokenizer, comfort_pairs(rng, examples // 2, n_digits))
    decision = gap["decision_delta"]
    return {
        "acc_rl": float(correct.mean()),
        "acc_one_long": float(correct[cases == "one_long"].mean()),
        "acc_both_long": float(correct[cases == "both_long"].mean()),
        "acc_in_distribution": float(in_distribution.mean()),
        "acc_identical_plus1": 1.0 - len(failures) / len(both),
        "dJ_decision": float(decision.mean()),
        "dJ_decision_se": float(decision.std(ddof=1) / np.sqrt(len(decision))),
        "j_decision": float(gap["decision_j"].mean()),
        "dJ_window": float(gap["delta_critical"].mean()),
        "dJ_first_error": float(gap["delta_failure"].mean()) if len(failures) else float("nan"),
        "n_first_errors": len(failures),
    }  # fmt: skip


def scan(
    run: Path,
    every: int = 1,
    examples: int = 100,
    min_step: int = 0,
    certainty: str = "shannon",
    temperature: float = 1.0,
) -> pd.DataFrame:
    """``measure`` on every ``every``-th snapshot from step ``min_step`` in ``run/snapshots`` (and on
    ``run/model.pt``), with J = ``certainty`` at ``temperature``."""
    from fourfold.critical.model import load_checkpoint
    from fourfold.critical.tokenizer import CharTokenizer

    tok = CharTokenizer()
    files = [f for f in sorted(run.glob("snapshots/step*.pt")) if int(f.stem[4:]) >= min_step]
    files = files[every - 1 :: every]
    if (run / "model.pt").is_file():
        files.append(run / "model.pt")
    if not files:
        raise FileNotFoundError(f"no snapshots/step*.pt or model.pt under {run}")
    rows = []
    for path in files:
        model, _, extra = load_checkpoint(path, tok)
        model.eval()
        spec = extra["spec"]
        step = spec.get("stop_at") or spec["steps"]
        measures = measure(
            model, tok, int(spec["n_digits"]), examples, certainty=certainty, temperature=temperature
        )
        row = {"step": step, **measures}
        rows.append(row)
        print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return pd.DataFrame(rows).drop_duplicates("step", keep="last").sort_values("step")


# The columns that name a scan row's model (issue 19: experiments/critical/positions/scan.csv).
SCAN_KEYS = ("positions", "size", "n_digits", "mix_fraction", "seed", "steps", "step")


def labelled_scan(table: pd.DataFrame, spec) -> pd.DataFrame:
    """``scan``'s table of one pre-training run of ``spec`` (a ``PretrainSpec``), each row named by
    ``SCAN_KEYS`` and judged by ``RegimeRule`` (``in_regime``)."""
    labels = {"positions": spec.positions, "size": spec.size, "n_digits": spec.n_digits,
              "mix_fraction": spec.mix_fraction, "seed": spec.seed, "steps": spec.steps}  # fmt: skip
    out = table.assign(**labels)
    out["in_regime"] = [RegimeRule().holds(row) for _, row in out.iterrows()]
    measures = [col for col in table.columns if col != "step"]
    return out[[*SCAN_KEYS, *measures, "in_regime"]]


def main(argv=None) -> None:
    from fourfold.core.tables import write_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a pre-training cache folder: <cache>/pretrain/<name>")
    parser.add_argument("--every", type=int, default=1, help="measure every n-th snapshot")
    parser.add_argument("--examples", type=int, default=100, help="validation problems per set")
    parser.add_argument("--min-step", type=int, default=0, help="skip snapshots before this step")
    parser.add_argument(
        "--certainty", choices=CERTAINTY_KINDS, default="shannon", help="J: shannon (paper) | max_prob (code)"
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="J's temperature (authors' code: 4)")
    parser.add_argument("--out", type=Path, help="write the table here (.csv and .md)")
    args = parser.parse_args(argv)
    if args.temperature <= 0:
        parser.error(f"--temperature must be positive, got {args.temperature}")
    table = scan(args.run, args.every, args.examples, args.min_step, args.certainty, args.temperature)
    table["in_regime"] = [RegimeRule().holds(row) for _, row in table.iterrows()]
    if args.out:
        write_table(table, args.out)
    print(table.to_string(index=False))
    meeting = table[table.in_regime]
    name = re.sub(r"_[0-9a-f]{8}$", "", args.run.name)
    print(
        f"{name}: latest snapshot in the regime: step {int(meeting.step.max())}"
        if len(meeting)
        else f"{name}: no snapshot meets {RegimeRule()}"
    )


if __name__ == "__main__":
    main()
