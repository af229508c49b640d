"""Training stills for the face-mask U-Net (approach 2, issue 21): real photos of the training pool, their
faces zoomed to every scale and pasted onto face-free photos, and face-free crops as negatives.

The photos are ``realstills.LabelledPhoto`` of the training pool (``realsources``: every photo and video
frame that packages ship, the real-photo evaluation set's files excluded, pseudo-labelled by CenterFace and
confirmed by MTCNN, doubtful detections painted out). The teacher's boxes are those labels, found at the
photo's full resolution where the detectors are most reliable and carried through every zoom, so a face
shrunk to 10 px keeps its mask although no detector would find it there any more.

Kinds of still (``MIX``, shares):
- ``photo``: a square window of a photo with faces, zoomed so that one face is log-uniform in ``face_px``
  tall (every face touching the window keeps its full, unclipped box: the tool's ellipse reaches past the
  window's edge as it would past the frame's);
- ``paste``: 1-5 real faces of the pool with their context pasted onto a face-free photo (copy-paste), at
  log-uniform sizes, so that small faces are common;
- ``synthetic``: the same with the synthetic data's training faces (LFW crops, ``t1.jpg``'s people);
- ``negative``: a window of a face-free photo (hard negatives: textures, text, logos, animals, objects);
- ``hard``: a window around a false detection of approach 1's YOLO on a training photo, zoomed like a face
  (``hardnegatives.mine``), when such detections are given.
Then the photo data's flips, occasional greyscale and light, noise, blur and JPEG degradations
(``realstills.finish``). Stills are RGB uint8 (size, size, 3) with boxes (N, 4) x1 y1 x2 y2 in pixels.

``teacher_targets`` turns a still and its boxes into what the default tool would output: its mask (the
ellipses of ``mask_scale`` x each box) and its blurred frame.
"""

from __future__ import annotations

import logging

import numpy as np

from fourfold.faceblur.data.realstills import (
    LabelledPhoto,
    composite,
    face_bank,
    file_weights,
    finish,
    warp_window,
    zoom_window,
)
from fourfold.faceblur.models.facemask import TOOL_MASK_SCALE, TOOL_SIGMA_RATIO
from fourfold.faceblur.tool.blur import blur_paper, ellipse_mask, fast_gaussian

log = logging.getLogger(__name__)

KINDS = ("photo", "paste", "synthetic", "negative", "hard")
MIX = {"photo": 0.3, "paste": 0.3, "synthetic": 0.05, "negative": 0.25, "hard": 0.1}


def zoom_crop(image, faces, rng, size: int, face_px: tuple[int, int], centre=None):
    """A square ``size`` window of ``image`` (``realstills.zoom_window``: a face, or the box ``centre``,
    zoomed to log-uniform ``face_px`` tall) and the boxes of every face that touches it, unclipped."""
    faces = np.asarray(faces, float).reshape(-1, 4)
    x0, y0, scale = zoom_window(image.shape, faces, rng, size, face_px, centre)
    out = warp_window(image, x0, y0, scale, size, rng)
    boxes = (faces - [x0, y0, x0, y0]) * scale
    touches = (boxes[:, 2] > 0) & (boxes[:, 0] < size) & (boxes[:, 3] > 0) & (boxes[:, 1] < size)
    return out, boxes[touches]


class MaskStillMaker:
    """Draws one training still per call from a generator: ``maker(rng) -> (image, boxes)``.

    ``photos``: training ``LabelledPhoto``s (with and without faces); ``extra_faces``: ``synthetic.Face``s
    for the ``synthetic`` kind; ``hard``: ``hardnegatives.HardNegative``s on ``photos``. A kind without
    material gets no share; the rest are renormalised."""

    def __init__(self, photos, size: int, face_px=(10, 160), mix=None, extra_faces=(), hard=()):
        mix = dict(MIX if mix is None else mix)
        unknown = set(mix) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown still kinds {sorted(unknown)}; choose from {KINDS}")
        self.photos, self.size, self.face_px = list(photos), int(size), tuple(face_px)
        self.with_faces = [p for p in self.photos if len(p.faces)]
        self.negatives = [p for p in self.photos if not len(p.faces)]
        self.bank = face_bank(self.with_faces)
        self.extra, self.hard = list(extra_faces), list(hard)
        available = {
            "photo": bool(self.with_faces),
            "paste": bool(self.bank and self.negatives),
            "synthetic": bool(self.extra and self.negatives),
            "negative": bool(self.negatives),
            "hard": bool(self.hard),
        }
        shares = np.array([mix.get(k, 0.0) * available[k] for k in KINDS], float)
        if shares.sum() <= 0:
            raise ValueError("no material for any kind of still: are there labelled training photos?")
        self.shares = shares / shares.sum()
        self.face_odds, self.negative_odds = file_weights(self.with_faces), file_weights(self.negatives)
        self.bank_odds = file_weights(
            [LabelledPhoto(f.image, np.zeros((0, 4)), "", f.identity.split("|")[0]) for f in self.bank]
        )
        self.extra_odds = np.full(len(self.extra), 1 / max(len(self.extra), 1))
        if self.hard:
            self.hard_odds = file_weights([self.photos[h.photo] for h in self.hard])

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        kind = KINDS[rng.choice(len(KINDS), p=self.shares)]
        size, face_px = self.size, self.face_px
        if kind == "photo":
            p = self.with_faces[rng.choice(len(self.with_faces), p=self.face_odds)]
            image, boxes = zoom_crop(p.image, p.faces, rng, size, face_px)
        elif kind == "paste":
            image, boxes = composite(rng, self.bank, self.bank_odds, self.negatives, size, face_px)
        elif kind == "synthetic":
            px = (face_px[0], min(face_px[1], 120))  # LFW faces are 25 px: no larger than the data's own
            image, boxes = composite(rng, self.extra, self.extra_odds, self.negatives, size, px)
        elif kind == "negative":
            p = self.negatives[rng.choice(len(self.negatives), p=self.negative_odds)]
            image, boxes = zoom_crop(p.image, p.faces, rng, size, face_px)
        else:
            h = self.hard[rng.choice(len(self.hard), p=self.hard_odds)]
            p = self.photos[h.photo]
            image, boxes = zoom_crop(p.image, p.faces, rng, size, face_px, centre=h.box)
        return finish(image, boxes, rng)


