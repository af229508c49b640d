"""Every method on the real-photo evaluation set (``realset``), next to deface 1.5 itself.

Per face (ground truth: the set's agreed boxes), on the method's output seen as 8-bit RGB:
- *changed enough*: at least ``COVER`` of the pixels of the ellipse inscribed in the face box changed by
  at least ``CHANGE_MIN`` (of 255) in some channel;
- *still found*: CenterFace (score >= 0.5) or MTCNN (probability >= 0.9), the two real-trained detectors
  that labelled the set, find a box at IoU >= ``FOUND_IOU`` on the output;
- *anonymised* = changed enough and not found;
- *recognisable*: dlib's face embedding (``identity``) of the output within 0.6 of the original's, for faces
  at least ``ID_MIN_PX`` tall (the embedding's landmarks need that much).
On face-free photos, *false blur* is the share of pixels the method changed (any change).

Run: ``python -m fourfold experiment=faceblur/realset`` (metrics.json in a run folder; ``make report``
turns the newest into ``experiments/faceblur/results/table_realset.{csv,md}``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from fourfold.faceblur.evaluation.realset import RealImage

log = logging.getLogger(__name__)

CHANGE_MIN = 4  # a pixel changed: some channel moved by at least this much (8-bit)
COVER = 0.9  # a face changed enough: this share of its inscribed ellipse changed
FOUND_IOU = 0.4
JUDGE_CF, JUDGE_MT = 0.5, 0.9
ID_MIN_PX = 32
SIZE_BINS = ((0, 50, "lt50"), (50, 150, "50_150"), (150, np.inf, "ge150"))  # face height, pixels


class DefaceReference:
    """deface 1.5's own anonymiser, in process: CenterFace (OpenCV backend), threshold 0.2, mask scale
    1.3, box-filter blur inside the ellipse, exactly its ``anonymize_frame`` defaults. 8-bit RGB only."""

    name = "deface"

    def __init__(self):
        from deface.centerface import CenterFace

        self.model = CenterFace(backend="opencv")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        from deface.deface import anonymize_frame

        dets, _ = self.model(rgb, threshold=0.2)
        frame = rgb.copy()
        anonymize_frame(
            dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True, draw_scores=False,
            replaceimg=None, mosaicsize=20,
        )  # fmt: skip
        return frame


def tool_method(pipeline):
    """A ``fourfold-blur`` pipeline as a method on a stored image (its own layout in and out)."""
    from fourfold.faceblur.tool.pipeline import anonymize_image

    def run(image: RealImage) -> np.ndarray:
        return anonymize_image(pipeline, image.data).frame

    return run


def deface_method():
    ref = DefaceReference()

    def run(image: RealImage) -> np.ndarray:
        return ref(image.rgb)

    run.rgb_view = True  # works on (and returns) the 8-bit RGB view, not the stored layout
    return run


def ellipse_share(changed: np.ndarray, box) -> float:
    from fourfold.faceblur.tool.blur import ellipse_alpha

    window, alpha = ellipse_alpha(changed.shape, box)
    inside = alpha > 0
    return float(changed[window][inside].mean()) if inside.any() else 0.0


def found(judges, rgb: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per face: does CenterFace (>= JUDGE_CF) or MTCNN (>= JUDGE_MT) find it on ``rgb``?"""
    from fourfold.faceblur.tool.boxes import iou_matrix

    cf, cf_s = judges.centerface.detect(rgb)
    mt, mt_s = judges.mtcnn(rgb)
    boxes = np.concatenate([cf[cf_s >= JUDGE_CF], mt[mt_s >= JUDGE_MT]]).reshape(-1, 4)
    if len(boxes) == 0 or len(faces) == 0:
        return np.zeros(len(faces), bool)
    return iou_matrix(faces, boxes).max(axis=1) >= FOUND_IOU


