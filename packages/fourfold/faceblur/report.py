"""Tables and figures under ``experiments/faceblur/`` from faceblur run folders.

``python -m fourfold.faceblur.report [--runs runs] [--out experiments/faceblur]``: for each experiment preset
(quick, paper) the newest successful run that evaluated every method (a run restricted with
``faceblur.eval.methods`` is skipped) gives ``results/table_<preset>.{csv,md}``, and its saved example
frames give ``figures/examples_<preset>.png``; ``figures/recall_by_size_<preset>.png`` plots the detectors'
recall per face height; the newest ``stage=realset`` run gives ``results/table_realset.{csv,md}`` (the
real-photo set). Without run folders, the Markdown tables are rebuilt from the committed CSVs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

METHODS = ("centerface", "yolo", "yolo_hold", "unet_l1", "unet_mse", "unet_mask")
LABELS = {
    "centerface": "CenterFace + blur (reference)",
    "yolo": "YOLO + blur (approach 1)",
    "yolo_hold": "YOLO + blur + hold (extension)",
    "unet_l1": "U-Net L1 (approach 2)",
    "unet_mse": "U-Net MSE (approach 2)",
    "unet_mask": "U-Net face mask + blur (approach 2, issue 21)",
}
COLUMNS = (
    "ap50",
    "recall",
    "recall_lt16",
    "recall_16_32",
    "recall_32_64",
    "recall_ge64",
    "coverage",
    "coverage_50",
    "covered_share",
    "residual_detect",
    "identity_leak",
    "identity_dist",
    "real_coverage",
    "real_residual_detect",
    "real_identity_leak",
    "real_identity_dist",
    "psnr_outside",
    "ssim_outside",
    "changed_outside",
    "clip_coverage",
    "leak_frames_per_track",
    "leak_frames_per_track_50",
    "tracks_leaking",
    "tracks_leaking_50",
    "fps",
)
PRESETS = ("quick", "paper")
REAL_METHODS = (
    "deface",
    "centerface",
    "centerface_v1",
    "centerface+mtcnn",
    "yolo",
    "yolo_real",
    "yolo_small",
    "unet_l1",
    "unet_l1_real",
    "unet_mse",
    "unet_mse_real",
    "unet_mask",
)
REAL_LABELS = {
    "deface": "deface 1.5 (reference: CenterFace, its defaults)",
    "centerface": "fourfold-blur default (CenterFace)",
    "centerface_v1": "fourfold-blur before issue 11 (CenterFace, mask 1.0, sigma 0.15)",
    "centerface+mtcnn": "fourfold-blur --method centerface+mtcnn",
    "yolo": "YOLO on synthetic composites (approach 1 before issue 11; weights/yolo_face.pt)",
    "unet_l1": "U-Net L1 (approach 2)",
    "unet_mse": "U-Net MSE (approach 2 before issue 21; weights/unet_mse.pt)",
    "yolo_real": "fourfold-blur --method yolo: YOLO on real photos + hard negatives, flip, thr. 0.45",
    "yolo_small": "fourfold-blur --method yolo --small-faces: + a small-face network in the 2x pass",
    "unet_l1_real": "U-Net L1 trained on approach-1 targets (weights/unet_l1_real.pt)",
    "unet_mse_real": "U-Net MSE trained on approach-1 targets (weights/unet_mse_real.pt)",
    "unet_mask": "fourfold-blur --method unet: U-Net face mask + the tool's blur (issue 21)",
}


def table_from_metrics(metrics: dict[str, float]):
    """One row per method, one column per metric (NaN where a metric does not apply)."""
    import pandas as pd

    rows = []
    for method in METHODS:
        if not any(k.startswith(f"{method}/") for k in metrics):
            continue
        row = {"method": LABELS[method]}
        row.update({c: metrics.get(f"{method}/{c}", float("nan")) for c in COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(table) -> str:
    from fourfold.core.tables import to_markdown

    shown = table.copy()
    for col in shown.columns[1:]:
        shown[col] = [("n/a" if not np.isfinite(v) else f"{v:.3g}") for v in shown[col]]
    return to_markdown(shown)


def write_table(table, stem: Path) -> None:
    from fourfold.core.files import atomic_path, atomic_write_text

    stem.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(stem.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_text(stem.with_suffix(".md"), _markdown(table))


def examples_figure(npz_path: Path, target: Path) -> None:
    """Rows: input, then each method; columns: held-out stills and one clip frame (synthetic only)."""
    from fourfold.core.plotting import new_figure, save_figure

    data = np.load(npz_path)
    inputs = list(data["input_stills"]) + list(data["input_clip"])
    rows = [("input", inputs)]
    for m in METHODS:
        if f"{m}_stills" in data:
            rows.append((m, list(data[f"{m}_stills"]) + list(data[f"{m}_clip"])))
    fig, axes = new_figure(len(rows), len(inputs), width=1.8, height=1.45)
    axes = np.atleast_2d(axes)
    for r, (name, images) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    save_figure(fig, target)


def recall_figure(table, target: Path) -> None:
    from fourfold.core.plotting import new_figure, save_figure

    bins = ["recall_lt16", "recall_16_32", "recall_32_64", "recall_ge64"]
    detectors = table[np.isfinite(table["ap50"].astype(float))]
    fig, ax = new_figure(width=5.0, height=3.0)
    width = 0.8 / max(len(detectors), 1)
    for i, (_, row) in enumerate(detectors.iterrows()):
        ax.bar(np.arange(4) + i * width, [row[b] for b in bins], width, label=row["method"])
    ax.set_xticks(np.arange(4) + width * (len(detectors) - 1) / 2, ["<16", "16-32", "32-64", ">=64"])
    ax.set_xlabel("face height (px)")
    ax.set_ylabel("recall at the operating threshold")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    save_figure(fig, target)


def strength_table(metrics: dict[str, float]):
    """Identity distance per operator and strength (rows), from ``strength/<variant>/identity_dist``."""
    import pandas as pd

    rows = [
        {"operator": key.split("/")[1], "identity_dist": value}
        for key, value in metrics.items()
        if key.startswith("strength/")
    ]
    return pd.DataFrame(rows)


def realset_table(metrics: dict[str, float]):
    """One row per method of a ``stage=realset`` run (``real/<method>/<metric>``), counts as "k of n"."""
    import pandas as pd

    def count(m, key, total):
        return f"{metrics[f'real/{m}/{key}']:.0f} of {metrics[f'real/{m}/{total}']:.0f}"

    rows = []
    for m in REAL_METHODS:
        if f"real/{m}/faces" not in metrics:
            continue
        rows.append(
            {
                "method": REAL_LABELS[m],
                "faces anonymised": count(m, "anonymised", "faces"),
                "changed enough": count(m, "changed_enough", "faces"),
                "still found": count(m, "still_found", "faces"),
                "identity recognisable": count(m, "recognisable", "identity_faces")
                if np.isfinite(metrics[f"real/{m}/recognisable"])
                else "n/a",
                "identity distance": f"{metrics[f'real/{m}/identity_dist']:.2f}",
                "false blur, mean (max) %": f"{100 * metrics[f'real/{m}/false_blur']:.3f} "
                f"({100 * metrics[f'real/{m}/false_blur_max']:.3f})",
                "face-free photos touched": count(m, "face_free_touched", "face_free_photos"),
                "anonymised, faces < 50 px": count(m, "anonymised_lt50", "faces_lt50"),
                "50-150 px": count(m, "anonymised_50_150", "faces_50_150"),
                ">= 150 px": count(m, "anonymised_ge150", "faces_ge150"),
                "s / image": f"{metrics[f'real/{m}/seconds_per_image']:.2f}",
            }
        )
    return pd.DataFrame(rows)


def write_realset(runs, out: Path) -> list[Path]:
    """``results/table_realset.{csv,md}``: each method's row from the newest ``stage=realset`` run that has
    it (so ``faceblur.realset.methods=[yolo]`` refreshes one row); without runs, the Markdown from the CSV."""
    import pandas as pd

    from fourfold.core.files import atomic_path, atomic_write_text
    from fourfold.core.tables import to_markdown

    stem = out / "results" / "table_realset"
    done = [r for r in runs if r.config.get("faceblur", {}).get("stage") == "realset"]
    if done:
        merged: dict[str, float] = {}
        for run in sorted(done, key=lambda r: r.path.name):  # newer runs override the methods they ran
            merged.update(run.metrics)
        table = realset_table(merged)
        stem.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(stem.with_suffix(".csv")) as tmp:
            table.to_csv(tmp, index=False)
    elif stem.with_suffix(".csv").is_file():
        table = pd.read_csv(stem.with_suffix(".csv"), dtype=str)
    else:
        return []
    atomic_write_text(stem.with_suffix(".md"), to_markdown(table))
    return [stem.with_suffix(".csv"), stem.with_suffix(".md")]


def _eval_methods(run) -> list[str]:
    return list(run.config.get("faceblur", {}).get("eval", {}).get("methods", []))


def build(runs_root: Path, out: Path) -> list[Path]:
    import pandas as pd

    from fourfold.core.runs import find_runs

    written = []
    runs = find_runs(runs_root, paper="faceblur") if runs_root.is_dir() else []
    for preset in PRESETS:
        stem = out / "results" / f"table_{preset}"
        candidates = [
            r
            for r in runs
            if r.preset == preset and r.config.get("faceblur", {}).get("stage") == "experiment"
        ]
        # A run restricted to some methods (faceblur.eval.methods=[yolo]) must not replace the full table.
        candidates = [r for r in candidates if set(METHODS) <= set(_eval_methods(r))]
        if candidates:
            run = max(candidates, key=lambda r: r.path.name)
            table = table_from_metrics(run.metrics)
            write_table(table, stem)
            written += [stem.with_suffix(".csv"), stem.with_suffix(".md")]
            strength = strength_table(run.metrics)
            if len(strength):
                strength_stem = out / "results" / f"identity_vs_strength_{preset}"
                write_table(strength, strength_stem)
                written += [strength_stem.with_suffix(".csv"), strength_stem.with_suffix(".md")]
            if (run.path / "examples.npz").is_file():
                examples_figure(run.path / "examples.npz", out / "figures" / f"examples_{preset}.png")
                written.append(out / "figures" / f"examples_{preset}.png")
            recall_figure(table, out / "figures" / f"recall_by_size_{preset}.png")
            written.append(out / "figures" / f"recall_by_size_{preset}.png")
        elif stem.with_suffix(".csv").is_file():
            write_table(pd.read_csv(stem.with_suffix(".csv")), stem)
            written.append(stem.with_suffix(".md"))
    written += write_realset(runs, out)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs", help="root of the run folders (default runs)")
    p.add_argument(
        "--out", default="experiments/faceblur", help="output folder (default experiments/faceblur)"
    )
    args = p.parse_args(argv)
    written = build(Path(args.runs), Path(args.out))
    for path in written:
        print(path)
    if not written:
        print("faceblur: no run folders and no committed results yet; run `make faceblur` first")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
