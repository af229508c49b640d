"""Confidence thresholds for approach 1's YOLO, chosen on held-out photos of the *training pool*.

``python -m fourfold.faceblur.evaluation.calibration [--weights FILE]`` runs the tool's YOLO (with its image
pyramid) once at a low floor on the validation photos of ``realstills.split_photos`` (never trained on,
never the real-photo evaluation set) and sweeps a threshold for small boxes and one for large boxes
(taller than ``--split`` of the image's height: a large false box blurs a large share of a photo).
Per pair it prints:
- *faces covered*: the share of labelled faces whose inscribed ellipse the tool's blur ellipses (mask scale
  1.6) cover to at least 90 %;
- *false blur*: the mean share of a photo's pixels that the ellipses of unmatched boxes cover, outside the
  labelled faces and ignore regions (grown by the same 1.6).
It then names the pair, and the single threshold (what the tool applies), with the most faces covered
whose false blur stays within ``--budget`` (ties: the lowest thresholds); ``--write`` stores that single
threshold (and ``--flip``) in a copy of the weights (``yolo.with_threshold``), which the tool then uses.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

FLOOR = 0.05
COVERED = 0.9


@dataclass
class Scored:
    """One photo's detections at the floor and what is known in it."""

    shape: tuple[int, int]
    boxes: np.ndarray
    scores: np.ndarray
    faces: np.ndarray
    ignore: np.ndarray


def keep_mask(
    boxes: np.ndarray, scores: np.ndarray, height: int, small_t: float, large_t: float, split: float
):
    """Which detections pass: boxes taller than ``split`` x ``height`` need ``large_t``, others
    ``small_t``."""
    tall = (boxes[:, 3] - boxes[:, 1]) > split * height
    return np.where(tall, scores >= large_t, scores >= small_t)


def photo_outcome(p: Scored, keep: np.ndarray, mask_scale: float) -> tuple[int, float]:
    """(faces covered, share of the photo's pixels blurred outside faces and ignore regions)."""
    from fourfold.faceblur.tool.blur import ellipse_alpha, ellipse_mask

    boxes = p.boxes[keep]
    blurred = ellipse_mask(p.shape, boxes, mask_scale=mask_scale) > 0
    covered = 0
    for face in p.faces:
        window, alpha = ellipse_alpha(p.shape, face)
        inside = alpha > 0
        if inside.any() and blurred[window][inside].mean() >= COVERED:
            covered += 1
    known = np.concatenate([p.faces.reshape(-1, 4), p.ignore.reshape(-1, 4)])
    allowed = ellipse_mask(p.shape, known, mask_scale=mask_scale) > 0 if len(known) else False
    false = blurred & ~allowed
    return covered, float(false.mean())


def sweep(photos: list[Scored], grid, split: float, mask_scale: float) -> list[dict]:
    """Every (small, large) threshold pair of ``grid``: faces covered (share), false blur (mean %, max %)."""
    n_faces = max(sum(len(p.faces) for p in photos), 1)
    rows = []
    for small_t in grid:
        for large_t in grid:
            if large_t < small_t:
                continue
            covered, false = 0, []
            for p in photos:
                c, f = photo_outcome(
                    p, keep_mask(p.boxes, p.scores, p.shape[0], small_t, large_t, split), mask_scale
                )
                covered, false = covered + c, false + [f]
            rows.append(
                {
                    "small": small_t,
                    "large": large_t,
                    "covered": covered / n_faces,
                    "false_mean": 100 * float(np.mean(false)),
                    "false_max": 100 * float(np.max(false)),
                }
            )
    return rows


def best(rows: list[dict], budget: float, single: bool = False) -> dict | None:
    """The row with the most faces covered whose mean false blur (%) is within ``budget``; ties go to the
    lowest thresholds (a privacy tool's first duty is recall: faces harder than these validation faces
    score lower); ``single``: only rows with one threshold for all sizes (what the tool applies); None
    when no row is."""
    ok = [r for r in rows if r["false_mean"] <= budget and (not single or r["small"] == r["large"])]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["covered"], -r["small"], -r["large"]))


