"""The experiment's measurements: every method on held-out stills, clips and package photos.

A *method* maps a frame to ``(output, changed mask, detections or None)``; detections are all boxes and scores
above a low floor, so AP can be computed, while only those above the operating threshold are anonymised.
Metric names are ``<method>/<metric>``; see ``evaluate_stills`` and ``evaluate_clips``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fourfold.faceblur.evaluation import metrics
from fourfold.faceblur.tool.blur import anonymize, ellipse_mask

AP_FLOOR = 0.01  # detections kept for AP (the operating threshold is applied on top)


@dataclass
class DetectorMethod:
    """Approach 1 (and the CenterFace reference): detect above a floor, anonymise above ``threshold``."""

    name: str
    detector: object  # detect(frame) -> boxes, scores (built with threshold AP_FLOOR)
    threshold: float
    blur_kwargs: dict = field(default_factory=dict)
    hold: int = 0

    def __post_init__(self):
        from fourfold.faceblur.tool.detectors import BoxHold

        self._hold = BoxHold(self.detector, self.hold) if self.hold else None

    def reset(self):
        if self._hold:
            self._hold.reset()

    def __call__(self, frame):
        boxes, scores = self.detector.detect(frame)
        keep = scores >= self.threshold
        used, used_scores = boxes[keep], scores[keep]
        if self._hold:
            used, used_scores = self._hold.update(used, used_scores)
        out = anonymize(frame, used, **self.blur_kwargs)
        changed = ellipse_mask(frame.shape[:2], used, mask_scale=self.blur_kwargs.get("mask_scale", 1.0)) > 0
        return out, changed, (boxes, scores)


@dataclass
class UNetMethod:
    """Approach 2: the U-Net anonymiser; its change mask is what it blurred."""

    name: str
    anonymizer: object

    def reset(self):
        pass

    def __call__(self, frame):
        out, changed = self.anonymizer.anonymize(frame)
        return out, changed, None


def _residual(independent, frame, gt, iou) -> np.ndarray:
    """Per ground-truth face: still found by the independent detector on the anonymised frame."""
    boxes, scores = independent.detect(frame)
    _, hit = metrics.match(boxes, scores, gt, iou)
    return hit


def evaluate_stills(
    method, stills, *, independent=None, identity=None, iou=0.5, coverage_share=0.9, identity_min_px=32
) -> dict[str, float]:
    """AP50/recall by size (detectors), coverage, residual detectability, identity leakage (faces at least
    ``identity_min_px`` high, when an ``identity`` probe is given), PSNR/SSIM outside faces, fps."""
    preds, gts, covered, covered_half, covered_share, residual = [], [], [], [], [], []
    psnrs, ssims, outside_changed = [], [], []
    seconds, distances = 0.0, []
    for image, gt in stills:
        method.reset()  # stills are unrelated: no box is held from one to the next
        t0 = time.perf_counter()
        out, changed, det = method(image)
        seconds += time.perf_counter() - t0
        gts.append(gt)
        if det is not None:
            preds.append(det)
        shares = metrics.face_changed_share(changed, gt)
        covered.extend(np.nan_to_num(shares, nan=0.0) >= coverage_share)
        covered_half.extend(np.nan_to_num(shares, nan=0.0) >= 0.5)
        covered_share.extend(shares[np.isfinite(shares)])
        if independent is not None and len(gt):
            residual.extend(_residual(independent, out, gt, iou))
        if identity is not None:
            for box in gt:
                if box[3] - box[1] >= identity_min_px:
                    distances.append(identity.distance(image, out, box))
        outside = metrics.outside_mask(image.shape, gt)
        psnrs.append(min(metrics.psnr(image, out, outside), 100.0))
        ssims.append(metrics.ssim_outside(image, out, outside))
        outside_changed.append(float(changed[outside].mean()) if outside.any() else 0.0)
    res = {
        "coverage": float(np.mean(covered)) if covered else float("nan"),
        "covered_share": float(np.mean(covered_share)) if covered_share else float("nan"),
        "coverage_50": float(np.mean(covered_half)) if covered_half else float("nan"),
        "residual_detect": float(np.mean(residual)) if residual else float("nan"),
        "psnr_outside": float(np.mean(psnrs)),
        "ssim_outside": float(np.nanmean(ssims)),
        "changed_outside": float(np.mean(outside_changed)),
        "fps_frames": len(stills) / seconds if seconds else float("nan"),
    }
    if distances:
        from fourfold.faceblur.evaluation.identity import SAME_PERSON

        res["identity_leak"] = float(np.mean(np.asarray(distances) < SAME_PERSON))
        res["identity_dist"] = float(np.mean(distances))
    if preds:
        res["ap50"] = metrics.average_precision(preds, gts, iou)
        res.update(metrics.recall_by_size(preds, gts, method.threshold, iou))
    return res


def evaluate_clips(method, clips, *, iou=0.5, coverage_share=0.9, min_visible=0.5) -> dict[str, float]:
    """Per visible tracked face and frame: covered or leaked. Returns leak frames per track, clip coverage,
    clip recall (detectors) and processing fps."""
    covered_by_track: dict[tuple[int, int], list[bool]] = {}
    half_by_track: dict[tuple[int, int], list[bool]] = {}  # the same at a lenient 50 % share
    hits, seconds, n_frames = [], 0.0, 0
    for c, clip in enumerate(clips):
        method.reset()
        for frame, truth in zip(clip.frames, clip.truth):
            t0 = time.perf_counter()
            _, changed, det = method(frame)
            seconds += time.perf_counter() - t0
            n_frames += 1
            visible = truth[truth[:, 5] >= min_visible] if len(truth) else truth
            if not len(visible):
                continue
            shares = metrics.face_changed_share(changed, visible[:, 1:5], hidden=clip.occluder)
            shares = np.nan_to_num(shares, nan=0.0)
            for tid, share in zip(visible[:, 0].astype(int), shares):
                covered_by_track.setdefault((c, tid), []).append(bool(share >= coverage_share))
                half_by_track.setdefault((c, tid), []).append(bool(share >= 0.5))
            if det is not None:
                keep = det[1] >= method.threshold
                _, hit = metrics.match(det[0][keep], det[1][keep], visible[:, 1:5], iou)
                hits.extend(hit)
    res = metrics.leak_frames(covered_by_track)
    res.update({f"{k}_50": v for k, v in metrics.leak_frames(half_by_track).items()})
    flat = [ok for seq in covered_by_track.values() for ok in seq]
    res["clip_coverage"] = float(np.mean(flat)) if flat else float("nan")
    res["fps"] = n_frames / seconds if seconds else float("nan")
    if hits:
        res["clip_recall"] = float(np.mean(hits))
    return res


def example_frames(method, images) -> np.ndarray:
    """The method's outputs for a few unrelated images (uint8 (K, H, W, 3)), for the before/after figure."""
    outputs = []
    for image in images:
        method.reset()  # unrelated images: no box may be held over from the previous one
        outputs.append(method(image)[0])
    return np.stack(outputs)


def strength_study(probe, photos, sigma_ratios=(0.02, 0.05, 0.1, 0.15, 0.25)) -> dict[str, float]:
    """Mean identity distance (original vs anonymised, ground-truth boxes) per operator and strength:
    the paper Gaussian at each ``sigma_ratio``, the authors' code variant, mosaic and solid."""
    variants = {f"blur_{r:g}": {"mode": "blur", "sigma_ratio": r} for r in sigma_ratios}
    variants.update({"code": {"mode": "code"}, "mosaic": {"mode": "mosaic"}, "solid": {"mode": "solid"}})
    out = {}
    for name, kwargs in variants.items():
        d = [
            probe.distance(img, anonymize(img, boxes, **kwargs), box)
            for img, boxes in photos
            for box in boxes
        ]
        out[f"strength/{name}/identity_dist"] = float(np.mean(d))
    return out
