"""The attacks and heavy inputs of issue 22, one test each, in-process (no socket): every one gets a 4xx
with one clear sentence or a correct answer. The real-server cases (signals, a chunked stream, the load
test) are in test_hostile_server.py; the guards as units in test_guards.py."""

from __future__ import annotations

import html
import io
import os
import pickle
import struct
import subprocess
import threading
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fourfold.web.app import Settings, create_app
from fourfold.web.limits import Limits

LIMITS = Limits(table_mb=0.5, image_mb=1.0, video_mb=2.0, video_seconds=5.0)
API_WORDING = ("normalize=True", "logits=True", "weights_only", "alpha=", "learner=")


def error_of(response) -> str:
    text = response.text
    start = text.index('id="error">') + len('id="error">')
    return html.unescape(text[start : text.index("</p>", start)])


def notes_of(response) -> list[str]:
    return [html.unescape(part.split("</p>")[0]) for part in response.text.split('class="note warning">')[1:]]


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header declares width x height RGB pixels (the data is a stub)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


class Boom:
    """A pickle that would create a file if it were ever unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, micro_checkpoint):
    """A checkpoint folder with one real checkpoint and three files that are not checkpoints."""
    folder = tmp_path_factory.mktemp("checkpoints")
    marker = folder.parent / "pickle-ran"
    (folder / "real.pt").write_bytes(micro_checkpoint.read_bytes())
    (folder / "crafted.pt").write_bytes(pickle.dumps(Boom(marker)))
    (folder / "table.pt").write_text("a,b\n1,2\n")
    (folder / "passwd.pt").symlink_to("/etc/passwd")
    return folder, marker


@pytest.fixture(scope="module")
def client(tmp_path_factory, hostile):
    root = tmp_path_factory.mktemp("root")
    app = create_app(Settings(root=root, checkpoint_folders=(hostile[0],), limits=LIMITS))
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


@pytest.fixture(scope="module")
def video_8k(tmp_path_factory):
    """A 2-frame 7680 x 4320 H.264 video of a few hundred KB (ffmpeg's lavfi source, lowest quality)."""
    import imageio_ffmpeg

    path = tmp_path_factory.mktemp("hostile") / "8k.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=7680x4320:r=2"]
        + [
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "51",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def never_decode(monkeypatch):
    from fourfold.web.pages import faceblur

    def refuse(*args, **kwargs):
        raise AssertionError("decoded before the limits were checked")

    monkeypatch.setattr(faceblur, "read_image", refuse)
    monkeypatch.setattr(faceblur, "anonymize_video", refuse)


# ----------------------------------------------------------------- 1. resolution checked before decoding
@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((10_000, 10_000), "10000 x 10000 pixels (100.0 megapixels), over the page's 24.0 megapixels"),
        ((20_000, 20_000), "far over the page's 24.0 megapixels limit"),
    ],
)
def test_a_still_declaring_too_many_pixels_is_refused_from_its_header(client, monkeypatch, size, message):
    never_decode(monkeypatch)
    response = client.post("/faceblur", files={"media": ("bomb.png", png_claiming(*size))})
    assert response.status_code == 400 and message in error_of(response)


def test_an_8k_video_is_refused_from_its_header(client, monkeypatch, video_8k):
    never_decode(monkeypatch)
    assert video_8k.stat().st_size < 1_000_000
    response = client.post("/faceblur", files={"media": ("8k.mp4", video_8k.read_bytes())})
    assert response.status_code == 400
    assert "7680 x 4320 pixels, over the page's 2.1 megapixels a frame" in error_of(response)


def test_a_video_over_the_frames_times_pixels_budget_or_duration_is_refused(face_files, monkeypatch):
    never_decode(monkeypatch)
    tight = Limits(video_seconds=1.0, video_pixels=5 * 320 * 240)  # the clip: 12 frames of 320 x 240, 0.5 s
    client = TestClient(create_app(Settings(limits=tight)), base_url="http://127.0.0.1")
    response = client.post("/faceblur", files={"media": ("clip.mp4", face_files["clip"].read_bytes())})
    assert response.status_code == 400 and "about 12 frames of 320 x 240, over the page's budget" in error_of(
        response
    )
    response = client.post("/faceblur", files={"media": ("long.mp4", face_files["long"].read_bytes())})
    assert response.status_code == 400 and "lasts 2.0 s, over the page's 1 s limit" in error_of(response)


