"""The app's pages through Starlette's in-process client (no socket, no browser): results and messages."""

import html
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fourfold.critical import scratchpad
from fourfold.web.app import Settings, create_app
from fourfold.web.limits import Limits


@pytest.fixture(scope="module")
def client(tmp_path_factory, micro_checkpoint):
    root = tmp_path_factory.mktemp("root")
    settings = Settings(root=root, checkpoint_folders=(micro_checkpoint.parent,), limits=Limits(table_mb=0.5))
    return TestClient(create_app(settings), base_url="http://127.0.0.1", raise_server_exceptions=False)


def model_key(checkpoint) -> str:
    """The critical page's name for a checkpoint offered from a --checkpoints folder."""
    return f"{checkpoint.parent.name}: {checkpoint.name}"


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def error_of(response) -> str:
    text = response.text
    start = text.index('id="error">') + len('id="error">')
    return html.unescape(text[start : text.index("</p>", start)])


def test_every_page_opens(client):
    for path in ("/", "/hierarchical", "/scoring", "/critical"):
        response = client.get(path)
        assert response.status_code == 200 and "<form" in response.text or path == "/"


def test_hierarchical_scores_optimal_against_heuristics_with_labels(client):
    probs = np.random.default_rng(0).dirichlet(np.ones(608), size=6)
    labels = "\n".join(str(i) for i in range(6))
    response = client.post(
        "/hierarchical",
        data={"tree": "tieredimagenet_h", "metric": "wu_palmer"},
        files={"probs": ("p.npy", npy_bytes(probs)), "labels": ("y.csv", labels.encode())},
    )
    assert response.status_code == 200
    assert "6 examples decoded for wu_palmer" in response.text
    assert response.text.count("<tr") >= 1 + 10 + 1 + 6  # header, 10 rules, header, 6 examples


def test_hierarchical_uploaded_tree_and_csv_probabilities(client):
    tree = b'{"children": {"root": ["animal", "plant"], "animal": ["cat", "dog"], "plant": ["fern"]}}'
    probs = b"0.7,0.2,0.1\n0.1,0.1,0.8\n"  # leaves in sorted order: cat, dog, fern
    response = client.post(
        "/hierarchical",
        data={"metric": "hF_1"},
        files={"tree_file": ("t.json", tree), "probs": ("p.csv", probs)},
    )
    assert response.status_code == 200, error_of(response)
    assert "cat ‹ animal ‹ root" in response.text and "fern ‹ plant ‹ root" in response.text


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"probs": ("p.txt", b"1,2")}, "upload one of .npy, .csv"),
        ({"probs": ("p.npy", b"\x93NUMPY garbage")}, "not a NumPy .npy array"),
        ({"probs": ("p.npy", npy_bytes(np.array([{"a": 1}], dtype=object)))}, "object arrays are refused"),
        ({"probs": ("p.csv", b"a,b\n1,2\n")}, "not comma-separated numbers"),
        ({"probs": ("p.npy", npy_bytes(np.ones((2, 3))))}, "one column per leaf"),
        ({"probs": ("p.npy", npy_bytes(np.full((2, 608), 0.5)))}, "probabilities"),
        ({"probs": ("p.csv", b"")}, "is empty"),
        ({"probs": ("p.npy", b"0" * 600_000)}, "larger than the page's 0.5 MB limit"),
        ({"tree_file": ("t.json", b"{not json"), "probs": ("p.csv", b"1\n")}, "tree JSON"),
        (
            {"probs": ("p.npy", npy_bytes(np.full((2, 608), 1 / 608))), "labels": ("y.csv", b"0\n9999\n")},
            "labels must be integer leaf indices",
        ),
    ],
)
def test_hierarchical_bad_uploads_say_what_is_wrong(client, files, message):
    response = client.post("/hierarchical", data={"tree": "tieredimagenet_h", "metric": "hF_1"}, files=files)
    assert response.status_code == 400
    assert message in error_of(response)
    assert "Traceback" not in response.text


