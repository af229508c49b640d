"""Real-photo training sources: held-out files, the evaluation manifest's exclusion, pseudo-label merging."""

import json

import numpy as np
import pytest

from fourfold.faceblur.data import realsources as rs
from fourfold.faceblur.data.realstills import default_manifest


def test_agreement_rules_decide_face_or_ignore():
    face = [10, 10, 50, 60]
    cf_boxes = [face, [100, 100, 140, 150], [200, 0, 240, 50], [300, 300, 340, 350]]
    cf_scores = [0.6, 0.9, 0.4, 0.1]  # agreed; alone but confident; unsure; below the floor
    mt_boxes = [[12, 11, 51, 62], [400, 400, 440, 450], [210, 5, 245, 50]]
    mt_scores = [0.99, 0.95, 0.5]  # agrees with the first; MTCNN alone; below MTCNN's floor
    faces, ignore = rs.merge_pseudo_labels(cf_boxes, cf_scores, mt_boxes, mt_scores)
    assert faces.tolist() == [face, [100, 100, 140, 150]]
    assert sorted(ignore.tolist()) == [[200, 0, 240, 50], [400, 400, 440, 450]]


def test_without_mtcnn_a_moderate_centerface_box_is_not_trusted():
    faces, ignore = rs.merge_pseudo_labels([[0, 0, 20, 20]], [0.6], np.zeros((0, 4)), np.zeros(0))
    assert len(faces) == 0 and ignore.tolist() == [[0, 0, 20, 20]]
    faces, ignore = rs.merge_pseudo_labels(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)), np.zeros(0))
    assert faces.shape == (0, 4) and ignore.shape == (0, 4)


def _source(package, path, digest):
    return rs.SourceImage(package, path, f"/nowhere/{path}", digest)


def test_manifest_excludes_by_sha256_and_by_package_path(tmp_path):
    manifest = tmp_path / "realset.json"
    manifest.write_text(
        json.dumps(
            {
                "photos": [
                    {"package": "deb:opencv-doc", "path": "examples/data/messi5.jpg", "sha256": "AA"},
                    {"file": {"sha256": "bb"}},
                ]
            }
        )
    )
    images = [
        _source("opencv-doc", "examples/data/messi5.jpg", "zz"),  # same package (bare name) and path
        _source("opencv-doc", "examples/data/other.jpg", "aa"),  # same bytes as a manifest file
        _source("opencv-doc", "clip.avi#frame10", "bb"),  # a frame of a manifest video
        _source("opencv-doc", "kept.jpg", "cc"),
    ]
    assert [im.path for im in rs.without_excluded(images, manifest)] == ["kept.jpg"]
    assert rs.without_excluded(images, tmp_path / "absent.json") == images


def test_held_out_photos_are_never_discovered(tmp_path):
    (tmp_path / "tests" / "test_images").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    image = np.zeros((8, 8, 3), np.uint8)
    import cv2

    cv2.imwrite(str(tmp_path / "tests" / "test_images" / "obama.jpg"), image)
    cv2.imwrite(str(tmp_path / "docs" / "fig.png"), image)
    found = rs._walk("face-recognition", tmp_path, video_stride=0)
    assert [im.path for im in found] == ["docs/fig.png"]
    assert rs.held_out("scikit-image", "data/astronaut.png")
    assert rs.held_out("insightface", "data/images/Tom_Hanks_54745.png")
    assert not rs.held_out("insightface", "data/images/t1.jpg")


def test_evaluation_clips_are_held_out_by_content_wherever_they_lie(tmp_path, monkeypatch):
    import cv2

    for name in ("kept.png", "renamed_copy_of_the_clip.png"):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), len(name), np.uint8))
    held = rs.sha256(tmp_path / "renamed_copy_of_the_clip.png")
    monkeypatch.setitem(rs.HELD_OUT_SHA256, held, "an evaluation file")
    assert [im.path for im in rs._walk("opencv-doc", tmp_path, video_stride=10)] == ["kept.png"]
    # the surveillance clip of issue 21 is among them (Debian opencv-doc 4.6.0's examples/data/vtest.avi)
    assert (
        rs.HELD_OUT_SHA256["45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"] == "vtest.avi"
    )