def test_a_playlist_renamed_mp4_is_not_opened_as_a_video(client):
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    response = client.post("/faceblur", files={"media": ("clip.mp4", playlist)})
    assert response.status_code == 400 and "passwd" not in response.text


def test_the_page_states_the_limits(client):
    limits = client.get("/faceblur").text
    for stated in (
        "1 MB and 24 megapixels",
        "2 MB, 2,073,600 pixels a frame (1920 x 1080)",
        "5 s",
        "3.7 billion pixels",
    ):
        assert stated in limits


# -------------------------------------------------------------------------- 3. queue, 503 and cancel
def test_a_full_queue_answers_503_with_retry_after_and_a_queued_job_can_be_cancelled(face_files):
    client = TestClient(create_app(Settings(max_pending_jobs=2)), base_url="http://127.0.0.1")
    jobs, release = client.app.state.jobs, threading.Event()
    blocker = jobs.create("blocker")
    jobs.submit(blocker, lambda job: release.wait(20))
    clip = {"media": ("clip.mp4", face_files["clip"].read_bytes())}
    queued = client.post("/faceblur", files=clip, follow_redirects=False)
    assert queued.status_code == 303
    busy = client.post("/faceblur", files=clip)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "10"
    assert "the server is busy" in error_of(busy) and busy.headers["content-type"].startswith("text/html")
    page = client.get(queued.headers["location"])
    assert 'id="cancel"' in page.text and "Waiting for the worker" in page.text
    cancelled = client.post(queued.headers["location"] + "/cancel")
    assert cancelled.status_code == 200 and "Cancelled" in cancelled.text
    assert client.post("/faceblur/jobs/nonexistent/cancel").status_code == 404
    release.set()
    jobs.close()


# ----------------------------------------------------------------------------- 5. scoring without overlap
def scoring_table(x: np.ndarray, t: np.ndarray, y: np.ndarray) -> bytes:
    lines = ["x1,x2,t,y"] + [
        f"{float(a)!r},{float(b)!r},{int(ti)},{float(yi)!r}" for (a, b), ti, yi in zip(x, t, y)
    ]
    return ("\n".join(lines) + "\n").encode()


