"""Confidence thresholds for approach 1's YOLO, chosen on held-out photos of the *training pool*.

``python -m fourfold.faceblur.evaluation.calibration [--weights FILE] [--flip] [--upscale [--upscale-weights
FILE]] [--shrink F,...]``
runs the tool's YOLO once at a low floor on the validation photos of ``realstills.split_photos`` (never
trained on, never the real-photo evaluation set) and keeps every pass apart (``detectors.Pass``), so that
a threshold (and with ``--upscale`` a separate one for the small-face pass at twice the frame's size) can
be swept exactly as the tool would apply them (``detectors.merge_passes``). ``--shrink`` adds copies of the
photos with faces shrunk by each factor, faces under ``MIN_FACE_PX`` then ignored: held-out small faces,
which the small-face pass is for (the validation photos have 2 faces under 50 px).
Per threshold (pair) it prints:
- *faces covered*: the share of labelled faces whose inscribed ellipse the tool's blur ellipses (mask scale
  1.6) cover to at least 90 %;
- *false blur*: the mean share of a photo's pixels that the ellipses of unmatched boxes cover, outside the
  labelled faces and ignore regions (grown by the same 1.6).
It then names the choice with the most faces covered whose mean false blur stays within ``--budget`` (ties:
the lowest thresholds); ``--write`` stores it (and ``--flip``) in a copy of the weights
(``yolo.with_threshold``), which the tool then uses.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np

FLOOR = 0.05
COVERED = 0.9
MIN_FACE_PX = 8  # a shrunk face under this height is an ignore region, not a face to find


@dataclass
class Scored:
    """One photo's detector passes at the floor and what is known in it."""

    shape: tuple[int, int]
    passes: list  # detectors.Pass
    faces: np.ndarray
    ignore: np.ndarray
    _allowed: dict = field(default_factory=dict, repr=False, compare=False)

    def allowed(self, mask_scale: float):
        """Where a blur is not false (the faces and ignore regions, grown by ``mask_scale``): computed once
        per scale, since a sweep asks for it at every threshold pair."""
        if mask_scale not in self._allowed:
            from fourfold.faceblur.tool.blur import ellipse_mask

            known = np.concatenate([self.faces.reshape(-1, 4), self.ignore.reshape(-1, 4)])
            self._allowed[mask_scale] = (
                ellipse_mask(self.shape, known, mask_scale=mask_scale) > 0 if len(known) else False
            )
        return self._allowed[mask_scale]


def photo_outcome(p: Scored, boxes: np.ndarray, mask_scale: float) -> tuple[int, float]:
    """(faces covered, share of the photo's pixels blurred outside faces and ignore regions) when the tool
    blurs ``boxes``."""
    from fourfold.faceblur.tool.blur import ellipse_alpha, ellipse_mask

    blurred = ellipse_mask(p.shape, boxes, mask_scale=mask_scale) > 0
    covered = 0
    for face in p.faces:
        window, alpha = ellipse_alpha(p.shape, face)
        inside = alpha > 0
        if inside.any() and blurred[window][inside].mean() >= COVERED:
            covered += 1
    false = blurred & ~p.allowed(mask_scale)
    return covered, float(false.mean())


def sweep(photos: list[Scored], grid, mask_scale: float, upscale_grid=None, iou: float = 0.5) -> list[dict]:
    """Every threshold of ``grid`` (with ``upscale_grid``: every pair with a small-face pass threshold of
    it): faces covered (share), false blur (mean %, max %)."""
    from fourfold.faceblur.tool.detectors import merge_passes

    n_faces = max(sum(len(p.faces) for p in photos), 1)
    rows = []
    for threshold in grid:
        for upscale in upscale_grid or [None]:
            covered, false = 0, []
            for p in photos:
                boxes, _ = merge_passes(p.passes, p.shape, threshold, upscale, iou)
                c, f = photo_outcome(p, boxes, mask_scale)
                covered, false = covered + c, false + [f]
            rows.append(
                {
                    "threshold": threshold,
                    "upscale": upscale,
                    "covered": covered / n_faces,
                    "false_mean": 100 * float(np.mean(false)),
                    "false_max": 100 * float(np.max(false)),
                }
            )
    return rows


def best(rows: list[dict], budget: float) -> dict | None:
    """The row with the most faces covered whose mean false blur (%) is within ``budget``; ties go to the
    lowest thresholds (a privacy tool's first duty is recall: faces harder than these validation faces
    score lower); None when no row is."""
    ok = [r for r in rows if r["false_mean"] <= budget]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["covered"], -r["threshold"], -(r["upscale"] or 0)))