def test_photo_filter_rejects_diagrams_keeps_photos():
    import skimage.data

    diagram = np.full((200, 300, 3), 255, np.uint8)
    diagram[50:150, 100:200] = (30, 60, 200)
    assert not rs.looks_like_photo(diagram)
    assert rs.looks_like_photo(skimage.data.coffee())
    grey = skimage.data.camera()
    assert rs.looks_like_photo(np.repeat(grey[..., None], 3, axis=2))


def test_label_index_caches_results(tmp_path):
    import cv2
    import skimage.data

    path = tmp_path / "coffee.png"
    cv2.imwrite(str(path), skimage.data.coffee()[..., ::-1])
    source = rs.SourceImage("scikit-image", "coffee.png", str(path), rs.sha256(path))
    calls = []

    def labeller(image):
        calls.append(image.shape)
        return np.array([[1.0, 2.0, 30.0, 40.0]]), np.zeros((0, 4))

    cache = tmp_path / "labels.json"
    rows = rs.label_index([source], cache, labeller=labeller)
    again = rs.label_index([source], cache, labeller=labeller)
    assert len(calls) == 1 and rows == again
    assert rows[0]["faces"] == [[1.0, 2.0, 30.0, 40.0]] and rows[0]["height"] == 400


@pytest.mark.slow
def test_training_sources_and_evaluation_manifest_are_disjoint():
    """No file the training data reads (installed packages, plus unpacked folders when present) is listed in
    the real-photo evaluation manifest."""
    manifest = default_manifest()
    if not manifest.is_file():
        pytest.skip("the real-photo evaluation manifest (resources/realset.json) does not exist yet")
    from pathlib import Path

    folders = {"opencv-doc": "runs/faceblur-sources/opencv-doc/usr/share/doc/opencv-doc"}
    folders = {k: v for k, v in folders.items() if Path(v).is_dir()}
    training = rs.without_excluded(rs.discover(folders, video_stride=0), manifest)
    digests, keys = rs.excluded_keys(manifest)
    assert digests or keys, "the manifest names no file"
    assert not {im.sha256 for im in training} & digests
    assert not {im.key for im in training} & keys


@pytest.mark.slow
def test_pseudo_labels_find_the_six_people_of_t1():
    """CenterFace confirmed by MTCNN on insightface's t1.jpg: the six faces measured by hand-checked boxes
    (``synthetic.T1_FACES``), nothing else trusted."""
    from fourfold.faceblur.data.synthetic import T1_FACES, t1_photo
    from fourfold.faceblur.tool.boxes import iou_matrix

    faces, _ = rs.PseudoLabeller()(t1_photo())
    assert len(faces) == len(T1_FACES)
    assert (iou_matrix(np.array(T1_FACES, float), faces).max(axis=1) >= 0.5).all()


def test_shipped_training_labels_name_no_evaluation_file():
    """The committed pseudo-labels (``resources/train_labels.json.gz``, seeded by ``make faceblur-sources``)
    cover only training files: none is in the evaluation manifest or held out."""
    import gzip
    from importlib import resources

    path = resources.files("fourfold.faceblur") / "resources" / "train_labels.json.gz"
    with gzip.open(str(path), "rt") as fh:
        rows = json.load(fh)
    assert rows and all({"sha256", "path"} <= row.keys() for row in rows)
    manifest = default_manifest()
    if manifest.is_file():
        digests, keys = rs.excluded_keys(manifest)
        assert not {row["sha256"] for row in rows} & digests
        assert not {path for key in keys for path in [key.split(":", 1)[1]]} & {row["path"] for row in rows}