def overlap_data(n=300, separate_share=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t = (rng.random(n) < 0.5).astype(float)
    if separate_share:  # a dummy x1 = 1 marks a group that is always treated: quasi-separation
        group = rng.random(n) < separate_share
        x[:, 0] = group.astype(float)
        t[group] = 1.0
    y = x[:, 1] + 2.0 * t + rng.normal(size=n)
    return x, t, y


def post_scoring(client, table: bytes, **data):
    return client.post(
        "/scoring", data={"learner": "linear", "loss": "tailored", **data}, files={"table": ("d.csv", table)}
    )


def test_perfect_separation_is_refused_with_the_reason(client):
    x, t, y = overlap_data()
    x[:, 0] = np.where(t > 0.5, 1.0, -1.0) + 0.01 * x[:, 0]
    response = post_scoring(client, scoring_table(x, t, y))
    assert response.status_code == 400
    assert error_of(response).startswith("no overlap: the covariates separate treated from control units and")


def test_quasi_separation_warns_with_the_librarys_separation_warning(client):
    x, t, y = overlap_data(separate_share=0.1)
    response = post_scoring(client, scoring_table(x, t, y))
    assert response.status_code == 200
    notes = " ".join(notes_of(response))
    assert "(quasi-)perfectly separate treated from control units" in notes and "Weak overlap" in notes
    assert not any(word in notes for word in API_WORDING)


def test_overflowing_covariates_and_non_finite_estimates_are_refused(client, monkeypatch):
    x, t, y = overlap_data()
    x[:, 0] = np.where(x[:, 0] > 0, 1e308, -1e308)
    response = post_scoring(client, scoring_table(x, t, y))
    assert response.status_code == 400 and "column 'x1' holds values too large" in error_of(response)
    from fourfold.scoring.ipw import ATEResult
    from fourfold.web.pages import scoring

    monkeypatch.setattr(
        scoring,
        "ate",
        lambda *a, **k: ATEResult(
            float("nan"), float("nan"), "ht", {"ess": 1.0, "ess_treated": 1.0, "ess_control": 1.0}
        ),
    )
    response = post_scoring(client, scoring_table(*overlap_data()))
    assert (
        response.status_code == 400
        and "estimate with the tailored loss is not a finite number" in error_of(response)
    )


def test_the_mlp_runs_with_the_librarys_stopping_and_its_convergence_warning_reaches_the_page(
    client, monkeypatch
):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from fourfold.web.pages import scoring

    calls = []

    class Recorded(scoring.PropensityClassifier):
        def __init__(self, **kwargs):
            calls.append(kwargs)
            super().__init__(**{**kwargs, "learner": "linear"})  # fast; the page's call is what is checked

        def fit(self, x, t):
            warnings.warn("stopped at max_epochs=1000 before converging", ConvergenceWarning, stacklevel=2)
            return super().fit(x, t)

    monkeypatch.setattr(scoring, "PropensityClassifier", Recorded)
    response = post_scoring(client, scoring_table(*overlap_data()), learner="mlp")
    assert response.status_code == 200
    assert calls == [{"learner": "mlp", "loss": "tailored"}, {"learner": "mlp", "loss": "log"}]  # no epochs
    assert any("stopped at its limit before its loss settled" in note for note in notes_of(response))
    assert "max_epochs" not in response.text


# ---------------------------------------------------------------------- 6. malformed requests are 4xx
@pytest.mark.parametrize(
    ("path", "data", "files", "message"),
    [
        ("/scoring", {"learner": "linear"}, None, "choose a file for the CSV"),
        ("/scoring", {"table": "not a file"}, {"other": ("x.csv", b"1")}, "choose a file for the CSV"),
        (
            "/hierarchical",
            {"metric": "hF_1"},
            {"labels": ("y.csv", b"0\n")},
            "choose a file for the probabilities",
        ),
        ("/faceblur", {"mode": "blur"}, {"other": ("x.png", b"1")}, "choose an image or a video file"),
    ],
)
def test_a_form_without_its_file_field_is_a_400(client, path, data, files, message):
    response = client.post(path, data=data, files=files)
    assert response.status_code == 400 and message in error_of(response)


@pytest.mark.parametrize("number", ["²", "１２", "١٢", "۳", "12a", "-3", "1 2"])
@pytest.mark.parametrize("field", ["a", "b", "n_digits"])
def test_digits_other_than_ascii_are_refused_on_the_critical_page(client, field, number):
    response = client.post("/critical", data={"a": "12", "b": "34", "model": "", field: number})
    assert response.status_code == 400 and "written with the digits 0-9" in error_of(response)


@pytest.mark.parametrize("name", ["crafted.pt", "table.pt"])
def test_a_file_that_is_not_a_checkpoint_gets_one_message_and_no_pickle_runs(client, hostile, name):
    folder, marker = hostile
    response = client.post("/critical", data={"a": "12", "b": "34", "model": f"{folder.name}: {name}"})
    assert response.status_code == 400
    assert error_of(response) == "the chosen file is not a fourfold.critical checkpoint"
    assert not marker.exists()


def test_checkpoints_come_only_from_the_list(client, hostile):
    page = client.get("/critical").text
    assert "real.pt" in page and "passwd.pt" not in page  # a symlink out of the folder is not offered
    answers = {
        client.post("/critical", data={"a": "1", "b": "2", "model": value}).text
        for value in ("/etc/passwd", "/nonexistent/model.pt", f"{hostile[0].name}: passwd.pt", "../real.pt")
    }
    assert len(answers) == 1  # the same answer whether a path exists or not: nothing is revealed
    assert "choose a model from the list" in answers.pop()


def test_a_malformed_multipart_body_is_an_html_400(client):
    response = client.post(
        "/faceblur", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"}
    )
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert error_of(response).startswith("the form could not be read")


# ---------------------------------------------------------------------------------------- 7. headers
def test_hosts_and_origins_other_than_the_apps_are_refused(client):
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400
    data = {"a": "1", "b": "2", "model": ""}
    assert client.post("/critical", data=data, headers={"origin": "http://127.0.0.1"}).status_code == 200
    for headers in (
        {"origin": "http://attacker.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:1"},
        {"sec-fetch-site": "cross-site"},
    ):
        response = client.post("/critical", data=data, headers=headers)
        assert response.status_code == 403 and "sent from another page" in error_of(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/", 200), ("GET", "/nowhere", 404), ("PUT", "/critical", 405), ("POST", "/critical", 413)],
)
def test_every_response_carries_the_security_headers_and_errors_are_html(client, method, path, status):
    response = client.request(
        method,
        path,
        content=b"a=" + b"1" * 100_000 if status == 413 else None,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == status and response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    if status >= 400:
        assert error_of(response)


def test_pages_use_no_inline_script_or_style(client):
    for path in ("/", "/hierarchical", "/scoring", "/critical", "/faceblur", "/nowhere"):
        text = client.get(path).text
        for inline in ("<script", "<style", "style=", "javascript:", "onclick="):
            assert inline not in text, (path, inline)


# ----------------------------------------------------------------------------------------- 8. messages
def test_a_corrupt_video_message_names_no_server_path_and_gives_no_wrong_advice(client):
    response = client.post("/faceblur", files={"media": ("clip.mp4", b"\x00\x00\x00 ftypisom broken")})
    message = error_of(response)
    assert response.status_code == 400 and "the video cannot be read" in message
    assert "/" not in message and "convert it to .mp4" not in message
    assert str(client.app.state.workspace.root) not in response.text


@pytest.mark.parametrize(
    ("probs", "message"),
    [
        (b"\n", "the file holds no numbers"),
        (np.zeros((0, 608)), "the file holds no numbers"),
        (np.full((2, 608), 0.5), "tick 'these are logits' for raw scores, or rescale each row to sum to 1"),
    ],
)
def test_probability_messages_use_the_pages_words(client, probs, message):
    if isinstance(probs, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, probs)
        probs, name = buffer.getvalue(), "p.npy"
    else:
        name = "p.csv"
    response = client.post("/hierarchical", data={"metric": "hF_1"}, files={"probs": (name, probs)})
    assert response.status_code == 400 and message in error_of(response)
    assert not any(word in response.text for word in API_WORDING)


def test_the_size_a_page_states_is_the_size_its_refusals_state(client):
    assert "up to 0.5 MB" in client.get("/scoring").text
    too_big = client.post("/scoring", files={"table": ("d.csv", b"0" * 600_000)})  # under the body cap
    way_too_big = client.post("/scoring", files={"table": ("d.csv", b"0" * 2_000_000)})  # over it: 413
    assert too_big.status_code == 400 and way_too_big.status_code == 413
    assert "page's 0.5 MB limit" in error_of(too_big) and "page's 0.5 MB limit" in error_of(way_too_big)


# ---------------------------------------------------------------------------------------- 10. chains
def test_a_decoded_set_over_two_branches_reads_as_two_chains(client):
    tree = b'{"children": {"root": ["animal", "plant"], "animal": ["cat", "dog"], "plant": ["fern"]}}'
    response = client.post(
        "/hierarchical",
        data={"metric": "hF_1"},
        files={"tree_file": ("t.json", tree), "probs": ("p.csv", b"0.5,0,0.5\n")},
    )
    assert response.status_code == 200, error_of(response)
    row = response.text.split('<table id="decoded">')[1].split("</tr>")[1]
    assert '<div class="chain">cat ‹ animal ‹ root</div><div class="chain">fern ‹ plant ‹ root</div>' in row
    assert "animal ‹ plant" not in row and "fern ‹ plant ‹ root ‹" not in row


def test_no_page_shows_an_absolute_path(client, hostile):
    response = client.post("/critical", data={"a": "12", "b": "34", "model": f"{hostile[0].name}: real.pt"})
    assert response.status_code == 200 and f"certainty J of {hostile[0].name}: real.pt" in response.text
    for path in ("/", "/critical", "/faceblur", "/scoring", "/hierarchical"):
        assert os.sep + "tmp" not in client.get(path).text
    assert str(hostile[0]) not in response.text
