"""End-to-end: headless Chromium fills each page's form, uploads a file, submits, and reads the result.

Screenshots go to the test's tmp dir; with FOURFOLD_SCREENSHOTS=<folder> they are also copied there (the
README's screenshots come from ``FOURFOLD_SCREENSHOTS=experiments/site/screenshots pytest -m ""
tests/web/test_browser.py``; the critical one needs a pre-trained model: the cached quick model or the
shipped reference).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from fourfold.critical.arithmetic import critical_positions

pytestmark = pytest.mark.usefixtures("loopback_only")


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000
    keep = os.environ.get("FOURFOLD_SCREENSHOTS")
    if keep:  # a 256-colour copy: a third of the size, text stays sharp
        Path(keep).mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").quantize(256).save(Path(keep) / path.name, optimize=True)
    return path


def submit(driver, button_id: str = "submit", wait_for: str = "result", timeout: float = 90):
    """Click a submit button, wait for the new page (the old one goes stale), return element ``wait_for``."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()
    wait = WebDriverWait(driver, timeout)
    wait.until(_left(old_page))
    return wait.until(expected_conditions.presence_of_element_located((By.ID, wait_for)))


def _left(old_page):
    """Wait condition: the old page is gone. ``staleness_of`` alone is racy with chromedriver: while the
    page navigates it can answer "Node with given id does not belong to the document" (a plain
    WebDriverException, not a StaleElementReferenceException), which means the same thing."""

    def gone(_driver) -> bool:
        try:
            old_page.is_enabled()
        except WebDriverException:  # StaleElementReferenceException included
            return True
        return False

    return gone


def shown_error(driver) -> str:
    """Submit the form and return the error message the new page shows."""
    return submit(driver, wait_for="error").text


def probability_files(tmp_path: Path, n: int = 12, leaves: int = 608) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, leaves, n)
    logits = rng.normal(size=(n, leaves))
    logits[np.arange(n), labels] += 4.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.save(tmp_path / "probs.npy", probs)
    np.savetxt(tmp_path / "labels.csv", labels, fmt="%d", delimiter=",")
    return tmp_path / "probs.npy", tmp_path / "labels.csv"


def test_hierarchical_page_decodes_an_upload_and_scores_every_decoder(browser, live_server, tmp_path):
    probs, labels = probability_files(tmp_path)
    browser.get(f"{live_server.url}/hierarchical")
    browser.find_element(By.NAME, "probs").send_keys(str(probs))
    browser.find_element(By.NAME, "labels").send_keys(str(labels))
    result = submit(browser)
    assert "12 examples decoded for hF_1 on tieredimagenet_h" in result.text
    rows = browser.find_elements(By.CSS_SELECTOR, "#scores tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows][0] == "optimal"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#decoded tbody tr")) == 12
    screenshot(browser, tmp_path, "hierarchical_upload")


def test_hierarchical_page_runs_the_alexnet_example(browser, live_server, tmp_path):
    browser.get(f"{live_server.url}/hierarchical")
    result = submit(browser, "example")
    assert "608 examples decoded" in result.text and "AlexNet" in result.text
    best = browser.find_element(By.CSS_SELECTOR, "#scores tr.best td").text
    assert best == "optimal"  # hF_1: the optimal decoder beats every heuristic on the shipped logits
    screenshot(browser, tmp_path, "hierarchical")


def test_hierarchical_page_explains_bad_uploads(browser, live_server, tmp_path):
    (tmp_path / "probs.txt").write_text("0.5,0.5\n")
    browser.get(f"{live_server.url}/hierarchical")
    browser.find_element(By.NAME, "probs").send_keys(str(tmp_path / "probs.txt"))
    assert "upload one of .npy, .csv" in shown_error(browser)
    (tmp_path / "probs.npy").write_bytes(b"not an array at all")
    browser.find_element(By.NAME, "probs").send_keys(str(tmp_path / "probs.npy"))
    assert "not a NumPy .npy array" in shown_error(browser)
    np.save(tmp_path / "wrong.npy", np.full((3, 5), 0.2))
    browser.find_element(By.NAME, "probs").send_keys(str(tmp_path / "wrong.npy"))
    assert "one column per leaf" in shown_error(browser)
    assert "Traceback" not in browser.page_source


