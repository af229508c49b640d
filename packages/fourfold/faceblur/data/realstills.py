"""Training stills from pseudo-labelled real photos (``realsources``): crops at many scales, real faces with
their context composited on real face-free backgrounds, and face-free crops as negatives.

Every still is RGB uint8 (size, size, 3) with face boxes (N, 4) x1 y1 x2 y2 in its pixels. Regions that a
detector reported but the labels do not trust (``ignore``) are painted out with a heavy blur before any
crop, so the detector is never taught that an unlabelled face is background. Photos split into train and
validation by their file's sha256 (video frames of one file stay together), so validation is held out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from fourfold.faceblur.data.synthetic import Face, degrade_frame, face_height, in_context, paste, render_face
from fourfold.faceblur.data.synthetic import face_bank as synthetic_face_bank

MIX = (
    0.4,
    0.25,
    0.15,
    0.2,
)  # shares of photo crops, real-face composites, synthetic-face composites, face-free crops
MIN_FACE_PX = 6  # smaller boxes after a crop are dropped from the labels
COMPOSITE_FACE_PX = 24  # smallest source face used in composites
FRAMES_PER_FILE = 4  # a video's frames together weigh as much as this many photos


@dataclass
class LabelledPhoto:
    """A real photo (RGB uint8) with its trusted face boxes, ignore regions already painted out."""

    image: np.ndarray
    faces: np.ndarray
    key: str
    sha256: str
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # painted-out regions, x1 y1 x2 y2


def paint_out(image: np.ndarray, boxes, grow: float = 1.2) -> np.ndarray:
    """A copy of ``image`` with each box (grown by ``grow`` about its centre) replaced by a strong blur of
    itself: no longer a face, not a hard-edged patch either."""
    out = image.copy()
    h, w = image.shape[:2]
    for x1, y1, x2, y2 in np.asarray(boxes, float).reshape(-1, 4):
        cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * grow, (y2 - y1) * grow
        a, b = int(max(0, cx - bw / 2)), int(max(0, cy - bh / 2))
        c, d = int(min(w, cx + bw / 2 + 1)), int(min(h, cy + bh / 2 + 1))
        if c - a < 2 or d - b < 2:
            continue
        k = int(max(bw, bh)) | 1
        out[b:d, a:c] = cv2.GaussianBlur(out[b:d, a:c], (k, k), 0)
    return out


def load_photos(rows: list[dict]) -> list[LabelledPhoto]:
    """Read the labelled rows of ``realsources.label_index`` into memory, ignore regions painted out."""
    from fourfold.faceblur.data.realsources import SourceImage, read_image

    photos = []
    for r in rows:
        source = SourceImage(r["package"], r["path"], r["file"], r["sha256"], r["frame"])
        image = read_image(source)
        if image is None:
            continue
        faces = np.asarray(r["faces"], float).reshape(-1, 4)
        ignore = np.asarray(r["ignore"], float).reshape(-1, 4)
        photos.append(LabelledPhoto(paint_out(image, ignore), faces, source.key, r["sha256"], ignore))
    return photos


def split_photos(photos: list[LabelledPhoto], val_share: float = 0.15):
    """(train, val) by a hash of the file's sha256: deterministic, and frames of one video stay together."""

    def bucket(p):
        return int(hashlib.sha256(("split:" + p.sha256).encode()).hexdigest()[:8], 16) % 1000

    train = [p for p in photos if bucket(p) >= val_share * 1000]
    val = [p for p in photos if bucket(p) < val_share * 1000]
    return train, val


def zoom_window(shape, faces, rng, size: int, face_px: tuple[int, int], centre=None):
    """(x0, y0, scale) of a square window, ``size`` output pixels, on an image of ``shape``: zoomed so a
    random face (or the box ``centre``) is log-uniform in ``face_px`` tall and lies anywhere inside, or
    (without faces, or in 15 % of cases) a random window of 30-100 % of the longer side."""
    h, w = shape[:2]
    if centre is not None or (len(faces) and rng.random() < 0.85):
        x1, y1, x2, y2 = centre if centre is not None else faces[rng.integers(len(faces))]
        scale = face_height(rng, *face_px) / max(y2 - y1, 1.0)
        side = size / scale
        cx = (x1 + x2) / 2 + rng.uniform(-0.4, 0.4) * side
        cy = (y1 + y2) / 2 + rng.uniform(-0.4, 0.4) * side
    else:
        side = rng.uniform(0.3, 1.0) * max(h, w)
        scale = size / side
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    return cx - side / 2, cy - side / 2, scale