def evaluate_method(run, images: list[RealImage], judges, probe=None, keep_faces=False) -> dict:
    """The per-method numbers (see the module docstring); with ``keep_faces``, also ``per_face``:
    ``{"<image>#<k>": {"height", "changed_share", "still_found", "identity_dist", "anonymised"}}``."""
    from fourfold.faceblur.tool.pipeline import rgb8, split_alpha

    rows, false_blur, touched, seconds = [], [], 0, 0.0
    for image in images:
        t0 = time.perf_counter()
        out = run(image)
        seconds += time.perf_counter() - t0
        if getattr(run, "rgb_view", False):
            out_rgb = out
        elif out.shape != image.data.shape or out.dtype != image.data.dtype:
            raise AssertionError(f"{image.name}: the layout changed, {image.data.shape} -> {out.shape}")
        else:
            out_rgb = rgb8(split_alpha(out)[0])
        diff = np.abs(out_rgb.astype(np.int16) - image.rgb.astype(np.int16)).max(axis=2)
        if image.kind == "face_free":
            false_blur.append(float((diff > 0).mean()))
            touched += bool((diff > 0).any())
            continue
        hit = found(judges, out_rgb, image.faces)
        for k, (box, still) in enumerate(zip(image.faces, hit)):
            share = ellipse_share(diff >= CHANGE_MIN, box)
            height = box[3] - box[1]
            dist = np.nan
            if probe is not None and height >= ID_MIN_PX:
                dist = probe.distance(image.rgb, out_rgb, box)
            rows.append((f"{image.name}#{k}", height, share, bool(still), dist))
    heights = np.array([r[1] for r in rows])
    changed = np.array([r[2] >= COVER for r in rows])
    still = np.array([r[3] for r in rows])
    dists = np.array([r[4] for r in rows], float)
    anonymised = changed & ~still
    res = {
        "faces": float(len(rows)),
        "anonymised": float(anonymised.sum()),
        "changed_enough": float(changed.sum()),
        "still_found": float(still.sum()),
        "identity_faces": float(np.isfinite(dists).sum()),
        "recognisable": float((dists[np.isfinite(dists)] < 0.6).sum()) if probe else float("nan"),
        "identity_dist": float(np.nanmean(dists)) if probe and np.isfinite(dists).any() else float("nan"),
        "false_blur": float(np.mean(false_blur)) if false_blur else float("nan"),
        "false_blur_max": float(np.max(false_blur)) if false_blur else float("nan"),
        "face_free_touched": float(touched),
        "face_free_photos": float(len(false_blur)),
        "seconds_per_image": seconds / len(images),
    }
    for low, high, name in SIZE_BINS:
        inside = (heights >= low) & (heights < high)
        res[f"faces_{name}"] = float(inside.sum())
        res[f"anonymised_{name}"] = float((anonymised & inside).sum())
    missed = [f"{r[0]}@{r[1]:.0f}px" for r, ok in zip(rows, anonymised) if not ok]
    log.info("faces not anonymised: %s", ", ".join(missed) or "none")
    if keep_faces:
        keys = ("height", "changed_share", "still_found", "identity_dist")
        res["per_face"] = {
            r[0]: {**dict(zip(keys, r[1:])), "anonymised": bool(ok)} for r, ok in zip(rows, anonymised)
        }
    return res


# Rows for packaged weights trained on real photos (issue 11 items 3-4), when their files exist.
REAL_TRAINED = {
    "yolo_real": ("yolo", "yolo_face_real.pt"),
    "unet_l1_real": ("unet", "unet_l1_real.pt"),
    "unet_mse_real": ("unet", "unet_mse_real.pt"),
    "unet_mask": ("unet", "unet_mask.pt"),  # the face-mask U-Net (issue 21)
}