def treatment_csv(path: Path, n: int = 400, text_cell: bool = False) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3))
    t = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    y = x.sum(1) + 2.0 * t + rng.normal(size=n)
    lines = ["age,dose,score,t,y"] + [
        f"{a:.4f},{b:.4f},{c:.4f},{ti},{yi:.4f}" for (a, b, c), ti, yi in zip(x, t, y)
    ]
    if text_cell:
        lines[5] = lines[5].replace(lines[5].split(",")[1], "n/a", 1)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_scoring_page_estimates_the_ate_for_both_losses(browser, live_server, tmp_path):
    browser.get(f"{live_server.url}/scoring")
    browser.find_element(By.NAME, "table").send_keys(str(treatment_csv(tmp_path / "trial.csv")))
    result = submit(browser)
    assert "400 units" in result.text
    cells = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#estimates tbody tr")]
    assert len(cells) == 6 and any(c.startswith("tailored AIPW") for c in cells)
    aipw = next(c for c in cells if c.startswith("tailored AIPW"))
    assert 1.5 < float(aipw.split()[2]) < 2.5  # the simulated effect is 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#diagnostics tbody tr")) == 2
    assert browser.find_element(By.ID, "histogram").get_attribute("naturalWidth") != "0"
    screenshot(browser, tmp_path, "scoring")


def test_scoring_page_explains_a_malformed_csv(browser, small_server, tmp_path):
    browser.get(f"{small_server.url}/scoring")
    browser.find_element(By.NAME, "table").send_keys(str(treatment_csv(tmp_path / "bad.csv", text_cell=True)))
    assert "column 'dose' has an empty or non-numeric value" in shown_error(browser)
    big = tmp_path / "big.csv"
    big.write_text("a,t,y\n" + "1.0,0,1.0\n" * 130_000)  # 1.3 MB, over the test server's 1 MB limit
    browser.find_element(By.NAME, "table").send_keys(str(big))
    assert "larger than the page's 1 MB limit" in shown_error(browser)


def test_critical_page_without_a_model_shows_the_scratchpad(browser, live_server, tmp_path):
    browser.get(f"{live_server.url}/critical")
    browser.find_element(By.NAME, "a").send_keys("1234")
    browser.find_element(By.NAME, "b").send_keys("56")
    Select(browser.find_element(By.NAME, "model")).select_by_value("")
    result = submit(browser)
    assert "1234 + 56 = 1290" in result.text
    assert "No model is chosen" in browser.find_element(By.ID, "model-message").text
    expected = critical_positions(1234, 56, 2)  # the page marks exactly the locator's positions
    marked = browser.find_elements(By.CSS_SELECTOR, "#scratchpad span.critical")
    assert [m.text for m in marked] == [p.char for p in expected]
    browser.find_element(By.NAME, "a").clear()
    browser.find_element(By.NAME, "a").send_keys("12a")
    assert "must be a non-negative whole number" in shown_error(browser)


def test_critical_page_shows_a_models_certainty(browser, live_server, tmp_path, micro_checkpoint):
    browser.get(f"{live_server.url}/critical")
    browser.find_element(By.NAME, "a").send_keys("1234")
    browser.find_element(By.NAME, "b").send_keys("56")
    Select(browser.find_element(By.NAME, "model")).select_by_value(
        f"{micro_checkpoint.parent.name}: micro.pt"
    )
    result = submit(browser)
    assert f"mean J at the {len(critical_positions(1234, 56, 2))} critical positions" in result.text
    spans = browser.find_elements(By.CSS_SELECTOR, "#scratchpad span[title^='J = ']")
    assert len(spans) > 100
    shaded = browser.execute_script(  # the CSS classes (no inline style under the CSP) colour uncertainty
        "return getComputedStyle(arguments[0]).backgroundColor", spans[0]
    )
    assert shaded.startswith("rgba(255, 140, 0") or shaded == "rgb(255, 140, 0)"
    screenshot(browser, tmp_path, "critical_random_model")