def warp_window(image, x0: float, y0: float, scale: float, size: int, rng) -> np.ndarray:
    """The ``zoom_window`` as a (size, size) image; outside the image, one random colour (a reflected border
    would mirror faces into the still without labels)."""
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
    return cv2.warpAffine(
        image, matrix, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
    )


def crop_scaled(image, faces, rng, size: int, face_px: tuple[int, int], centre=None):
    """A square ``size`` window of ``image`` (``zoom_window``, ``warp_window``); boxes mapped and clipped,
    faces less than half inside dropped."""
    x0, y0, scale = zoom_window(image.shape, faces, rng, size, face_px, centre)
    out = warp_window(image, x0, y0, scale, size, rng)
    boxes = (np.asarray(faces, float).reshape(-1, 4) - [x0, y0, x0, y0]) * scale
    clipped = boxes.clip(0, size)
    full = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    ok = (kept >= 0.5 * np.maximum(full, 1e-9)) & (clipped[:, 3] - clipped[:, 1] >= MIN_FACE_PX)
    return out, clipped[ok]


def face_bank(photos: list[LabelledPhoto]) -> list[Face]:
    """Every labelled face at least ``COMPOSITE_FACE_PX`` tall whose context margin holds no other face."""
    from fourfold.faceblur.tool.boxes import iou_matrix

    bank = []
    for p in photos:
        for i, box in enumerate(p.faces):
            if box[3] - box[1] < COMPOSITE_FACE_PX:
                continue
            face = in_context(p.image, tuple(int(round(v)) for v in box), f"{p.sha256}|{p.key}#{i}")
            others = np.delete(p.faces, i, axis=0)
            if len(others):
                x1, y1, x2, y2 = box
                fx1, fy1 = face.box[0], face.box[1]
                ctx = np.array(
                    [[x1 - fx1, y1 - fy1, x1 - fx1 + face.image.shape[1], y1 - fy1 + face.image.shape[0]]]
                )
                inter = iou_matrix(ctx, others)
                if (inter > 0).any():
                    continue
            bank.append(face)
    return bank