def test_whole_request_over_the_limit_is_refused_before_parsing(client):
    response = client.post("/scoring", files={"table": ("d.csv", b"0" * 2_200_000)})  # cap: 0.5 MB + 1 MB
    assert response.status_code == 413 and "larger than the page's 0.5 MB limit" in error_of(response)


def scoring_csv(n=200, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    y = x[:, 0] + 1.0 * t + 0.5 * rng.normal(size=n)
    rows = "\n".join(f"{a},{b},{ti},{yi}" for (a, b), ti, yi in zip(x, t, y))
    return ("x1,x2,treated,outcome\n" + rows + "\n").encode()


def test_scoring_estimates_with_named_columns(client):
    response = client.post(
        "/scoring",
        data={"treatment": "treated", "outcome": "outcome", "learner": "linear", "loss": "log"},
        files={"table": ("d.csv", scoring_csv())},
    )
    assert response.status_code == 200, error_of(response)
    assert "200 units" in response.text and "data:image/png;base64," in response.text
    assert response.text.count("AIPW") == 2  # log (chosen) and tailored (the comparison)


@pytest.mark.parametrize(
    ("data", "csv", "message"),
    [
        ({}, scoring_csv(), "no treatment column 't'"),
        ({"treatment": "x1", "outcome": "outcome"}, scoring_csv(), "must hold 0 and 1"),
        ({"treatment": "treated", "outcome": "outcome"}, b"x1,treated,outcome\n1,0,1\n", "the page takes 20"),
        ({"treatment": "treated", "outcome": "outcome", "loss": "nope"}, scoring_csv(), "unknown loss"),
        ({"treatment": "treated", "outcome": "outcome"}, b"\xff\xfe\x00bad", "cannot parse"),
    ],
)
def test_scoring_bad_tables_say_what_is_wrong(client, data, csv, message):
    response = client.post("/scoring", data=data, files={"table": ("d.csv", csv)})
    assert response.status_code == 400
    assert message in error_of(response)


def test_critical_without_a_model_explains_and_with_a_checkpoint_shows_certainty(client, micro_checkpoint):
    response = client.post("/critical", data={"a": "987", "b": "45", "n_digits": "2", "model": ""})
    assert response.status_code == 200 and "No model is chosen" in response.text
    assert 'class="critical"' in response.text and "title=" not in response.text
    response = client.post(
        "/critical", data={"a": "987", "b": "45", "n_digits": "2", "model": model_key(micro_checkpoint)}
    )
    assert response.status_code == 200, error_of(response)
    text = scratchpad(987, 45)
    assert response.text.count('title="J = ') == len(text) - text.count("\n")  # every character but newlines
    assert "mean J at the" in response.text


def test_critical_lists_the_folder_and_refuses_a_model_not_in_the_list(client, micro_checkpoint, tmp_path):
    page = client.get("/critical").text
    assert f'<option value="{model_key(micro_checkpoint)}" selected>' in page
    assert str(micro_checkpoint.parent) not in page  # names, never paths
    response = client.post("/critical", data={"a": "1", "b": "2", "model": str(tmp_path / "no.pt")})
    assert response.status_code == 400 and "choose a model from the list" in error_of(response)
    response = client.post("/critical", data={"a": "1" * 13, "b": "2"})
    assert "more than 12 digits" in error_of(response)


def test_uploads_are_deleted_after_the_response(client):
    client.post(
        "/scoring",
        data={"treatment": "treated", "outcome": "outcome"},
        files={"table": ("d.csv", scoring_csv())},
    )
    client.post("/hierarchical", data={"metric": "hF_1"}, files={"probs": ("p.txt", b"1")})
    assert list((client.app.state.workspace.root / "requests").iterdir()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "unet", "threshold": "0.3"}, "leave it empty for unet"),
        ({"threshold": "high"}, "threshold must be a number"),
        ({"threshold": "1.5"}, "threshold"),
        ({"method": "magic"}, "unknown method 'magic'"),
        ({"mode": "paint"}, "unknown mode 'paint'"),
    ],
)
def test_faceblur_bad_settings_say_what_is_wrong(client, face_files, data, message):
    files = {"media": ("hopper.png", face_files["image"].read_bytes())}
    response = client.post("/faceblur", data=data, files=files)
    assert response.status_code == 400 and message in error_of(response)