def make_pool(maker: MaskStillMaker, n: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``n`` stills (uint8 (n, size, size, 3)) and their boxes; still ``i`` depends only on (seed, i)."""
    images = np.empty((n, maker.size, maker.size, 3), np.uint8)
    boxes = []
    for i in range(n):
        image, b = maker(np.random.default_rng([seed, 21, i]))
        images[i] = image
        boxes.append(np.asarray(b, np.float32).reshape(-1, 4))
    return images, boxes


def teacher_targets(
    image: np.ndarray,
    boxes,
    background_sigma: float,
    mask_scale: float = TOOL_MASK_SCALE,
    sigma_ratio: float = TOOL_SIGMA_RATIO,
) -> tuple[np.ndarray, np.ndarray]:
    """(blurred frame uint8 (H, W, 3), mask float32 (H, W) in {0, 1}) of one still.

    The mask is the union of the ellipses the tool paints (``mask_scale`` x each box); inside it the
    blurred frame is the tool's output (``sigma_ratio`` x each box's smaller side); outside it is the whole
    still blurred with ``background_sigma`` (pixels), so that a false mask costs image loss too."""
    mask = ellipse_mask(image.shape[:2], boxes, mask_scale=mask_scale)
    blurred = fast_gaussian(image, max(float(background_sigma), 0.5))
    if len(np.asarray(boxes).reshape(-1, 4)):
        faces = blur_paper(image, boxes, mask_scale=mask_scale, sigma_ratio=sigma_ratio, fast=True)
        blurred = np.where(mask[..., None] > 0, faces, blurred)
    return blurred, (mask > 0).astype(np.float32)


def training_photos(folders: dict[str, str], cache: str, manifest=None, video_stride: int = 10):
    """(train, val) ``LabelledPhoto``s of the training pool: every package photo and video frame minus the
    evaluation manifest's files, pseudo-labelled (cached), split by file (``realstills.split_photos``)."""
    from fourfold.faceblur.data.realsources import discover, label_index, without_excluded
    from fourfold.faceblur.data.realstills import default_manifest, load_photos, split_photos

    manifest = manifest or default_manifest()
    found = discover(folders, video_stride=video_stride)
    images = without_excluded(found, manifest)
    train, val = split_photos(load_photos(label_index(images, cache)))
    log.info(
        "training pool: %d files and frames found, %d not in %s; train %d photos (%d faces), val %d (%d)",
        len(found), len(images), manifest, len(train), sum(len(p.faces) for p in train), len(val),
        sum(len(p.faces) for p in val),
    )  # fmt: skip
    return train, val


def build_pools(
    folders, cache, size: int, face_px, mix, n: int, n_val: int, seed: int, hard_detector=None
) -> tuple[tuple, tuple]:
    """(training pool, validation pool), each ``make_pool``'s (images, boxes): ``n`` stills of the training
    photos and ``n_val`` of the held-out validation photos (no hard negatives, no synthetic faces there).
    ``hard_detector`` (``detect(rgb) -> (boxes, scores)``): its false detections on the *training* photos
    are the ``hard`` kind (``hardnegatives.mine``)."""
    from fourfold.faceblur.data.synthetic import face_bank

    train, val = training_photos(folders, cache)
    hard = []
    if hard_detector is not None:
        from fourfold.faceblur.data.hardnegatives import mine, summary

        hard = mine(train, hard_detector)
        log.info("hard negatives (training photos only): %s", summary(train, hard))
    maker = MaskStillMaker(train, size, face_px, mix, extra_faces=face_bank("train"), hard=hard)
    pool = make_pool(maker, n, seed)
    val_mix = {k: v for k, v in dict(mix).items() if k not in ("synthetic", "hard")}
    val_pool = make_pool(MaskStillMaker(val, size, face_px, val_mix), n_val, seed + 1)
    log.info("U-Net stills: %d (%d faces), validation %d (%d faces)", n, sum(len(b) for b in pool[1]),
             n_val, sum(len(b) for b in val_pool[1]))  # fmt: skip
    return pool, val_pool
