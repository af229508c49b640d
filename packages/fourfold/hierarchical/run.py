"""Task entry (the only module that reads the config): ``mode=decode`` decodes a user's probability
file; ``mode=sweep`` runs the ambiguity experiments (Gaussian oracle, trained and calibrated
classifiers, blurred digits, the shipped AlexNet logits)."""

import logging
import time
from pathlib import Path

import numpy as np

from fourfold.core.files import atomic_path
from fourfold.core.runs import current_run_dir
from fourfold.core.seeding import fix_thread_counts, seed_everything
from fourfold.hierarchical import data as D
from fourfold.hierarchical.decision import RULES, decode
from fourfold.hierarchical.grid import cross_grid, evaluate_grid
from fourfold.hierarchical.inputs import load_labels, load_matrix, softmax
from fourfold.hierarchical.metrics import BASE_METRICS, all_metrics
from fourfold.hierarchical.tree import Hierarchy

log = logging.getLogger(__name__)
RESULTS_FILE = "results.csv"


def main(cfg) -> dict[str, float]:
    seed_everything(int(cfg.seed))
    fix_thread_counts(int(cfg.hierarchical.threads))
    hc = cfg.hierarchical
    run_dir = current_run_dir()
    if hc.mode == "decode":
        return decode_file(hc, run_dir)
    if hc.mode == "sweep":
        return sweep(cfg, run_dir)
    raise ValueError(f"hierarchical.mode must be 'decode' or 'sweep', got {hc.mode!r}")


# ---------------------------------------------------------------------------------------- decode
def decode_file(hc, run_dir: Path) -> dict[str, float]:
    """Decode ``hc.probs`` over ``hc.hierarchy`` for ``hc.metric`` with ``hc.rule``; write
    predictions.npz (node indicators and the deepest node of single-path predictions) and, with
    ``hc.labels``, grid.csv with every metric for every decoder."""
    if not hc.probs:
        raise ValueError(
            "set hierarchical.probs=FILE (.npy, .npz or .csv; rows = examples, columns = leaves)"
        )
    h = Hierarchy.load(hc.hierarchy)
    matrix = load_matrix(hc.probs)
    P = softmax(matrix, hc.temperature) if hc.logits else matrix
    pred = decode(P, h, hc.metric, rule=hc.rule, normalize=bool(hc.normalize))
    out = Path(hc.output) if hc.output else run_dir / "predictions.npz"
    deepest = np.where(pred, h.depth[None], -1).argmax(1)
    with atomic_path(out) as tmp:
        np.savez_compressed(tmp, predictions=pred, deepest_node=deepest)
    log.info("predictions (%d x %d node indicators) written to %s", *pred.shape, out)
    metrics = {"n_examples": float(len(pred)), "mean_predicted_nodes": float(pred.sum(1).mean())}
    if hc.labels:
        labels = load_labels(hc.labels, h, len(P))
        from fourfold.hierarchical.inputs import validate_probs

        P = validate_probs(P, h, normalize=bool(hc.normalize))
        rows = cross_grid(P, labels, h)
        _write_rows(rows, run_dir / "grid.csv")
        metrics.update({f"{r['decoder']}/{r['metric']}": r["value"] for r in rows})
    return metrics


# ----------------------------------------------------------------------------------------- sweep
def sweep(cfg, run_dir: Path) -> dict[str, float]:
    hc = cfg.hierarchical
    rows: list[dict] = []
    timings = {}
    for tree in hc.trees:
        start = time.perf_counter()
        rows += gaussian_sweep(cfg, tree, run_dir)
        timings[f"seconds/{tree}"] = time.perf_counter() - start
    if hc.digits.enabled:
        start = time.perf_counter()
        rows += digits_sweep(cfg, run_dir)
        timings["seconds/digits"] = time.perf_counter() - start
    rows += alexnet_rows(hc)
    _write_rows(rows, run_dir / RESULTS_FILE)
    metrics = {
        f"{r['dataset']}/{r['source']}/{r['level']:g}/{r['decoder']}/{r['metric']}": r["value"] for r in rows
    }
    metrics.update(timings)
    return metrics


def _grid_rows(P, labels, h, metrics, **keys):
    return [{**keys, **row} for row in evaluate_grid(P, labels, h, metrics)]


