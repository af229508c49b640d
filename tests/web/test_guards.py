"""The app's guards as units: the body cap on the ASGI stream, the job queue (eviction, bound, cancel), the
workspace's stale-folder sweep, the video header parser, downscaled detection and the decoded-set chains."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time

import numpy as np
import pytest

from fourfold.web.jobs import Jobs, QueueFull, checkpoint
from fourfold.web.limits import Limits, VideoHeader, _video_stream, body_cap, check_video
from fourfold.web.security import BodyCap
from fourfold.web.uploads import UploadError
from fourfold.web.workspace import LOCK_NAME, Workspace, remove_stale


# ------------------------------------------------------------------------------------------ body cap
def run_capped(chunks: list[bytes], cap: int, content_length: int | None = None):
    """Send ``chunks`` through BodyCap to an app that reads its whole body; (bytes the app saw, the
    response status, how many chunks were pulled from the client)."""
    seen, pulled, status = [], [0], []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def refuse(scope, code, sentence):
        async def response(scope, receive, send):
            status.append(code)
            await send({"type": "http.response.start", "status": code, "headers": []})
            await send({"type": "http.response.body", "body": sentence.encode()})

        return response

    async def receive():
        i = pulled[0]
        pulled[0] += 1
        return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    scope = {"type": "http", "path": "/scoring", "method": "POST", "headers": headers}
    asyncio.run(BodyCap(app, cap=lambda path: (cap, "too large"), refuse=refuse)(scope, receive, send))
    return sum(map(len, seen)), status[0], pulled[0]


def test_body_cap_counts_a_chunked_body_and_passes_no_byte_over_the_cap():
    seen, status, pulled = run_capped([b"x" * 1000] * 50, cap=10_500)
    assert status == 413
    assert seen <= 10_500  # the app (the form parser, its spool file) never got byte 10_501
    assert pulled == 50  # the rest was read and dropped, so that the client can read the page


def test_body_cap_refuses_a_declared_length_before_the_app_reads_anything():
    seen, status, _ = run_capped([b"x" * 1000] * 5, cap=2000, content_length=5000)
    assert (seen, status) == (0, 413)


def test_body_cap_lets_a_body_at_the_cap_through():
    seen, status, _ = run_capped([b"x" * 1000] * 3, cap=3000)
    assert (seen, status) == (3000, 200)


def test_every_body_cap_sentence_names_the_per_file_limit_the_page_shows():
    limits = Limits(table_mb=20, image_mb=20, video_mb=100)
    assert "20 MB" in body_cap("/scoring", limits)[1] and "20 MB" in body_cap("/hierarchical", limits)[1]
    assert "100 MB for a video" in body_cap("/faceblur", limits)[1]
    assert body_cap("/faceblur", limits)[0] == 101 * 1024 * 1024  # the largest file plus 1 MB of fields
    assert body_cap("/critical", limits)[0] == 64 * 1024


# -------------------------------------------------------------------------------------------- jobs
def blocked_jobs(tmp_path, **kwargs):
    """Jobs whose first job blocks the worker until ``release.set()``."""
    jobs = Jobs(tmp_path / "jobs", **kwargs)
    release = threading.Event()
    first = jobs.create("blocker")
    jobs.submit(first, lambda job: release.wait(10))
    return jobs, first, release


def test_only_finished_jobs_are_evicted(tmp_path):
    jobs, running, release = blocked_jobs(tmp_path, keep=1, max_pending=10)
    queued = [jobs.create(f"q{i}") for i in range(4)]
    futures = [jobs.submit(job, lambda job: None) for job in queued]
    assert jobs.get(running.id) is not None and all(jobs.get(j.id) for j in queued)  # 5 > keep, none evicted
    release.set()
    for future in futures:
        future.result(5)
    alive = [job for job in (running, *queued) if jobs.get(job.id) is not None]
    assert alive == [queued[-1]] and not running.folder.exists()  # keep=1: the newest finished one
    jobs.close()


def test_a_full_queue_refuses_with_a_retry_time_and_frees_a_slot_when_a_job_ends(tmp_path):
    jobs, _, release = blocked_jobs(tmp_path, max_pending=2, retry_after=7)
    second = jobs.create("second")
    with pytest.raises(QueueFull) as full:
        jobs.create("third")
    assert full.value.retry_after == 7
    release.set()
    jobs.submit(second, lambda job: None).result(5)
    jobs.create("third")  # a slot is free again
    jobs.close()


def test_cancel_drops_a_queued_job_and_stops_a_running_one_at_its_next_checkpoint(tmp_path):
    jobs = Jobs(tmp_path / "jobs")
    started, steps = threading.Event(), []

    def long_work(job):
        started.set()
        for step in range(500):
            checkpoint(job)
            steps.append(step)
            time.sleep(0.01)

    running, queued = jobs.create("video"), jobs.create("still")
    (running.folder / "input.mp4").write_bytes(b"x")
    (queued.folder / "input.png").write_bytes(b"x")
    jobs.submit(running, long_work, running.folder / "input.mp4")
    jobs.submit(queued, lambda job: steps.append("never"), queued.folder / "input.png")
    assert started.wait(5)
    assert jobs.cancel(queued.id).status == "cancelled" and not (queued.folder / "input.png").exists()
    jobs.cancel(running.id)
    running.future.result(5)
    assert running.status == "cancelled" and len(steps) < 500 and "never" not in steps
    assert not (running.folder / "input.mp4").exists()
    jobs.close()


def test_close_stops_a_running_job(tmp_path):
    jobs = Jobs(tmp_path / "jobs")
    job = jobs.create("video")
    jobs.submit(job, lambda job: [checkpoint(job) or time.sleep(0.01) for _ in range(1000)])
    start = time.monotonic()
    jobs.close()
    assert job.status == "cancelled" and time.monotonic() - start < 5


# --------------------------------------------------------------------------------------- workspace
def test_a_workspace_is_removed_by_close_and_its_lock_keeps_it_from_other_sweeps(tmp_path):
    live = Workspace(tmp_path)
    (live.folder("jobs") / "result.png").write_bytes(b"x")
    assert remove_stale(tmp_path) == [] and live.root.exists()  # its lock is held
    live.close()
    assert list(tmp_path.iterdir()) == []


def test_folders_of_ended_runs_are_removed_at_start_and_others_kept(tmp_path):
    stale = tmp_path / "fourfold-web-ended"
    (stale / "jobs").mkdir(parents=True)
    (stale / LOCK_NAME).touch()
    unlocked_elsewhere = tmp_path / "fourfold-web-creating"  # no lock file yet: being created
    unlocked_elsewhere.mkdir()
    held = tmp_path / "fourfold-web-running"
    held.mkdir()
    (held / LOCK_NAME).touch()
    fd = os.open(held / LOCK_NAME, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another running app
    try:
        workspace = Workspace(tmp_path)
        assert workspace.stale_removed == [stale]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["fourfold-web-creating", "fourfold-web-running", workspace.root.name]
        )
        workspace.close()
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ video header
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "  Stream #0:0[0x1](und): Video: h264 (Constrained Baseline) (avc1 / 0x31637661), "
            "yuv420p(progressive), 7680x4320 [SAR 1:1 DAR 16:9], 2071 kb/s, 2 fps, 2 tbr, 16384 tbn "
            "(default)",
            (7680, 4320, 2.0),
        ),
        (
            "  Stream #0:0: Video: vp9 (Profile 0), yuv420p(tv, bt709), 1280x720, SAR 1:1, 29.97 fps, 1k tbn",
            (1280, 720, 29.97),
        ),
        (
            "  Stream #0:1: Video: mjpeg, yuvj420p(pc), 600x600 [SAR 1:1 DAR 1:1], 90k tbr (attached pic)",
            None,
        ),
        ("  Stream #0:0: Video: h264, yuv420p, 640x480, 1k fps, 1k tbr", (640, 480, 1000.0)),
    ],
)
def test_video_stream_lines_give_size_and_rate(line, expected):
    assert _video_stream(line) == expected


def test_video_limits_check_pixels_duration_and_frames_times_pixels():
    limits = Limits(frame_pixels=1920 * 1080, video_seconds=60, video_pixels=100 * 1920 * 1080)
    assert check_video(VideoHeader("mov", 2.0, ((1920, 1080, 25.0),)), limits) == 50
    cases = {
        "over the page's 2.1 megapixels a frame": VideoHeader("mov", 1.0, ((7680, 4320, 2.0),)),
        "over the page's 60 s limit": VideoHeader("mov", 61.0, ((320, 240, 25.0),)),
        "budget of 0.2 billion pixels": VideoHeader("mov", 5.0, ((1920, 1080, 30.0),)),
        "gives no duration": VideoHeader("mov", None, ((320, 240, 25.0),)),
        "gives no frame rate": VideoHeader("mov", 1.0, ((320, 240, None),)),
    }
    for message, header in cases.items():
        with pytest.raises(UploadError, match=message):
            check_video(header, limits)


# ------------------------------------------------------------------------------ downscaled detection
class RecordingDetector:
    """Finds one 'face' at a fixed place of whatever frame it gets (a fraction of its size)."""

    name = "recorder"

    def __init__(self):
        self.shapes = []

    def detect(self, frame):
        self.shapes.append(frame.shape)
        h, w = frame.shape[:2]
        return np.array([[0.25 * w, 0.5 * h, 0.5 * w, 0.75 * h]]), np.array([0.9])


def test_downscaled_detection_shrinks_large_frames_and_maps_boxes_back():
    from fourfold.web.pages.faceblur import DownscaledDetection

    inner = RecordingDetector()
    detector = DownscaledDetection(inner, max_pixels=100_000)
    boxes, scores = detector.detect(np.zeros((1000, 2000, 3), np.uint8))
    (h, w, _) = inner.shapes[-1]
    assert h * w <= 100_000 and abs(w / h - 2.0) < 0.02  # the aspect ratio is kept
    np.testing.assert_allclose(boxes, [[500, 500, 1000, 750]], atol=3)  # the full frame's pixels
    assert scores.tolist() == [0.9]
    boxes, _ = detector.detect(np.zeros((200, 300, 3), np.uint8))  # within the limit: unchanged
    assert inner.shapes[-1] == (200, 300, 3) and boxes.tolist() == [[75, 100, 150, 150]]


def test_downscaled_centerface_finds_the_face_of_an_upscaled_photo(face_frame_large):
    """CenterFace on a 4x copy (1280 x 960) shrunk back to 320 x 240 finds the face where it finds it at
    full size."""
    from fourfold.faceblur.tool.pipeline import make_pipeline
    from fourfold.web.pages.faceblur import DownscaledDetection

    pipeline = make_pipeline("centerface")
    full, _ = pipeline.detector.detect(face_frame_large)
    small, _ = DownscaledDetection(pipeline.detector, 320 * 240).detect(face_frame_large)
    face = np.array([240, 160, 720, 720])  # where face_frame() pasted it, times 4
    nearest = [boxes[np.abs(boxes - face).max(axis=1).argmin()] for boxes in (full, small)]
    assert len(small) == 1 and np.abs(nearest[0] - face).max() < 120  # both find the face ...
    assert np.abs(nearest[0] - nearest[1]).max() < 0.15 * (face[2] - face[0])  # ... at the same place


# ------------------------------------------------------------------------------------------- chains
def test_chains_cover_a_set_and_follow_the_tree():
    from fourfold.hierarchical import Hierarchy
    from fourfold.web.pages.hierarchical import chains

    tree = Hierarchy.from_children({"root": ["animal", "plant"], "animal": ["cat", "dog"], "plant": ["fern"]})
    index = {name: i for i, name in enumerate(tree.names)}
    members = np.array([index[n] for n in ("root", "animal", "cat", "dog", "plant", "fern")])
    named = [[tree.names[n] for n in chain] for chain in chains(tree, members)]
    assert named == [["cat", "animal", "root"], ["dog", "animal", "root"], ["fern", "plant", "root"]]
    rng = np.random.default_rng(0)
    for _ in range(50):  # brute force: every member is in a chain; each chain climbs parent by parent
        members = np.flatnonzero(rng.random(tree.n_nodes) < 0.5)
        found = chains(tree, members)
        assert set(members.tolist()) == {n for chain in found for n in chain}
        for chain in found:
            for node, ancestor in zip(chain, chain[1:]):
                while node != ancestor:
                    node = int(tree.parent[node])
                    assert node >= 0  # reached the root without meeting the next node: not an ancestor
            assert not any(c in members for c in tree.children[chain[0]])  # starts at a deepest member


# --------------------------------------------------------------------------------------------- serve
@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--checkpoints", "/nonexistent-folder"], "is not a folder"), (["--port", "70000"], "--port must be")],
)
def test_serve_refuses_bad_arguments_before_starting(argv, message, capsys):
    from fourfold.web.serve import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