def shrunk(photo, factor: float):
    """A copy of a ``LabelledPhoto`` shrunk by ``factor`` (area interpolation, as a camera further away
    would see it): boxes scaled, faces under ``MIN_FACE_PX`` tall moved to the ignore regions."""
    import cv2

    from fourfold.faceblur.data.realstills import LabelledPhoto

    h, w = photo.image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    image = cv2.resize(photo.image, size, interpolation=cv2.INTER_AREA)
    faces = np.asarray(photo.faces, float).reshape(-1, 4) * factor
    ignore = np.asarray(photo.ignore, float).reshape(-1, 4) * factor
    tall = (faces[:, 3] - faces[:, 1]) >= MIN_FACE_PX
    return LabelledPhoto(
        image, faces[tall], f"{photo.key}@{factor:g}", photo.sha256, np.concatenate([ignore, faces[~tall]])
    )


def score_photos(photos, detector) -> list[Scored]:
    """Each photo's passes of ``detector`` (a ``YoloDetector``) at ``FLOOR``."""
    return [Scored(p.image.shape[:2], detector.passes(p.image, FLOOR), p.faces, p.ignore) for p in photos]


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


def parse_factors(text: str) -> list[float]:
    factors = [float(v) for v in text.split(",") if v.strip()]
    if any(not 0 < f < 1 for f in factors):
        raise argparse.ArgumentTypeError(f"shrink factors lie in (0, 1), got {text!r}")
    return factors


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--weights", default=None, help="YOLO tensor-dict weights (default: the packaged yolo_face.pt)"
    )
    p.add_argument(
        "--budget", type=float, default=1.0, help="mean false blur allowed, percent of pixels (issue 11: 1)"
    )
    p.add_argument(
        "--write", default=None, help="write a copy of --weights carrying the chosen threshold(s) here"
    )
    p.add_argument(
        "--upscale",
        action="store_true",
        help="YOLO's small-face pass (twice a small frame's size), own threshold",
    )
    p.add_argument(
        "--upscale-weights",
        default=None,
        help="a second network for the small-face pass (with --upscale; --write embeds it)",
    )
    p.add_argument("--flip", action="store_true", help="YOLO's mirrored views, scores fused")
    p.add_argument(
        "--shrink",
        type=parse_factors,
        default=[],
        help="also the photos with faces shrunk by these factors, e.g. 0.5,0.25",
    )
    add_pool_arguments(p)
    args = p.parse_args(argv)
    if args.upscale_weights and not args.upscale:
        p.error("--upscale-weights is the small-face pass's network: give --upscale too")

    from fourfold.core.environment import configure_environment

    configure_environment()
    from fourfold.faceblur.tool.detectors import YoloDetector
    from fourfold.faceblur.tool.pipeline import DEFAULT_MASK_SCALE

    photos = validation_photos({"opencv-doc": args.opencv_doc}, args.cache)
    photos += [shrunk(ph, f) for f in args.shrink for ph in photos if len(ph.faces)]
    detector = YoloDetector(
        args.weights,
        threshold=FLOOR,
        upscale=args.upscale,
        flip=args.flip,
        upscale_weights=args.upscale_weights,
    )
    scored = score_photos(photos, detector)
    grid = [round(v, 2) for v in np.arange(0.25, 0.91, 0.05)]
    rows = sweep(scored, grid, DEFAULT_MASK_SCALE, grid if args.upscale else None, detector.iou)
    n_small = sum(int(((s.faces[:, 3] - s.faces[:, 1]) < 50).sum()) for s in scored)
    print(
        f"{len(photos)} validation photos (shrunk copies: {args.shrink or 'none'}), "
        f"{sum(len(s.faces) for s in scored)} faces ({n_small} under 50 px), "
        f"{sum(not len(s.faces) for s in scored)} face-free"
    )
    print(f"{'thresh':>6} {'2x':>6} {'covered':>8} {'false %':>8} {'max %':>7}")
    for r in rows:
        if r["upscale"] in (None, r["threshold"]) or r["threshold"] in (0.3, 0.45):
            up = "-" if r["upscale"] is None else f"{r['upscale']:.2f}"
            print(
                f"{r['threshold']:6.2f} {up:>6} {r['covered']:8.3f} "
                f"{r['false_mean']:8.3f} {r['false_max']:7.2f}"
            )
    if args.upscale:
        same = best([r for r in rows if r["upscale"] == r["threshold"]], args.budget)
        print(f"best with one threshold for every pass, within {args.budget:g} %: {same}")
    choice = best(rows, args.budget)
    print(f"best within {args.budget:g} % mean false blur: {choice}")
    if args.write:
        if choice is None:
            print("no threshold within the budget: nothing written")
            return 1
        from fourfold.faceblur.models.yolo import with_threshold
        from fourfold.faceblur.tool.detectors import packaged_weights

        source = args.weights or packaged_weights("yolo_face.pt")
        written = with_threshold(
            source,
            args.write,
            float(choice["threshold"]),
            flip=args.flip,
            upscale_threshold=choice["upscale"],
            upscale_weights=args.upscale_weights,
        )
        print(
            f"wrote {written} (threshold {choice['threshold']:.2f}, "
            f"small-face pass {choice['upscale']}, flip {args.flip})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
