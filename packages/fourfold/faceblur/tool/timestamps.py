"""Each frame's timestamp, read from the input and given back to the encoder, so that the output keeps the
input's timing: a variable-frame-rate video keeps its duration, its frame count and its sync with the audio.

``frame_times`` decodes the video once (``-fps_mode passthrough``: one entry per decoded frame, nothing
duplicated or dropped) and lists every frame's presentation timestamp in the stream's time base.
``setpts_filter`` turns that list into an ffmpeg filter for the encoder's raw-frame input: runs of equal
steps become one linear piece each (a constant-rate video is a single piece), and the pieces are chosen by a
balanced ``if(lt(N, k), ...)`` tree on the frame number ``N``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class FrameTimes:
    time_base: Fraction  # seconds per tick
    pts: tuple[int, ...]  # one per decoded frame, presentation order, strictly increasing, in ticks

    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end (the last step is repeated)."""
        if not self.pts:
            return 0.0
        last_step = self.pts[-1] - self.pts[-2] if len(self.pts) > 1 else 0
        return float((self.pts[-1] - self.pts[0] + last_step) * self.time_base)


def parse_framecrc(text: str) -> FrameTimes:
    """The timestamps of ffmpeg's ``framecrc`` listing of one stream (``#tb 0: 1/12800`` then one line per
    frame ``0, dts, pts, duration, size, crc``), sorted and made strictly increasing: a repeated timestamp
    (which some files hold) moves one tick later, so that no encoder drops the frame."""
    found = re.search(r"^#tb 0: (\d+)/(\d+)", text, flags=re.MULTILINE)
    time_base = Fraction(int(found[1]), int(found[2])) if found else Fraction(1, 25)
    stamps = sorted(int(line.split(",")[2]) for line in text.splitlines() if line[:1].isdigit())
    pts: list[int] = []
    for value in stamps:
        pts.append(value if not pts or value > pts[-1] else pts[-1] + 1)
    return FrameTimes(time_base, tuple(pts))


def frame_times(path: str | Path, ffmpeg: str) -> FrameTimes:
    """Decode the first video stream of ``path`` once, keeping its own time base, and list every frame's
    timestamp. Frames the decoder cannot produce are not listed (an empty list: no decodable frame)."""
    command = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path)]
    command += ["-map", "0:v:0", "-fps_mode", "passthrough", "-enc_time_base:v", "demux"]
    command += ["-f", "framecrc", "-"]
    proc = subprocess.run(command, capture_output=True, text=True, errors="replace")
    return parse_framecrc(proc.stdout)


def segments(pts: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Linear pieces ``(first frame, its pts, step)`` that give every ``pts[n]`` exactly as
    ``pts0 + (n - first) * step`` for ``n`` up to the next piece's first frame; the last piece's step also
    extends past the end (frames the listing missed still get increasing timestamps)."""
    pieces: list[tuple[int, int, int]] = []
    n = 0
    while n < len(pts):
        step = pts[n + 1] - pts[n] if n + 1 < len(pts) else (pieces[-1][2] if pieces else 1)
        end = n + 1
        while end < len(pts) and pts[end] - pts[end - 1] == step:
            end += 1
        pieces.append((n, pts[n], step))
        n = end
    return pieces


def _tree(pieces: list[tuple[int, int, int]]) -> str:
    if len(pieces) == 1:
        first, start, step = pieces[0]
        return f"{start}+(N-{first})*{step}"
    mid = len(pieces) // 2
    return f"if(lt(N,{pieces[mid][0]}),{_tree(pieces[:mid])},{_tree(pieces[mid:])})"


def setpts_expression(pts: tuple[int, ...]) -> str:
    """An ffmpeg expression of the frame number ``N`` that evaluates to ``pts[N]`` (ticks)."""
    return _tree(segments(pts))


def setpts_filter(times: FrameTimes) -> str:
    """Filter for the encoder's raw-frame input: switch to the input's time base, then stamp frame ``N``
    with the input's ``N``-th timestamp (negative ones, from edit lists, start at 0)."""
    shift = -min(0, times.pts[0]) if times.pts else 0
    expression = setpts_expression(tuple(p + shift for p in times.pts))
    base = times.time_base
    return f"settb={base.numerator}/{base.denominator},setpts='{expression}'"
