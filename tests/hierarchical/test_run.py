"""The user task (decode a saved matrix) and the sweep's building blocks, on files the tests write."""

import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from fourfold.core.cli import CONF_DIR
from fourfold.hierarchical import Hierarchy, decode
from fourfold.hierarchical import data as D
from fourfold.hierarchical.grid import DECODERS, evaluate_grid
from fourfold.hierarchical.inputs import softmax
from fourfold.hierarchical.run import decode_file


def compose_preset(preset, overrides=()):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"experiment=hierarchical/{preset}", *overrides])


@pytest.fixture
def files(tmp_path):
    h = Hierarchy.shipped("inat19")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, h.n_leaves)) * 3
    P = softmax(logits)
    labels = rng.integers(0, h.n_leaves, size=30)
    np.save(tmp_path / "probs.npy", P)
    np.savetxt(tmp_path / "probs.csv", P, delimiter=",")
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path, h, P, labels


@pytest.mark.parametrize("name", ["probs.npy", "probs.csv"])
def test_decode_task_writes_predictions_and_grid(files, name):
    folder, h, P, labels = files
    cfg = compose_preset(
        "decode",
        [
            f"hierarchical.probs={folder / name}",
            "hierarchical.hierarchy=inat19",
            "hierarchical.metric=hF_1",
            f"hierarchical.labels={folder / 'labels.npy'}",
        ],
    )
    metrics = decode_file(cfg.hierarchical, folder)
    saved = np.load(folder / "predictions.npz")
    np.testing.assert_array_equal(saved["predictions"], decode(P, h, "hF_1"))
    assert metrics["n_examples"] == 30
    # every metric for every decoder; node metrics of multi-branch hF sets are NaN, never wrong numbers
    assert "optimal_zhao/zhao" in metrics and "top_down/hF_2" in metrics
    assert (folder / "grid.csv").is_file()


def test_decode_task_logits_option(files):
    folder, h, P, _ = files
    cfg = compose_preset(
        "decode",
        [
            f"hierarchical.probs={folder / 'logits.npy'}",
            "hierarchical.hierarchy=inat19",
            "hierarchical.logits=true",
            "hierarchical.metric=wu_palmer",
            "hierarchical.rule=optimal",
        ],
    )
    decode_file(cfg.hierarchical, folder)
    np.testing.assert_array_equal(
        np.load(folder / "predictions.npz")["predictions"], decode(P, h, "wu_palmer")
    )


def test_decode_task_rejects_unnormalised_file(files):
    folder, _, P, _ = files
    np.save(folder / "bad.npy", P * 1.5)
    cfg = compose_preset(
        "decode", [f"hierarchical.probs={folder / 'bad.npy'}", "hierarchical.hierarchy=inat19"]
    )
    with pytest.raises(ValueError, match="row 0 sums to 1.5"):
        decode_file(cfg.hierarchical, folder)


def test_oracle_posterior_is_bayes_rule():
    h = Hierarchy.from_children({4: [0, 1], 5: [2, 3], 6: [4, 5]})
    rng = np.random.default_rng(0)
    means = D.gaussian_means(h, 4, 0.85, rng)
    x, _ = D.sample_gaussian(means, 1.3, 5, rng)
    dens = np.exp(-((x[:, None] - means[None]) ** 2).sum(-1) / (2 * 1.3**2))
    np.testing.assert_allclose(D.oracle_posterior(x, means, 1.3), dens / dens.sum(1, keepdims=True))
    # each leaf mean is the sum of the node offsets z_n ~ N(0, 0.85^(2 d(n))) on its root path
    z = np.random.default_rng(5).normal(size=(7, 4)) * 0.85 ** h.depth[:, None]
    root = h.root
    expected = np.stack([z[l] + z[h.parent[l]] + z[root] for l in range(4)])
    np.testing.assert_allclose(D.gaussian_means(h, 4, 0.85, np.random.default_rng(5)), expected)


def test_temperature_fit_recovers_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    P = softmax(logits, 2.0)
    labels = np.array([rng.choice(5, p=p) for p in P])
    assert D.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_digits_tree_and_blur():
    images, labels = D.load_digits_images()
    h = D.cluster_tree(images, labels)
    assert h.n_leaves == 10 and h.n_nodes == 19
    blurred = D.blur(images[:5], 1.0)
    assert blurred.shape == images[:5].shape and blurred.std() < images[:5].std()
    np.testing.assert_array_equal(D.blur(images[:5], 0.0), images[:5])


def test_grid_has_every_decoder_and_metric():
    h = Hierarchy.from_children({4: [0, 1], 5: [2, 3], 6: [4, 5]})
    P = np.random.default_rng(0).dirichlet(np.ones(4), size=20)
    rows = evaluate_grid(P, np.arange(20) % 4, h)
    assert {r["decoder"] for r in rows} == {*DECODERS, "-"}
    assert len(rows) == 8 * 8 + 1


@pytest.mark.slow
def test_smoke_sweep_through_the_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fourfold", "experiment=hierarchical/smoke", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    import pandas as pd

    df = pd.read_csv(tmp_path / "results.csv")
    assert {"inat19", "digits"} <= set(df.dataset)
    oracle = df[(df.source == "oracle") & (df.decoder != "-")]
    assert len(oracle) == 2 * 64


@pytest.mark.slow
def test_decode_through_the_cli(files, tmp_path):
    folder, h, P, _ = files
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fourfold",
            "experiment=hierarchical/decode",
            f"hierarchical.probs={folder / 'probs.csv'}",
            "hierarchical.hierarchy=inat19",
            "hierarchical.metric=hF_2",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(run_dir / "predictions.npz")["predictions"], decode(P, h, "hF_2"))
    assert (run_dir / "metrics.json").is_file()
