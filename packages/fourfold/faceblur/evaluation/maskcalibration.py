"""Mask settings for approach 2's face-mask U-Net, chosen on held-out photos of the *training pool*.

``python -m fourfold.faceblur.evaluation.maskcalibration --weights FILE [--write OUT]`` runs the U-Net
once per working size on the validation photos of ``realstills.split_photos`` (never trained on, never
the real-photo evaluation set) and sweeps the mask threshold and the smallest region kept. Per setting
it prints:
- *faces covered*: the share of labelled faces with at least 90 % of their inscribed ellipse changed by at
  least 4 grey levels in the output (``realeval``'s "changed enough");
- *false blur*: the mean share of a photo's pixels changed outside the labelled faces and ignore regions
  (grown by the tool's 1.6, as in ``calibration``).
It names the setting with the most faces covered whose mean false blur stays within ``--budget`` (ties: the
lowest threshold, then the smallest size: recall first, then speed), and ``--write`` stores it in a copy of
the weights (``mask_settings``), which the tool then uses.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace

import numpy as np

CHANGE_MIN = 4  # grey levels (realeval.CHANGE_MIN)
COVERED = 0.9  # share of the inscribed ellipse (realeval.COVER)


def photo_outcome(image, out, faces, ignore, mask_scale: float) -> tuple[int, float]:
    """(faces covered, share of the photo's pixels changed outside faces and ignore regions) of one output."""
    from fourfold.faceblur.tool.blur import ellipse_alpha, ellipse_mask

    changed = np.abs(out.astype(np.int16) - image.astype(np.int16)).max(axis=2)
    covered = 0
    for face in faces:
        window, alpha = ellipse_alpha(image.shape[:2], face)
        inside = alpha > 0
        if inside.any() and (changed[window][inside] >= CHANGE_MIN).mean() >= COVERED:
            covered += 1
    known = np.concatenate([np.reshape(faces, (-1, 4)), np.reshape(ignore, (-1, 4))])
    allowed = ellipse_mask(image.shape[:2], known, mask_scale=mask_scale) > 0 if len(known) else False
    return covered, float(((changed > 0) & ~allowed).mean())


def sweep(model, photos, sizes, thresholds, min_areas, base) -> list[dict]:
    """Every (size, threshold, min_area): faces covered (share), false blur (mean %, max %).
    ``photos``: ``realstills.LabelledPhoto``; ``base``: the ``MaskSettings`` the others are taken from."""
    import cv2

    from fourfold.faceblur.models.unet import network_size
    from fourfold.faceblur.tool.maskblur import composite_blur

    n_faces = max(sum(len(p.faces) for p in photos), 1)
    rows = []
    for size in sizes:
        probs = []
        for p in photos:
            prob = _probability(model, p.image, size)
            probs.append(prob)
        for threshold, min_area in itertools.product(thresholds, min_areas):
            settings = replace(base, size=size, threshold=threshold, floor=0.6 * threshold, min_area=min_area)
            covered, false = 0, []
            for p, prob in zip(photos, probs):
                h, w = p.image.shape[:2]
                nh, nw = network_size(h, w, size)
                full = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
                out, _ = composite_blur(p.image, full, settings, float(np.sqrt(h * w / (nh * nw))))
                c, f = photo_outcome(p.image, out, p.faces, p.ignore, base.mask_scale)
                covered, false = covered + c, false + [f]
            false_mean, false_max = 100 * float(np.mean(false)), 100 * float(np.max(false))
            outcome = {"covered": covered / n_faces, "false_mean": false_mean, "false_max": false_max}
            rows.append({**settings.as_dict(), **outcome})
    return rows


def _probability(model, image, size):
    """The network-resolution face probability (``unet.face_probability`` without the upsampling)."""
    import cv2
    import torch

    from fourfold.faceblur.models.unet import network_size, normalise

    h, w = image.shape[:2]
    nh, nw = network_size(h, w, size)
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR)
    with torch.inference_mode():
        return torch.sigmoid(model(normalise(small)))[0, 0].numpy()


def best(rows: list[dict], budget: float) -> dict | None:
    """The row with the most faces covered whose mean false blur (%) is within ``budget``; ties go to the
    lowest threshold, then the smallest size; None when no row is within the budget."""
    ok = [r for r in rows if r["false_mean"] <= budget]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["covered"], -r["threshold"], -r["size"], -r["min_area"]))


def main(argv: list[str] | None = None) -> int:
    from fourfold.faceblur.evaluation.calibration import add_pool_arguments, validation_photos

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="mask-head U-Net weights (train.models [unet_mask])")
    p.add_argument("--sizes", default="384,512,640", help="working sizes (longer side) to try, pixels")
    p.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7,0.8", help="mask thresholds to try")
    p.add_argument("--min-areas", default="8,24,64", help="smallest region cores to try, network pixels")
    p.add_argument(
        "--budget", type=float, default=1.0, help="mean false blur allowed, percent of pixels (as YOLO's: 1)"
    )
    p.add_argument("--write", default=None, help="write a copy of --weights with the chosen settings here")
    add_pool_arguments(p)
    args = p.parse_args(argv)

    from fourfold.core.environment import configure_environment

    configure_environment()
    from fourfold.faceblur.models.unet import load_unet, with_mask_settings

    model = load_unet(args.weights)
    if model.head != "mask":
        raise SystemExit(f"{args.weights} is not a mask-head U-Net: nothing to calibrate")
    photos = validation_photos({"opencv-doc": args.opencv_doc}, args.cache)
    rows = sweep(
        model,
        photos,
        [int(v) for v in args.sizes.split(",")],
        [float(v) for v in args.thresholds.split(",")],
        [int(v) for v in args.min_areas.split(",")],
        model.mask_settings,
    )
    print(
        f"{len(photos)} validation photos, {sum(len(q.faces) for q in photos)} faces, "
        f"{sum(not len(q.faces) for q in photos)} face-free"
    )
    print(f"{'size':>5} {'thr':>5} {'area':>5} {'covered':>8} {'false %':>8} {'max %':>7}")
    for r in rows:
        print(f"{r['size']:5d} {r['threshold']:5.2f} {r['min_area']:5d} {r['covered']:8.3f} "
              f"{r['false_mean']:8.3f} {r['false_max']:7.2f}")  # fmt: skip
    choice = best(rows, args.budget)
    print(f"best within {args.budget:g} % mean false blur: {choice}")
    if args.write:
        if choice is None:
            print("no setting within the budget: nothing written")
            return 1
        settings = {k: choice[k] for k in model.mask_settings.as_dict()}
        written = with_mask_settings(args.weights, args.write, settings)
        print(f"wrote {written} with {settings}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