@pytest.mark.slow
def test_critical_page_with_a_pre_trained_model(browser, serve, tmp_path):
    """The project's own cache (or the shipped reference) on a server rooted at the repository; the page
    names the model, never its path (the README's screenshot)."""
    from fourfold.web.app import Settings, create_app
    from fourfold.web.pages.critical import find_models

    root = Path(__file__).resolve().parents[2]
    if not find_models(root):
        pytest.skip("no pre-trained model: run `make critical` once, or install a package that ships one")
    with serve(create_app(Settings(root=root))) as server:
        browser.get(f"{server.url}/critical")
        keys = [
            option.get_attribute("value") for option in Select(browser.find_element(By.NAME, "model")).options
        ]
        if "shipped quick reference" in keys:  # what a fresh clone offers
            Select(browser.find_element(By.NAME, "model")).select_by_value("shipped quick reference")
        browser.find_element(By.NAME, "a").send_keys("4321")
        browser.find_element(By.NAME, "b").send_keys("765")
        result = submit(browser)
        assert "mean J at the" in result.text
        assert str(root) not in browser.page_source
        screenshot(browser, tmp_path, "critical")


def test_faceblur_page_anonymises_an_image_and_draws_the_boxes(browser, live_server, tmp_path, face_files):
    browser.get(f"{live_server.url}/faceblur")
    browser.find_element(By.NAME, "media").send_keys(str(face_files["image"]))
    Select(browser.find_element(By.NAME, "mode")).select_by_value("mosaic")
    result = submit(browser)
    assert "centerface, mosaic: 1 face(s) found" in result.text
    assert browser.find_element(By.ID, "boxes").get_attribute("naturalWidth") == "320"
    assert browser.find_element(By.ID, "download").get_attribute("download") == "hopper_anonymized.png"
    screenshot(browser, tmp_path, "faceblur")


def test_faceblur_page_shows_progress_then_the_video(browser, live_server, tmp_path, face_files):
    browser.get(f"{live_server.url}/faceblur")
    browser.find_element(By.NAME, "media").send_keys(str(face_files["clip"]))
    result = submit(browser, wait_for="progress-section")  # the job page, refreshed until the video is done
    assert "hopper.mp4" in result.text
    WebDriverWait(browser, 90).until(expected_conditions.presence_of_element_located((By.ID, "video")))
    assert "12 frames" in browser.find_element(By.ID, "summary").text
    assert browser.find_element(By.ID, "download").get_attribute("download") == "hopper_anonymized.mp4"
    screenshot(browser, tmp_path, "faceblur_video")


def test_faceblur_page_explains_bad_uploads(browser, small_server, tmp_path, face_files):
    browser.get(f"{small_server.url}/faceblur")
    browser.find_element(By.NAME, "media").send_keys(str(face_files["long"]))
    assert "over the page's 1 s limit" in shown_error(browser)
    (tmp_path / "notes.txt").write_text("not a picture")
    browser.find_element(By.NAME, "media").send_keys(str(tmp_path / "notes.txt"))
    assert "is a .txt; upload one of .jpg" in shown_error(browser)
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")  # about 1.5 MB: over the test server's 1 MB
    browser.find_element(By.NAME, "media").send_keys(str(tmp_path / "noise.png"))
    assert "larger than the page's 1 MB limit" in shown_error(browser)


def test_faceblur_page_cancels_a_running_video(browser, serve, tmp_path):
    """A 4 s clip on a server that takes it: the job page's Cancel button stops it and nothing is kept."""
    from fourfold.faceblur.tool import video
    from fourfold.web.app import Settings, create_app

    frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    clip = video.write_video(tmp_path / "long.mp4", [frame] * 96, fps=24)
    app = create_app(Settings(root=tmp_path))
    with serve(app) as server:
        browser.get(f"{server.url}/faceblur")
        browser.find_element(By.NAME, "media").send_keys(str(clip))
        submit(browser, wait_for="cancel")
        for _ in range(5):  # the job page reloads every second: click the button of the page now shown
            try:
                browser.find_element(By.ID, "cancel").click()
                break
            except WebDriverException:
                continue
        WebDriverWait(browser, 30).until(
            expected_conditions.presence_of_element_located((By.ID, "cancelled"))
        )
        job = next(iter(app.state.jobs._jobs.values()))
        job.future.result(30)
        assert job.status == "cancelled" and job.outputs == {} and not job.folder.exists()