def gaussian_sweep(cfg, tree: str, run_dir: Path) -> list[dict]:
    """(a) exact posteriors, (b) a linear classifier trained on the cleanest level, (c) (b) with a
    temperature fitted per level on held-out points, over every noise level."""
    hc, g = cfg.hierarchical, cfg.hierarchical.gaussian
    h = Hierarchy.shipped(tree)
    metrics = all_metrics(h, BASE_METRICS)
    rng = np.random.default_rng([int(cfg.seed), sum(map(ord, tree))])
    means = D.gaussian_means(h, g.dim, g.decay, rng)
    sources = list(hc.sources)
    model = None
    if {"trained", "calibrated"} & set(sources):
        model = _train(
            cfg,
            D.sample_gaussian(means, g.train_sigma, g.n_train, rng),
            D.sample_gaussian(means, g.train_sigma, g.n_val, rng),
            g.dim,
            h.n_leaves,
            run_dir / f"train_{tree}",
            net="linear",
            epochs=g.epochs,
        )
    rows = []
    for sigma in g.levels:
        x, y = D.sample_gaussian(means, sigma, g.n_test, rng)
        probs = {}
        if "oracle" in sources:
            probs["oracle"] = D.oracle_posterior(x, means, sigma)
        if model is not None:
            from fourfold.hierarchical.lit import predict_logits

            logits = predict_logits(model, x)
            probs["trained"] = softmax(logits)
            if "calibrated" in sources:
                xc, yc = D.sample_gaussian(means, sigma, g.n_calib, rng)
                temperature = D.fit_temperature(predict_logits(model, xc), yc)
                probs["calibrated"] = softmax(logits, temperature)
                rows.append(
                    {
                        "dataset": tree,
                        "source": "calibrated",
                        "level": float(sigma),
                        "decoder": "-",
                        "metric": "temperature",
                        "value": temperature,
                    }
                )
        for source in sources:
            rows += _grid_rows(probs[source], y, h, metrics, dataset=tree, source=source, level=float(sigma))
        log.info("%s sigma=%g done", tree, sigma)
    return rows


def _train(cfg, train, val, n_features, n_leaves, run_dir, *, net: str, epochs: int):
    from fourfold.core.train import fit
    from fourfold.hierarchical.lit import LeafClassifier, linear_net, loader, small_cnn

    seed_everything(int(cfg.seed))
    module = LeafClassifier(
        linear_net(n_features, n_leaves) if net == "linear" else small_cnn(n_leaves),
        lr=float(cfg.hierarchical.lr),
    )
    bs = int(cfg.hierarchical.batch_size)
    fit(
        module,
        loader(*train, bs, True, int(cfg.seed)),
        loader(*val, 1024, False),
        trainer_cfg=cfg.trainer,
        run_dir=run_dir,
        max_epochs=int(epochs),
        seed=int(cfg.seed),
        enable_progress_bar=False,
    )
    return module


def digits_sweep(cfg, run_dir: Path) -> list[dict]:
    """(c) scikit-learn digits: a small CNN trained on clean images, tested on blurred ones, with and
    without a per-level temperature fitted on a held-out blurred split; tree from Ward clustering."""
    from fourfold.hierarchical.lit import predict_logits

    dc = cfg.hierarchical.digits
    images, labels = D.load_digits_images()
    h = D.cluster_tree(images, labels)
    rng = np.random.default_rng(int(cfg.seed))
    order = rng.permutation(len(images))
    n_test = len(images) // 3
    test, calib, train = order[:n_test], order[n_test : n_test + n_test // 2], order[n_test + n_test // 2 :]
    val = train[: len(train) // 5]
    model = _train(
        cfg,
        (images[train], labels[train]),
        (images[val], labels[val]),
        64,
        h.n_leaves,
        run_dir / "train_digits",
        net="cnn",
        epochs=dc.epochs,
    )
    metrics = all_metrics(h, BASE_METRICS)
    rows = []
    for sigma in dc.levels:
        logits = predict_logits(model, D.blur(images[test], sigma))
        temperature = D.fit_temperature(predict_logits(model, D.blur(images[calib], sigma)), labels[calib])
        for source, P in (("trained", softmax(logits)), ("calibrated", softmax(logits, temperature))):
            rows += _grid_rows(
                P, labels[test], h, metrics, dataset="digits", source=source, level=float(sigma)
            )
        rows.append(
            {
                "dataset": "digits",
                "source": "calibrated",
                "level": float(sigma),
                "decoder": "-",
                "metric": "temperature",
                "value": temperature,
            }
        )
    return rows


def alexnet_rows(hc) -> list[dict]:
    """The AlexNet logits (one image per tieredImageNet-H class, no blur; shipped in the package unless
    ``hc.alexnet.dir`` names a folder) at temperatures ``hc.alexnet.temperatures`` (level = T)."""
    h = Hierarchy.shipped("tieredimagenet_h")
    logits, labels = D.alexnet_logits(hc.alexnet.dir)
    metrics = all_metrics(h, BASE_METRICS)
    rows = []
    for temperature in hc.alexnet.temperatures:
        P = softmax(logits, temperature)
        rows += _grid_rows(
            P, labels, h, metrics, dataset="alexnet", source="shipped", level=float(temperature)
        )
    return rows


def _write_rows(rows: list[dict], path: Path) -> None:
    import pandas as pd

    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


__all__ = ["RULES", "main"]