def composite(
    rng, bank: list[Face], bank_odds, negatives: list[LabelledPhoto], size: int, face_px, max_faces: int = 5
):
    """Real faces with their context (1..max_faces) pasted on a crop of a face-free real photo."""
    canvas, _ = crop_scaled(
        negatives[rng.integers(len(negatives))].image, np.zeros((0, 4)), rng, size, face_px
    )
    boxes = []
    for _ in range(int(rng.integers(1, max_faces + 1))):
        h = face_height(rng, *face_px)
        sprite, alpha, (bx1, by1, bx2, by2) = render_face(
            bank[rng.choice(len(bank), p=bank_odds)], h, rng, angle=float(rng.uniform(-10, 10))
        )
        w = bx2 - bx1
        x = int(rng.integers(-w // 4, max(size - 3 * w // 4, -w // 4 + 1)))
        y = int(rng.integers(-h // 4, max(size - 3 * h // 4, -h // 4 + 1)))
        paste(canvas, sprite, alpha, x - bx1, y - by1)
        box = np.array([x, y, x + w, y + h], float).clip(0, size)
        if (box[2] - box[0]) >= 0.5 * w and (box[3] - box[1]) >= 0.5 * h:
            boxes = [b for b in boxes if not _covered(b, box)] + [box]
    return canvas, np.asarray(boxes, float).reshape(-1, 4)


def _covered(old: np.ndarray, new: np.ndarray) -> bool:
    """Whether a later sprite hides more than half of an earlier face."""
    ix = max(0.0, min(old[2], new[2]) - max(old[0], new[0]))
    iy = max(0.0, min(old[3], new[3]) - max(old[1], new[1]))
    return ix * iy > 0.5 * (old[2] - old[0]) * (old[3] - old[1])


LOW_RES_FACTORS = (2.0, 4.0)  # low_res stills: shrunk by a factor log-uniform in this range, then enlarged
LOW_RES_FACE_PX = 6  # ... never so far that a labelled face is shorter than this at the low resolution


def low_resolution(image: np.ndarray, boxes: np.ndarray, rng) -> np.ndarray:
    """The still as a distant camera sends it and the tool's 2x pass sees it: shrunk (area), degraded at
    that resolution (noise, blur, JPEG), enlarged back (bilinear); faces keep their boxes. The factor is
    log-uniform in ``LOW_RES_FACTORS``, capped so every face stays ``LOW_RES_FACE_PX`` tall (a face that
    small is no face to learn); without room for a factor of 1.5, only the degradations."""
    heights = boxes[:, 3] - boxes[:, 1] if len(boxes) else np.array([np.inf])
    top = min(LOW_RES_FACTORS[1], float(heights.min()) / LOW_RES_FACE_PX)
    if top < 1.5:
        return degrade_frame(image, rng)
    factor = float(np.exp(rng.uniform(np.log(min(LOW_RES_FACTORS[0], top)), np.log(top))))
    h, w = image.shape[:2]
    small = cv2.resize(
        image, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(degrade_frame(small, rng), (w, h), interpolation=cv2.INTER_LINEAR)


def finish(image: np.ndarray, boxes: np.ndarray, rng, low_res: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Flip, occasional greyscale, then the synthetic data's degradations (light, noise, blur, JPEG); with
    probability ``low_res`` those at a lower resolution (``low_resolution``). ``low_res`` 0 draws no extra
    random number: the stills of earlier rounds are unchanged."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
        w = image.shape[1]
        boxes = (
            np.column_stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]])
            if len(boxes)
            else boxes
        )
    if rng.random() < 0.1:
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        image = np.repeat(grey[..., None], 3, axis=2)
    image, boxes = np.ascontiguousarray(image), np.asarray(boxes, float).reshape(-1, 4)
    if low_res > 0 and rng.random() < low_res:
        return low_resolution(image, boxes, rng), boxes
    return degrade_frame(image, rng), boxes


def file_weights(photos: list[LabelledPhoto], cap: int = FRAMES_PER_FILE) -> np.ndarray:
    """Sampling probabilities that give one file (a video's frames) at most the weight of ``cap`` photos."""
    if not photos:
        return np.zeros(0)
    counts: dict[str, int] = {}
    for p in photos:
        counts[p.sha256] = counts.get(p.sha256, 0) + 1
    w = np.array([min(1.0, cap / counts[p.sha256]) for p in photos])
    return w / w.sum()


def make_real_stills(
    photos: list[LabelledPhoto],
    n: int,
    seed: int,
    size: int = 320,
    face_px=(8, 200),
    mix=MIX,
    extra_faces: tuple[Face, ...] = (),
    hard=(),
    hard_share: float = 0.0,
    low_res: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` stills (image, boxes) from ``photos``: shares ``mix`` of photo crops, composites of the photos'
    faces, composites of ``extra_faces`` (the synthetic training faces), all on face-free real photos, and
    face-free crops (a kind without material is skipped); the same inputs and seed give the same stills.

    ``hard`` (``hardnegatives.HardNegative`` on ``photos``), ``hard_share`` > 0: that share of the stills
    are crops around a false detection (zoomed like a face), the photo's faces labelled as usual.
    ``low_res``: that share of the stills is degraded at a lower resolution (``finish``)."""
    rng = np.random.default_rng([seed, 11])
    with_faces = [p for p in photos if len(p.faces)]
    negatives = [p for p in photos if not len(p.faces)]
    face_odds, negative_odds = file_weights(with_faces), file_weights(negatives)
    bank = face_bank(with_faces)
    bank_odds = file_weights(
        [LabelledPhoto(f.image, np.zeros((0, 4)), "", f.identity.split("|")[0]) for f in bank]
    )
    extra = list(extra_faces)
    extra_odds = np.full(len(extra), 1 / max(len(extra), 1))
    shares = np.asarray(mix, float) * [
        bool(with_faces),
        bool(bank and negatives),
        bool(extra and negatives),
        bool(negatives),
    ]
    if shares.sum() == 0:
        raise ValueError("no labelled real photos to build stills from: run the pseudo-labelling first")
    shares /= shares.sum()
    hard = list(hard) if hard_share > 0 else []
    if hard:
        shares = np.append(shares * (1 - hard_share), hard_share)
        hard_odds = file_weights([photos[h.photo] for h in hard])
    stills = []
    for _ in range(n):
        kind = rng.choice(len(shares), p=shares)
        if kind == 4:
            h = hard[rng.choice(len(hard), p=hard_odds)]
            p = photos[h.photo]
            image, boxes = crop_scaled(p.image, p.faces, rng, size, face_px, centre=h.box)
        elif kind == 0:
            p = with_faces[rng.choice(len(with_faces), p=face_odds)]
            image, boxes = crop_scaled(p.image, p.faces, rng, size, face_px)
        elif kind == 1:
            image, boxes = composite(rng, bank, bank_odds, negatives, size, face_px)
        elif kind == 2:
            image, boxes = composite(
                rng, extra, extra_odds, negatives, size, (face_px[0], min(face_px[1], 120))
            )
        else:
            p = negatives[rng.choice(len(negatives), p=negative_odds)]
            image, boxes = crop_scaled(p.image, p.faces, rng, size, face_px)
        stills.append(finish(image, boxes, rng, low_res))
    return stills


def default_manifest():
    """The real-photo evaluation manifest shipped in the package (may not exist yet)."""
    from importlib import resources

    return resources.files("fourfold.faceblur") / "resources" / "realset.json"


def training_split(
    folders: dict[str, str],
    cache: str,
    n_train: int,
    n_val: int,
    seed: int,
    size: int = 320,
    face_px=(8, 200),
    manifest=None,
    video_stride: int = 10,
    hard_detector=None,
    hard_share: float = 0.0,
    low_res: float = 0.0,
):
    """(train stills, val stills) from every real photo the packages ship, minus the evaluation manifest's
    files: discover, pseudo-label (cached), split by file, build stills. Logs what it used.

    ``hard_detector`` and ``hard_share`` > 0: a hard-negative round (``hardnegatives``): the detector's false
    detections on the *training* photos become that share of the training stills; ``low_res``: that share
    of the training stills is seen at a lower resolution (``low_resolution``)."""
    import logging

    from fourfold.faceblur.data.realsources import discover, label_index, without_excluded

    log = logging.getLogger(__name__)
    manifest = manifest or default_manifest()
    found = discover(folders, video_stride=video_stride)
    images = without_excluded(found, manifest)
    rows = label_index(images, cache)
    train, val = split_photos(load_photos(rows))
    # Synthetic training faces (LFW 0-79, t1.jpg's people) join them on real backgrounds, never on the
    # synthetic data's own backgrounds (scikit-image photos that the evaluation set lists as face-free).
    extra = synthetic_face_bank("train")
    log.info(
        "real photos: %d found, %d not in %s, %d usable; train %d (%d faces), val %d (%d faces)",
        len(found),
        len(images),
        manifest,
        len(rows),
        len(train),
        sum(len(p.faces) for p in train),
        len(val),
        sum(len(p.faces) for p in val),
    )
    hard = []
    if hard_detector is not None and hard_share > 0:
        from fourfold.faceblur.data.hardnegatives import mine, summary

        hard = mine(train, hard_detector)
        log.info("hard negatives (training photos only): %s", summary(train, hard))
    return (
        make_real_stills(
            train,
            n_train,
            seed,
            size,
            face_px,
            extra_faces=extra,
            hard=hard,
            hard_share=hard_share,
            low_res=low_res,
        ),
        make_real_stills(val, n_val, seed + 1, size, face_px, mix=MIX[:2] + (0.0,) + MIX[3:])
        if n_val
        else [],
    )