def build_methods(names, weights: dict | None = None) -> dict:
    """Methods by name: ``deface`` (reference), ``centerface`` (the tool's defaults), ``centerface_v1``
    (the tool before issue 11: mask scale 1.0, exact Gaussian), ``centerface+mtcnn``, ``yolo``,
    ``unet_l1``, ``unet_mse`` (packaged weights unless ``weights`` names files), ``yolo_small`` (the tool's
    ``--method yolo --small-faces``), and the ``REAL_TRAINED``
    rows (skipped, with a warning, while their packaged file does not exist)."""
    from fourfold.faceblur.tool.detectors import TOOL_YOLO_WEIGHTS, packaged_weights
    from fourfold.faceblur.tool.pipeline import make_pipeline

    weights = weights or {}
    out = {}
    for name in names:
        if name == "deface":
            out[name] = deface_method()
        elif name == "centerface_v1":
            out[name] = tool_method(make_pipeline("centerface", mask_scale=1.0, sigma_ratio=0.15, fast=False))
        elif name in ("centerface", "centerface+mtcnn"):
            out[name] = tool_method(make_pipeline(name, weights=weights.get(name)))
        elif name == "yolo":  # approach 1 as trained on synthetic composites (the experiment's YOLO)
            path = weights.get(name) or packaged_weights("yolo_face.pt")
            out[name] = tool_method(make_pipeline("yolo", weights=str(path)))
        elif name in ("unet_l1", "unet_mse"):
            path = weights.get(name) or packaged_weights(f"{name}.pt")
            out[name] = tool_method(make_pipeline("unet", weights=str(path)))
        elif name == "yolo_small":  # the tool's --method yolo --small-faces
            path = weights.get(name) or packaged_weights(TOOL_YOLO_WEIGHTS)
            out[name] = tool_method(make_pipeline("yolo", weights=str(path), small_faces=True))
        elif name in REAL_TRAINED:
            method, file = REAL_TRAINED[name]
            path = Path(weights.get(name) or packaged_weights(file))
            if not path.is_file():
                log.warning("real set: no %s, row %s skipped", path, name)
                continue
            out[name] = tool_method(make_pipeline(method, weights=str(path)))
        else:
            raise ValueError(f"unknown real-set method {name!r}")
    return out


def evaluate(names, weights: dict | None = None) -> dict[str, float]:
    """Metrics ``real/<method>/<metric>`` for every method; the set's size under ``real/n_*``."""
    from fourfold.faceblur.evaluation import identity, realset

    images = realset.load()
    judges = realset.Judges()
    probe = identity.IdentityProbe() if identity.available() else None
    if probe is None:
        log.warning("identity not measured: install dlib-bin and face-recognition-models (make install)")
    out = {
        "real/n_faces": float(sum(len(im.faces) for im in images)),
        "real/n_face_free": float(sum(im.kind == "face_free" for im in images)),
        "real/n_images": float(len(images)),
    }
    for name, run in build_methods(names, weights).items():
        t0 = time.perf_counter()
        res = evaluate_method(run, images, judges, probe)
        out.update({f"real/{name}/{k}": v for k, v in res.items()})
        log.info("real set, %s (%.0f s): %s", name, time.perf_counter() - t0, res)
    return out


def main(argv: list[str] | None = None) -> int:
    """Per-face details for a few methods:
    ``python -m fourfold.faceblur.evaluation.realeval deface centerface``."""
    import argparse

    from fourfold.faceblur.evaluation import identity, realset

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument(
        "methods", nargs="+", help="deface, centerface, centerface_v1, centerface+mtcnn, yolo, ..."
    )
    args = p.parse_args(argv)
    images, judges = realset.load(), realset.Judges()
    probe = identity.IdentityProbe() if identity.available() else None
    faces = {}
    for name, run in build_methods(args.methods).items():
        faces[name] = evaluate_method(run, images, judges, probe, keep_faces=True)["per_face"]
    print(f"{'face':>22} {'px':>4}  " + "  ".join(f"{m + ' anon/dist':>26}" for m in faces))
    for face, first in next(iter(faces.values())).items():
        cells = [
            f"{'yes' if f[face]['anonymised'] else 'NO':>20} {f[face]['identity_dist']:5.2f}"
            for f in faces.values()
        ]
        print(f"{face:>22} {first['height']:4.0f}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