def test_faceblur_keeps_outputs_only_and_refuses_other_names(client, face_files):
    files = {"media": ("hopper.png", face_files["image"].read_bytes())}
    response = client.post("/faceblur", data={"mode": "solid"}, files=files)
    assert response.status_code == 200, error_of(response)
    job = next(iter(client.app.state.jobs._jobs.values()))
    assert sorted(p.name for p in job.folder.iterdir()) == ["anonymized.png", "boxes.png"]  # input deleted
    download = client.get(f"/faceblur/jobs/{job.id}/anonymized.png")
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"] == 'attachment; filename="hopper_anonymized.png"'
    assert client.get(f"/faceblur/jobs/{job.id}/input.png").status_code == 404
    assert client.get(f"/faceblur/jobs/{job.id}/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert "this result is gone" in error_of(client.get("/faceblur/jobs/nonexistent"))


def test_faceblur_refuses_a_corrupt_video(client):
    response = client.post("/faceblur", files={"media": ("clip.mp4", b"\x00\x00\x00 ftypisom broken")})
    assert response.status_code == 400 and "the video cannot be read" in error_of(response)


def test_critical_takes_n_from_the_checkpoint_unless_given(micro_checkpoint, tmp_path):
    from fourfold.critical.model import load_checkpoint, save_checkpoint

    model, tokenizer, _ = load_checkpoint(micro_checkpoint)
    save_checkpoint(tmp_path / "n3.pt", model, tokenizer, {"spec": {"n_digits": 3}})
    save_checkpoint(tmp_path / "plain.pt", model, tokenizer)
    settings = Settings(root=tmp_path, checkpoint_folders=(tmp_path,))
    client = TestClient(create_app(settings), base_url="http://127.0.0.1")
    with_spec, plain = f"{tmp_path.name}: n3.pt", f"{tmp_path.name}: plain.pt"
    response = client.post("/critical", data={"a": "12345", "b": "6", "model": with_spec})
    assert "for N = 3 (the checkpoint&#39;s pre-training)" in response.text
    response = client.post("/critical", data={"a": "12345", "b": "6", "n_digits": "4", "model": with_spec})
    assert "for N = 4 (given)" in response.text
    response = client.post("/critical", data={"a": "12345", "b": "6", "model": plain})
    assert "for N = 2 (the default)" in response.text


def test_an_unexpected_failure_shows_one_line_not_a_traceback(client, monkeypatch):
    from fourfold.web.pages import hierarchical as hierarchical_page

    def broken(metric):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(hierarchical_page, "alexnet_example", broken)
    response = client.post("/hierarchical", data={"metric": "hF_1", "example": "alexnet"})
    assert response.status_code == 500
    assert error_of(response) == "unexpected error: RuntimeError: disk on fire second line"
    assert "Traceback" not in response.text


@pytest.mark.slow
def test_scoring_page_mlp_on_the_issue_case_converges_and_covers_the_true_effect(client):
    """Issue 22's page case (300 rows, true ATE 2.0) with the MLP at the library's defaults (no epoch count
    set by the page): no convergence warning, and the tailored Hajek interval covers 2.0."""
    from fourfold.scoring.convergence import page_case

    x, t, y = page_case(seed=0)
    rows = "\n".join(f"{a!r},{b!r},{int(ti)},{yi!r}" for (a, b), ti, yi in zip(x.tolist(), t, y.tolist()))
    response = client.post(
        "/scoring",
        data={"learner": "mlp", "loss": "tailored"},
        files={"table": ("d.csv", ("x1,x2,t,y\n" + rows + "\n").encode())},
    )
    assert response.status_code == 200, error_of(response)
    assert "stopped at its limit" not in response.text
    row = next(r for r in response.text.split("<tr>") if r.startswith("<td>tailored</td><td>Hájek"))
    low, high = (float(v) for v in row.split("[")[1].split("]")[0].split(", "))
    assert low <= 2.0 <= high
