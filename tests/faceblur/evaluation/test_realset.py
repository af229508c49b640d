"""The real-photo evaluation set: the manifest's provenance, the agreement rule, and the real-set metrics on
hand-made cases (fake judges); loading the photos themselves needs the packages (skipped without)."""

import json

import numpy as np
import pytest

from fourfold.faceblur.evaluation import realeval, realset
from fourfold.faceblur.evaluation.realset import RealImage


def test_manifest_records_provenance_for_every_file():
    manifest = realset.load_manifest()
    images = manifest["images"]
    names = [e["name"] for e in images]
    assert len(names) == len(set(names))
    for e in images:
        for key in (
            "package",
            "version",
            "path",
            "sha256",
            "licence",
            "layout",
            "size",
            "faces",
            "eye_check",
        ):
            assert e.get(key) not in (None, ""), (e["name"], key)
        assert len(e["sha256"]) == 64
        width, height = e["size"]
        for x1, y1, x2, y2 in e["faces"]:
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, e["name"]
        assert (e["kind"] == "faces") == bool(e["faces"]), e["name"]
    sources = {e["name"]: e for e in images if "derived_from" not in e}
    for e in images:
        if "derived_from" in e:  # shrunk copies name the same file, so excluding the file excludes them
            base = sources[e["derived_from"]]
            assert (e["package"], e["path"], e["sha256"]) == (base["package"], base["path"], base["sha256"])
            assert np.allclose(e["faces"], np.asarray(base["faces"]) * e["resize"], atol=0.06)
    layouts = {e["layout"] for e in images}
    assert {"grey uint8", "rgba uint8", "rgb uint16"} <= layouts
    faces = sum(len(e["faces"]) for e in images)
    assert faces >= 20 and sum(e["kind"] == "face_free" for e in images) >= 15


def test_training_never_sees_the_set():
    """The training pool's exclusion (realsources) reads every file of this manifest."""
    realsources = pytest.importorskip("fourfold.faceblur.data.realsources")
    digests, keys = realsources.excluded_keys(realset.MANIFEST)
    manifest = json.loads(realset.MANIFEST.read_text())
    assert {e["sha256"] for e in manifest["images"]} <= digests
    assert {f"{e['package']}:{e['path']}" for e in manifest["images"]} <= keys


def test_agreement_rule():
    shape = (200, 300)
    cf = np.array([[10, 10, 50, 60], [100, 100, 140, 150], [200, 20, 220, 40]], float)
    cf_s = np.array([0.9, 0.9, 0.3])
    mt = np.array([[12, 8, 52, 58], [250, 150, 290, 199], [-5, 95, 140, 150]], float)
    mt_s = np.array([0.99, 0.95, 0.5])
    faces, disputed = realset.agree(cf, cf_s, mt, mt_s, shape)
    assert np.allclose(faces, [[11, 9, 51, 59]])  # the mean of the agreeing pair
    listed = {(d["detector"], tuple(d["box"])) for d in disputed}
    assert ("centerface", (100.0, 100.0, 140.0, 150.0)) in listed  # MTCNN's partner is below 0.9
    assert ("centerface", (200.0, 20.0, 220.0, 40.0)) in listed
    assert ("mtcnn", (250.0, 150.0, 290.0, 199.0)) in listed
    assert not any(d["detector"] == "mtcnn" and d["score"] < realset.REPORT_MT for d in disputed)


def test_layout_views():
    grey16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    rgb = realset.to_rgb8(grey16)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8 and (rgb[..., 0] == grey16 >> 8).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert realset.to_rgb8(rgba).shape == (2, 2, 3)
    assert realset.layout(rgba) == "rgba uint8" and realset.layout(grey16) == "grey uint16"


class FakeJudges:
    """Finds the face wherever its pixels are unchanged (a stand-in for CenterFace and MTCNN)."""

    def __init__(self, original, box):
        self.original, self.box = original, box
        self.centerface = self

    def detect(self, rgb):
        x1, y1, x2, y2 = (int(v) for v in self.box)
        same = np.array_equal(rgb[y1:y2, x1:x2], self.original[y1:y2, x1:x2])
        return (np.array([self.box], float), np.array([0.9])) if same else (np.zeros((0, 4)), np.zeros(0))

    def mtcnn(self, rgb):
        return np.zeros((0, 4)), np.zeros(0)


def _images():
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    free = rng.integers(0, 255, (50, 40), dtype=np.uint8)
    box = np.array([[20.0, 20.0, 80.0, 90.0]])
    return [
        RealImage("face", "faces", face, face, box),
        RealImage("free", "face_free", free, realset.to_rgb8(free), np.zeros((0, 4))),
    ], box[0]


def test_metrics_on_hand_made_methods():
    images, box = _images()
    judges = FakeJudges(images[0].rgb, box)

    def nothing(image):
        return image.data.copy()

    def fill_face_and_a_strip(image):
        out = image.data.copy()
        if image.kind == "faces":
            out[20:90, 20:80] = 0
        else:
            out[:5] = 255 - out[:5]  # 5 of 50 rows: 10 % false blur
        return out

    keep = realeval.evaluate_method(nothing, images, judges, keep_faces=True)
    assert keep["anonymised"] == 0 and keep["still_found"] == 1 and keep["changed_enough"] == 0
    assert (
        keep["false_blur"] == 0
        and keep["face_free_touched"] == 0
        and not keep["per_face"]["face#0"]["anonymised"]
    )
    filled = realeval.evaluate_method(fill_face_and_a_strip, images, judges)
    assert filled["anonymised"] == 1 and filled["anonymised_50_150"] == 1 and filled["faces_lt50"] == 0
    assert filled["false_blur"] == pytest.approx(0.1) and filled["face_free_touched"] == 1


def test_a_method_that_changes_the_layout_is_caught():
    images, box = _images()

    def to_rgb(image):
        return realset.to_rgb8(image.data)

    with pytest.raises(AssertionError, match="layout"):
        realeval.evaluate_method(to_rgb, images, FakeJudges(images[0].rgb, box))


@pytest.mark.slow
def test_the_photos_load_and_match_the_manifest():
    if not realset.available():
        pytest.skip("the real-photo set's packages are not installed (make install)")
    images = realset.load()
    manifest = {e["name"]: e for e in realset.load_manifest()["images"]}
    for image in images:
        assert list(image.data.shape[1::-1]) == manifest[image.name]["size"], image.name
