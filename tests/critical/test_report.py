"""report.build makes every table and figure from result CSVs (synthetic ones here)."""

import numpy as np
import pandas as pd

from fourfold.critical.report import build


def write_results(root):
    results = root / "results"
    results.mkdir(parents=True)
    rows = []
    for cond in ("standard", "prioritized_b10"):
        for seed in (0, 1):
            for step in (0, 10):
                rows.append({"step": step, "kind": "eval", "acc_rl": 0.5 + step / 100, "critical_prob": 0.6,
                             "acc_comfort": 1.0, "condition": cond, "seed": seed})  # fmt: skip
                rows.append({"step": step, "kind": "train", "success": 0.4, "w_mean": 0.9,
                             "condition": cond, "seed": seed})  # fmt: skip
    pd.DataFrame(rows).to_csv(results / "rl_curves.csv", index=False)
    degrees = (
        pd.DataFrame(rows).rename(columns={"condition": "N"}).replace({"standard": 2, "prioritized_b10": 3})
    )
    degrees.to_csv(results / "degrees_rl_curves.csv", index=False)
    hist = {"beta": [10.0], "mean_w": [0.9], "p10": [0.8], "median": [0.95], "share_below_half": [0.05]}
    hist.update({f"bin{i:02d}": [int(i)] for i in range(20)})
    pd.DataFrame(hist).to_csv(results / "weights.csv", index=False)
    gen = [{"N": 3, "mix": 0.05, "offset": o, "mode": m, "accuracy": 0.5, "se": 0.1}
           for o in range(2) for m in ("identical", "varying")]  # fmt: skip
    pd.DataFrame(gen).to_csv(results / "generalisation.csv", index=False)
    t1 = {"N": [3], "mix": [0.05], "n": [5], "delta_critical": [-0.1], "delta_critical_se": [0.01]}
    t1.update(
        {"delta_other": [0.001], "delta_other_se": [0.0001], "min_j_critical": [0.5], "mean_j_all": [0.9]}
    )
    pd.DataFrame(t1).to_csv(results / "table1.csv", index=False)


def test_build_makes_every_table_and_figure(tmp_path):
    write_results(tmp_path)
    made = build(tmp_path)
    assert made == ["generalisation", "table1", "weights", "rl_curves", "degrees_rl_curves"]
    learning = pd.read_csv(tmp_path / "tables" / "rl_learning.csv")
    assert np.allclose(learning["difference"], 0.0)  # flat synthetic success: no learning
    paired = pd.read_csv(tmp_path / "tables" / "rl_paired.csv")
    assert set(paired.condition) == {"prioritized_b10"} and np.allclose(paired["difference"], 0.0)
    final = pd.read_csv(tmp_path / "tables" / "rl_final.csv")
    assert np.allclose(final.acc_end, 0.6) and np.allclose(final.acc_start, 0.5) and (final.n == 2).all()
    for name in ("rl_curves", "rl_training", "weights_histogram", "degrees_rl"):
        assert (tmp_path / "figures" / f"{name}.png").is_file()


def test_t_interval_matches_the_textbook_value():
    from fourfold.critical.report import t_interval

    mean, low, high, n = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n), sd = 1
    assert (mean, n) == (2.0, 3) and np.isclose(low, 2 - half) and np.isclose(high, 2 + half)