def score_photos(photos, detector) -> list[Scored]:
    out = []
    for p in photos:
        boxes, scores = detector.detect(p.image)
        out.append(Scored(p.image.shape[:2], boxes, scores, p.faces, p.ignore))
    return out


def validation_photos(folders: dict[str, str], cache: str):
    """The held-out part of the training pool (``realstills.split_photos``), evaluation files excluded."""
    from fourfold.faceblur.data.realsources import discover, label_index, without_excluded
    from fourfold.faceblur.data.realstills import default_manifest, load_photos, split_photos

    images = without_excluded(discover(folders), default_manifest())
    return split_photos(load_photos(label_index(images, cache)))[1]


def add_pool_arguments(p: argparse.ArgumentParser) -> None:
    """``--cache`` and ``--opencv-doc``: where the training pool's labels and photos are."""
    p.add_argument("--cache", default="runs/faceblur-sources/labels.json", help="pseudo-label cache")
    p.add_argument(
        "--opencv-doc",
        default="runs/faceblur-sources/opencv-doc/usr/share/doc/opencv-doc",
        help="unpacked Debian opencv-doc folder (make faceblur-sources)",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--weights", default=None, help="YOLO tensor-dict weights (default: the packaged yolo_face.pt)"
    )
    p.add_argument(
        "--split", type=float, default=0.25, help="boxes taller than this share of the image are large"
    )
    p.add_argument(
        "--budget", type=float, default=1.0, help="mean false blur allowed, percent of pixels (issue 11: 1)"
    )
    p.add_argument(
        "--write", default=None, help="write a copy of --weights carrying the chosen threshold here"
    )
    p.add_argument("--upscale", action="store_true", help="YOLO's extra pass at twice a small frame's size")
    p.add_argument("--flip", action="store_true", help="YOLO's mirrored views, scores fused")
    add_pool_arguments(p)
    args = p.parse_args(argv)

    from fourfold.core.environment import configure_environment

    configure_environment()
    from fourfold.faceblur.tool.detectors import YoloDetector
    from fourfold.faceblur.tool.pipeline import DEFAULT_MASK_SCALE

    photos = validation_photos({"opencv-doc": args.opencv_doc}, args.cache)
    scored = score_photos(
        photos, YoloDetector(args.weights, threshold=FLOOR, upscale=args.upscale, flip=args.flip)
    )
    grid = [round(v, 2) for v in np.arange(0.25, 0.91, 0.05)]
    rows = sweep(scored, grid, args.split, DEFAULT_MASK_SCALE)
    print(
        f"{len(photos)} validation photos, {sum(len(s.faces) for s in scored)} faces, "
        f"{sum(not len(s.faces) for s in scored)} face-free; large = taller than {args.split:g} of the image"
    )
    print(f"{'small':>6} {'large':>6} {'covered':>8} {'false %':>8} {'max %':>7}")
    for r in rows:
        if r["small"] == r["large"] or r["large"] >= 0.9:
            print(
                f"{r['small']:6.2f} {r['large']:6.2f} {r['covered']:8.3f} "
                f"{r['false_mean']:8.3f} {r['false_max']:7.2f}"
            )
    print(f"best pair within {args.budget:g} % mean false blur: {best(rows, args.budget)}")
    choice = best(rows, args.budget, single=True)
    print(f"best single threshold within {args.budget:g} % mean false blur: {choice}")
    if args.write:
        if choice is None:
            print("no single threshold within the budget: nothing written")
            return 1
        from fourfold.faceblur.models.yolo import with_threshold
        from fourfold.faceblur.tool.detectors import packaged_weights

        source = args.weights or packaged_weights("yolo_face.pt")
        written = with_threshold(source, args.write, float(choice["small"]), flip=args.flip)
        print(f"wrote {written} (threshold {choice['small']:.2f}, flip {args.flip})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
