"""WIDER FACE / FDDB parsers and converters on fixture files, including images with zero faces."""

import math

import numpy as np
import pytest

from fourfold.faceblur.data import formats

WIDER = """0--Parade/0_Parade_marchingband_1_849.jpg
1
449 330 122 149 0 0 0 0 0 0
0--Parade/0_Parade_Parade_0_904.jpg
0
0 0 0 0 0 0 0 0 0 0
0--Parade/0_Parade_marchingband_1_799.jpg
3
78 221 7 8 2 0 0 0 0 0
78 238 14 17 2 0 0 0 0 0
113 212 11 15 2 0 0 1 0 0
"""

FDDB = """2002/08/11/big/img_591
1
123.583300 85.549500 1.265839 269.693400 161.781200  1
2002/08/26/big/img_265
0
2002/07/19/big/img_423
2
60.0 40.0 0.0 100.0 100.0  1
60.0 40.0 1.5707963267948966 300.0 100.0  1
"""


def test_parse_wider_with_zero_faces_and_invalid_flag(tmp_path):
    path = tmp_path / "wider_face_val_bbx_gt.txt"
    path.write_text(WIDER)
    records = formats.parse_wider(path)
    assert [r.path for r in records] == [
        "0--Parade/0_Parade_marchingband_1_849.jpg",
        "0--Parade/0_Parade_Parade_0_904.jpg",
        "0--Parade/0_Parade_marchingband_1_799.jpg",
    ]
    np.testing.assert_allclose(records[0].boxes, [[449, 330, 571, 479]])
    assert records[1].boxes.shape == (0, 4)
    assert len(records[2].boxes) == 2  # the invalid face is dropped
    assert len(formats.parse_wider(path, drop_invalid=False)[2].boxes) == 3
    assert len(formats.parse_wider(path, min_size=10)[2].boxes) == 1


def test_parse_wider_names_a_broken_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n")
    with pytest.raises(formats.AnnotationError, match="bad.txt"):
        formats.parse_wider(path)
    with pytest.raises(FileNotFoundError, match="data_root"):
        formats.parse_wider(tmp_path / "missing.txt")


def test_parse_fddb_and_ellipse_boxes(tmp_path):
    path = tmp_path / "FDDB-fold-01-ellipseList.txt"
    path.write_text(FDDB)
    records = formats.parse_fddb(path)
    assert [r.path for r in records][1] == "2002/08/26/big/img_265.jpg"
    assert records[1].boxes.shape == (0, 4)
    # Axis-aligned ellipses: closed forms.
    np.testing.assert_allclose(records[2].boxes[0], [40, 60, 160, 140], atol=1e-9)
    np.testing.assert_allclose(records[2].boxes[1], [260, 40, 340, 160], atol=1e-9)


def test_ellipse_box_matches_sampled_outline():
    major, minor, angle, cx, cy = 50.0, 20.0, 0.7, 10.0, -5.0
    t = np.linspace(0, 2 * math.pi, 20001)
    xs = cx + major * np.cos(t) * math.cos(angle) - minor * np.sin(t) * math.sin(angle)
    ys = cy + major * np.cos(t) * math.sin(angle) + minor * np.sin(t) * math.cos(angle)
    np.testing.assert_allclose(
        formats.ellipse_to_box(major, minor, angle, cx, cy),
        [xs.min(), ys.min(), xs.max(), ys.max()],
        atol=1e-3,
    )


def test_yolo_labels_round_trip_and_clip(tmp_path):
    boxes = np.array([[10, 20, 50, 100], [-10, 0, 10, 10], [300, 300, 310, 310]], float)
    lines = formats.yolo_label_lines(boxes, 200, 150)
    assert len(lines) == 2  # the box outside the image is dropped
    path = tmp_path / "l.txt"
    path.write_text("\n".join(lines))
    np.testing.assert_allclose(
        formats.parse_yolo_labels(path, 200, 150), [[10, 20, 50, 100], [0, 0, 10, 10]], atol=1e-3
    )


def test_write_yolo_split_with_empty_label(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(2)]
    n = formats.write_yolo_split(
        [(images[0], np.array([[5, 5, 20, 20]])), (images[1], np.zeros((0, 4)))], tmp_path, "train"
    )
    assert n == 2
    assert (tmp_path / "labels/train/000001.txt").read_text() == ""
    assert (tmp_path / "labels/train/000000.txt").read_text().startswith("0 ")
    yaml = formats.write_yolo_yaml(tmp_path).read_text()
    assert "0: face" in yaml and "train: images/train" in yaml


def test_unet_triplet_target_differs_only_near_faces():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    inp, target, mask = formats.unet_triplet(image, np.array([[10, 10, 40, 40]]))
    changed = np.any(target != inp, axis=2)
    assert changed.any() and np.all(mask[changed] > 0)
    assert mask.dtype == np.float32 and mask.shape == (64, 64)


def test_unet_triplet_with_the_tools_grown_mask():
    """Targets blurred as approach 1 blurs (mask scale 1.6): changes reach past the box's inscribed ellipse
    and stay inside the grown one, and the loss mask covers every change."""
    from fourfold.faceblur.tool.blur import ellipse_mask

    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    box = np.array([[30, 30, 60, 60]])
    inp, target, mask = formats.unet_triplet(image, box, sigma_ratio=0.25, mask_scale=1.6)
    changed = np.any(target != inp, axis=2)
    assert (changed & (ellipse_mask((96, 96), box) == 0)).any()
    assert not (changed & (ellipse_mask((96, 96), box, mask_scale=1.6) == 0)).any()
    assert np.all(mask[changed] > 0)


def test_load_records_reads_images_and_names_missing(tmp_path):
    import cv2

    img = np.zeros((10, 12, 3), np.uint8)
    img[..., 0] = 255  # red in RGB
    cv2.imwrite(str(tmp_path / "a.png"), img[..., ::-1])
    recs = [formats.FaceRecord("a.png", np.zeros((0, 4)))]
    ((image, boxes),) = list(formats.load_records(recs, tmp_path))
    assert image[0, 0, 0] == 255 and boxes.shape == (0, 4)
    with pytest.raises(FileNotFoundError, match="b.png"):
        list(formats.load_records([formats.FaceRecord("b.png", np.zeros((0, 4)))], tmp_path))
