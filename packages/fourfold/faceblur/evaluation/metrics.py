"""Evaluation metrics: detection AP and recall by face size, coverage by the anonymisation, image utility
outside the faces, and leak frames per track. Boxes are (N, 4) x1, y1, x2, y2 arrays; images uint8."""

from __future__ import annotations

import numpy as np

from fourfold.faceblur.tool.boxes import iou_matrix

SIZE_BINS = ((0, 16), (16, 32), (32, 64), (64, np.inf))  # face height in pixels
SIZE_NAMES = ("lt16", "16_32", "32_64", "ge64")


def match(pred_boxes, pred_scores, gt_boxes, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching by descending score (VOC/COCO style).

    Returns ``(tp, gt_hit)``: per prediction (in descending-score order) whether it is a true positive, and
    per ground-truth box whether some prediction matched it.
    """
    order = np.argsort(-np.asarray(pred_scores, float), kind="stable")
    ious = iou_matrix(np.asarray(pred_boxes, float).reshape(-1, 4)[order], gt_boxes)
    taken = np.zeros(ious.shape[1], bool)
    tp = np.zeros(len(order), bool)
    for i in range(len(order)):
        if ious.shape[1] == 0:
            break
        candidates = np.where(~taken, ious[i], -1.0)
        j = int(np.argmax(candidates))
        if candidates[j] >= iou:
            taken[j], tp[i] = True, True
    return tp, taken


def average_precision(predictions, ground_truth, iou: float = 0.5) -> float:
    """All-point interpolated AP over a dataset.

    ``predictions``: list of (boxes, scores) per image; ``ground_truth``: list of boxes per image.
    """
    scores, tps, n_gt = [], [], 0
    for (boxes, s), gt in zip(predictions, ground_truth):
        tp, _ = match(boxes, s, gt, iou)
        scores.extend(np.sort(np.asarray(s, float))[::-1])
        tps.extend(tp)
        n_gt += len(gt)
    if n_gt == 0:
        return float("nan")
    if not scores:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.asarray(tps, float)[order]
    cum_tp, cum_fp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = cum_tp / n_gt
    precision = cum_tp / np.maximum(cum_tp + cum_fp, 1e-12)
    # Precision envelope, then area under the step function of recall.
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def recall_by_size(predictions, ground_truth, threshold: float, iou: float = 0.5) -> dict[str, float]:
    """Recall at a score threshold, overall and per face-height bin (NaN for an empty bin)."""
    hits, heights = [], []
    for (boxes, s), gt in zip(predictions, ground_truth):
        keep = np.asarray(s, float) >= threshold
        _, hit = match(np.asarray(boxes).reshape(-1, 4)[keep], np.asarray(s)[keep], gt, iou)
        hits.extend(hit)
        heights.extend(
            np.asarray(gt, float).reshape(-1, 4)[:, 3] - np.asarray(gt, float).reshape(-1, 4)[:, 1]
        )
    hits, heights = np.asarray(hits, bool), np.asarray(heights, float)
    out = {"recall": float(hits.mean()) if len(hits) else float("nan")}
    for name, (lo, hi) in zip(SIZE_NAMES, SIZE_BINS):
        sel = (heights >= lo) & (heights < hi)
        out[f"recall_{name}"] = float(hits[sel].mean()) if sel.any() else float("nan")
    return out


def changed_mask(before: np.ndarray, after: np.ndarray, tol: int = 2) -> np.ndarray:
    """Pixels whose value changed by more than ``tol`` grey levels in any channel: bool (H, W)."""
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
    return diff.max(axis=2) > tol if diff.ndim == 3 else diff > tol


def face_changed_share(changed: np.ndarray, gt_boxes, hidden=None) -> np.ndarray:
    """Per ground-truth face: the share of its ellipse pixels that changed (float (N,); NaN if none visible).

    ``hidden`` (bool (H, W)) marks occluded pixels, which are left out of the count.
    """
    from fourfold.faceblur.tool.blur import ellipse_alpha

    shares = []
    for box in np.asarray(gt_boxes, float).reshape(-1, 4):
        window, alpha = ellipse_alpha(changed.shape, box)
        inside = alpha > 0
        if hidden is not None:
            inside &= ~hidden[window]
        shares.append(float(changed[window][inside].mean()) if inside.any() else float("nan"))
    return np.asarray(shares, float)


def face_coverage(changed: np.ndarray, gt_boxes, min_share: float = 0.9, hidden=None) -> np.ndarray:
    """Per ground-truth face: whether at least ``min_share`` of its visible ellipse pixels changed."""
    shares = face_changed_share(changed, gt_boxes, hidden)
    return np.nan_to_num(shares, nan=0.0) >= min_share


def outside_mask(shape, gt_boxes, dilate: float = 1.5) -> np.ndarray:
    """Pixels outside every face ellipse dilated by ``dilate``: bool (H, W)."""
    from fourfold.faceblur.tool.blur import ellipse_mask

    return ellipse_mask(shape[:2], gt_boxes, mask_scale=dilate) == 0


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB between uint8 images, optionally on the pixels of a bool mask (inf if identical)."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        diff = diff[where]
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim_outside(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Mean SSIM (grey, 7x7 window) over the pixels of a bool mask."""
    from skimage.metrics import structural_similarity

    grey_a = a.mean(axis=2) if a.ndim == 3 else a.astype(float)
    grey_b = b.mean(axis=2) if b.ndim == 3 else b.astype(float)
    _, full = structural_similarity(grey_a, grey_b, data_range=255.0, full=True)
    return float(full[where].mean()) if where.any() else float("nan")


def leak_frames(covered_by_track: dict[int, list[bool]]) -> dict[str, float]:
    """Frames where a visible tracked face was not covered: total, mean per track, share of tracks leaking."""
    if not covered_by_track:
        return {"leak_frames": 0.0, "leak_frames_per_track": float("nan"), "tracks_leaking": float("nan")}
    leaks = np.asarray([sum(not c for c in seq) for seq in covered_by_track.values()], float)
    return {
        "leak_frames": float(leaks.sum()),
        "leak_frames_per_track": float(leaks.mean()),
        "tracks_leaking": float((leaks > 0).mean()),
    }
