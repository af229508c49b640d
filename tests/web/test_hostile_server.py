"""Issue 22 against the real server (``python -m fourfold.web.serve --port 0`` in a subprocess, its own
TMPDIR): SIGTERM during a video job and SIGINT both remove everything the app wrote, a workspace left by an
ended run is removed at start, a chunked body over the cap is refused on the stream, and a burst of 20
stills and 2 videos at once gets an answer for every request while the server's peak memory (VmHWM) stays
under ``CEILING_MB``."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("loopback_only")
CEILING_MB = 500  # the server's peak resident memory (VmHWM) under the burst; measured about 150 MB
LARGE_CEILING_MB = 1200  # the same for one still at the pixel limit; measured about 850 MB


class ServerProcess:
    """``fourfold-serve --port 0`` with TMPDIR=``tmp``; ``url`` once it listens."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        (tmp / "root").mkdir(exist_ok=True)
        self.log = (tmp / "server.log").open("w")
        command = [sys.executable, "-m", "fourfold.web.serve", "--port", "0", "--root", str(tmp / "root")]
        env = {**os.environ, "TMPDIR": str(tmp)}
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not found:
            self.proc.kill()
            raise RuntimeError(f"the server did not start: {line!r} {(tmp / 'server.log').read_text()}")
        self.url = found[0].rstrip("/")

    def workspaces(self) -> list[Path]:
        return sorted(self.tmp.glob("fourfold-web-*"))

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> None:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


@pytest.fixture
def server(tmp_path):
    stale = tmp_path / "fourfold-web-ended"  # what an earlier run killed with SIGKILL leaves
    (stale / "jobs" / "a").mkdir(parents=True)
    (stale / ".lock").touch()
    (stale / "jobs" / "a" / "anonymized.png").write_bytes(b"x" * 1000)
    started = ServerProcess(tmp_path)
    yield started
    if started.proc.poll() is None:
        started.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def clip_4s(tmp_path_factory, face_files) -> Path:
    """96 frames (4 s) of the face, for a job that is still running when the signal comes."""
    import imageio.v3 as iio

    from fourfold.faceblur.tool import video

    frame = iio.imread(face_files["image"])
    return video.write_video(tmp_path_factory.mktemp("clips") / "long_face.mp4", [frame] * 96, fps=24)


def wait_for_job(client, url: str, until=("done", "failed", "cancelled"), timeout: float = 120) -> str:
    """Poll a job page; return the first of ``until`` it shows (or 'running')."""
    words = {
        "done": 'id="summary"',
        "failed": 'id="error"',
        "cancelled": 'id="cancelled"',
        "running": "Anonymising",
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(url).text
        for state in until:
            if words[state] in page:
                return state
        time.sleep(0.2)
    raise AssertionError(f"{url} never reached {until}")


def test_sigterm_during_a_video_job_removes_everything_the_app_wrote(server, clip_4s):
    import httpx

    assert [p.name for p in server.workspaces()] != ["fourfold-web-ended"]  # the stale one is gone
    assert len(server.workspaces()) == 1
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post("/faceblur", files={"media": ("face.mp4", clip_4s.read_bytes())})
        assert response.status_code == 303
        assert wait_for_job(client, response.headers["location"], until=("running", "done")) == "running"
    assert any(p.is_file() for p in server.workspaces()[0].rglob("input.mp4"))
    start = time.monotonic()
    server.stop(signal.SIGTERM)
    assert time.monotonic() - start < 20
    assert server.workspaces() == [] and not list(server.tmp.glob("tmp*"))


def test_sigint_removes_everything_the_app_wrote(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post("/hierarchical", data={"metric": "hF_1"}, files={"probs": ("p.csv", b"1,2\n")})
        assert response.status_code == 400
    assert len(server.workspaces()) == 1
    server.stop(signal.SIGINT)
    assert server.workspaces() == []


def test_a_chunked_body_over_the_cap_is_refused_on_the_stream(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            b"POST /critical HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        chunk = b"a=" + b"1" * 65_534
        for _ in range(16):  # 1 MB against the critical page's 64 KB
            conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.sendall(b"0\r\n\r\n")
        answer = b""
        while b"</html>" not in answer:
            data = conn.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413") and b"the form is larger than this page takes" in answer
    assert b"x-frame-options: DENY" in answer.lower().replace(b"deny", b"DENY")


def test_a_burst_of_20_stills_and_2_videos_is_answered_within_the_memory_ceiling(server, face_files):
    """The 2 videos go first (so that the queue holds them while the stills arrive), then 20 stills at
    once; every request gets an answer: the page (200), a job page that ends done (303), or 503 with
    Retry-After once the queue's 8 places are taken."""
    import httpx

    still, clip = face_files["image"].read_bytes(), face_files["clip"].read_bytes()
    with httpx.Client(base_url=server.url, timeout=60) as warm:  # the first request loads the detector
        assert warm.post("/faceblur", files={"media": ("face.png", still)}).status_code == 200
    before = server.peak_rss_mb()

    def post(upload):
        with httpx.Client(base_url=server.url, timeout=120) as client:
            response = client.post("/faceblur", files={"media": upload})
            return response.status_code, response.headers.get("location") or response.headers.get(
                "retry-after"
            )

    def outcome(answer):
        status, detail = answer
        if status != 303:
            return answer
        with httpx.Client(base_url=server.url, timeout=120) as client:
            return status, wait_for_job(client, detail)

    start = time.monotonic()
    with ThreadPoolExecutor(22) as pool:
        videos = [pool.submit(post, ("face.mp4", clip)) for _ in range(2)]
        time.sleep(0.3)
        stills = [pool.submit(post, ("face.png", still)) for _ in range(20)]
        answers = list(pool.map(outcome, [f.result() for f in videos + stills]))
    elapsed = time.monotonic() - start
    peak = server.peak_rss_mb()
    print(f"burst: {elapsed:.1f} s, peak RSS {before:.0f} MB before, {peak:.0f} MB after; answers {answers}")
    assert len(answers) == 22  # every request was answered (no timeout, no reset)
    assert answers[:2] == [(303, "done")] * 2  # both videos were queued and anonymised
    assert {status for status, _ in answers[2:]} <= {200, 303, 503}
    assert all(detail == "10" for status, detail in answers if status == 503)  # Retry-After
    assert all(detail == "done" for status, detail in answers if status == 303)
    assert sum(status != 503 for status, _ in answers) >= 8  # the queue's places were all used
    assert peak < CEILING_MB
    server.stop(signal.SIGTERM)
    assert server.workspaces() == []


@pytest.mark.slow
def test_a_still_at_the_pixel_limit_stays_under_the_ceiling_for_large_inputs(server, tmp_path):
    """A 6000 x 4000 photo (the 24-megapixel limit): detection on a shrunk copy keeps the server's peak
    under LARGE_CEILING_MB (CenterFace at full size took 5.5 GB)."""
    import cv2
    import httpx
    import numpy as np

    small = np.random.default_rng(0).integers(0, 256, (500, 750, 3), dtype=np.uint8)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), cv2.resize(small, (6000, 4000)), [cv2.IMWRITE_JPEG_QUALITY, 80])
    with httpx.Client(base_url=server.url, timeout=300) as client:
        response = client.post("/faceblur", files={"media": ("photo.jpg", photo.read_bytes())})
        assert response.status_code in (200, 303)
        if response.status_code == 303:
            assert wait_for_job(client, response.headers["location"], timeout=300) == "done"
    print(f"24-megapixel still: peak RSS {server.peak_rss_mb():.0f} MB")
    assert server.peak_rss_mb() < LARGE_CEILING_MB