def test_recipe_table_matches_hand_computed_windows():
    from fourfold.critical.report import recipe_table

    rows = []
    for seed, rise in ((0, 0.2), (1, 0.4)):
        for step in range(10):  # window = 1 iteration: step 0 vs step 9
            success = 0.5 + (rise if step == 9 else 0.0)
            rows.append({"kind": "train", "condition": "a", "seed": seed, "step": step, "success": success,
                         "kl": 0.01 * step, "grad_norm": 1.0})  # fmt: skip
        for step, acc in ((0, 0.6), (10, 0.7)):
            rows.append({"kind": "eval", "condition": "a", "seed": seed, "step": step, "acc_rl": acc,
                         "acc_comfort": 1.0 - 0.1 * seed * (step > 0)})  # fmt: skip
    runs = pd.DataFrame({"condition": ["a", "a"], "seed": [0, 1], "lr": [0.3, 0.3], "optimizer": ["sgd"] * 2,
                         "seconds": [100.0, 200.0]})  # fmt: skip
    table = recipe_table(pd.DataFrame(rows), runs).iloc[0]
    half = 12.706204736174707 * np.std([0.2, 0.4], ddof=1) / np.sqrt(2)  # t_{0.975, 1}
    assert np.isclose(table["first"], 0.5) and np.isclose(table["last"], 0.8)
    assert np.isclose(table.difference, 0.3) and np.isclose(table.ci_high - table.difference, half)
    assert np.isclose(table.kl_last, 0.09) and np.isclose(table.comfort_min, 0.95)
    assert (table.acc_start, table.acc_end, table.seconds, table.optimizer) == (0.6, 0.7, 150.0, "sgd")


def test_learning_table_pairs_each_condition_with_the_frozen_control_by_seed():
    from fourfold.critical.report import learning_table

    rows = []
    for seed, gain in ((0, 0.1), (1, 0.2), (2, 0.3)):
        for step in range(10):
            base = 0.4 + 0.05 * seed  # harder or easier prompts per seed, shared by both conditions
            rows.append({"condition": "frozen", "seed": seed, "step": step, "success": base})
            rows.append({"condition": "a", "seed": seed, "step": step, "success": base + gain * (step == 9)})
    table = learning_table(pd.DataFrame(rows)).set_index("condition")
    half = 4.302652729911275 * 0.1 / np.sqrt(3)  # t_{0.975, 2} * sd(0.1, 0.2, 0.3) / sqrt(3)
    assert np.isclose(table.loc["a", "vs_frozen"], 0.2)
    assert np.isclose(table.loc["a", "vs_frozen_high"], 0.2 + half)
    assert np.isclose(table.loc["frozen", "vs_frozen"], 0.0) and table.loc["a", "vs_frozen_seeds"] == 3


def test_probe_table_reads_finished_and_stopped_run_folders(tmp_path):
    import json

    from fourfold.critical.report import probe_table

    def folder(name, steps, success, kl=None, done=None):
        path = tmp_path / name
        path.mkdir()
        rows = [{"kind": "eval", "step": 0, "acc_rl": 0.6, "acc_comfort": 1.0}]
        for step in range(steps):
            row = {"kind": "train", "step": step, "success": success(step)}
            if kl is not None:
                row.update(kl=kl * step, grad_norm=1.0)
            rows.append(row)
        (path / "curves.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if done:
            (path / "done").write_text(f"{done} s\n")

    folder("base_seed0_aaaaaaaa", 20, lambda s: 0.5, kl=0.0, done=100.0)
    folder("fast_seed0_bbbbbbbb", 20, lambda s: 0.5 + 0.1 * (s >= 10), kl=0.01, done=50.0)
    folder("stopped_seed0_cccccccc", 7, lambda s: 0.2)  # no KL logged, no done file
    folder("other_seed1_dddddddd", 20, lambda s: 0.9)  # another seed: left out
    table = probe_table(tmp_path, baseline="base_seed0_aaaaaaaa").set_index("run")
    assert list(table.index) == ["base_seed0_aaaaaaaa", "fast_seed0_bbbbbbbb", "stopped_seed0_cccccccc"]
    fast, stopped = table.loc["fast_seed0_bbbbbbbb"], table.loc["stopped_seed0_cccccccc"]
    assert np.isclose(fast.success_10_19, 0.6) and np.isclose(fast.vs_baseline_10_19, 0.1)
    assert np.isclose(fast.kl_last5, 0.01 * np.mean([15, 16, 17, 18, 19])) and fast.seconds == 50.0
    assert stopped.iterations == 7 and not stopped.finished and np.isnan(stopped.success_10_19)
    assert np.isnan(stopped.kl_last5) and np.isnan(stopped.success_5_9)
    assert np.isclose(stopped.success_0_4, 0.2)
