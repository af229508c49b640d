"""Fixtures for tests/web: the app in a live server on 127.0.0.1, headless Chromium driven by Selenium, and
the one scoped exception to the suite's network guard.

tests/conftest.py fails any test that connects an internet socket. A browser test must talk to two local
processes over loopback TCP (Selenium -> chromedriver, Chromium -> the app), so ``loopback_only`` re-patches
the guard for that test alone: connections and name lookups to 127.0.0.1, ::1 and ``localhost`` go
through; anything else is still refused and fails the test. Chromium runs with background networking,
component updates, sync and QUIC off and a fresh profile, so it reaches for nothing but the app.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
_REAL = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "create_connection": socket.create_connection,
    "getaddrinfo": socket.getaddrinfo,
    "gethostbyname": socket.gethostbyname,
}
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1100,1300",
)


def _host(address) -> str:
    return str(address[0]) if isinstance(address, tuple) else str(address)


@pytest.fixture
def loopback_only(monkeypatch, forbid_network):
    """Allow loopback TCP (and only loopback) for one test; every other attempt is still recorded as a
    failure by ``forbid_network``."""
    attempts = forbid_network

    def refuse(what: str):
        attempts.append(what)
        raise OSError(f"network access attempted in a test: {what}")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and _host(address) not in LOOPBACK_HOSTS:
            refuse(f"socket.connect({address!r})")
        return _REAL["connect"](self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and _host(address) not in LOOPBACK_HOSTS:
            refuse(f"socket.connect_ex({address!r})")
        return _REAL["connect_ex"](self, address)

    def create_connection(address, *args, **kwargs):
        if _host(address) not in LOOPBACK_HOSTS:
            refuse(f"create_connection({address!r})")
        return _REAL["create_connection"](address, *args, **kwargs)

    def getaddrinfo(host, *args, **kwargs):
        if str(host) not in LOOPBACK_HOSTS:
            refuse(f"getaddrinfo({host!r})")
        return _REAL["getaddrinfo"](host, *args, **kwargs)

    def gethostbyname(host):
        if str(host) not in LOOPBACK_HOSTS:
            refuse(f"gethostbyname({host!r})")
        return _REAL["gethostbyname"](host)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", gethostbyname)
    return attempts


class LiveServer:
    """The app served by uvicorn in a thread, on a port of 127.0.0.1 chosen by the kernel."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def serve():
    """Serve another app: ``with serve(create_app(...)) as server: server.url``."""
    return LiveServer


@pytest.fixture(scope="session")
def web_root(tmp_path_factory) -> Path:
    """An empty project root for the app: no .cache/critical, so no model unless a test gives one."""
    return tmp_path_factory.mktemp("web-root")


@pytest.fixture(scope="session")
def live_server(web_root, micro_checkpoint):
    """The app as users get it (the default limits), offering the micro model's folder."""
    from fourfold.web.app import Settings, create_app

    settings = Settings(root=web_root, checkpoint_folders=(micro_checkpoint.parent,))
    with LiveServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def small_server(web_root):
    """The app with small upload limits, so that "too large" is quick to provoke."""
    from fourfold.web.app import Settings, create_app
    from fourfold.web.limits import Limits

    limits = Limits(table_mb=1.0, image_mb=1.0, video_mb=2.0, video_seconds=1.0)
    with LiveServer(create_app(Settings(root=web_root, limits=limits))) as server:
        yield server


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Selenium; skipped, saying why, where either is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev extra)")
    paths = chromium_paths()
    if paths is None:
        pytest.skip(
            "no system Chromium: install Debian's chromium and chromium-driver (make install does as root)"
        )
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fourfold-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 'micro' GPT-2 saved like the critical package's pre-trained model."""
    import torch

    from fourfold.critical.model import build_model, save_checkpoint
    from fourfold.critical.tokenizer import CharTokenizer

    torch.manual_seed(0)
    tokenizer = CharTokenizer()
    model = build_model("micro", tokenizer.vocab_size)
    return save_checkpoint(tmp_path_factory.mktemp("critical") / "micro.pt", model, tokenizer)


def face_frame(size=(240, 320)):
    """A textured background with Grace Hopper's face (faceblur's test split) at (60, 40)-(180, 180)."""
    import cv2
    import numpy as np

    from fourfold.faceblur.data import synthetic

    frame = synthetic.background(np.random.default_rng(0), *size)
    hopper = [f for f in synthetic.face_bank("test") if f.identity == "hopper"][0].face_crop
    frame[40:180, 60:180] = cv2.resize(hopper, (120, 140), interpolation=cv2.INTER_AREA)
    return frame


@pytest.fixture(scope="session")
def face_files(tmp_path_factory) -> dict[str, Path]:
    """A still (.png), a 0.5 s clip (.mp4) with that face, and a 2 s clip (over the test server's 1 s)."""
    import cv2
    import numpy as np

    from fourfold.faceblur.tool import video

    folder = tmp_path_factory.mktemp("faces")
    frame = face_frame()
    cv2.imwrite(str(folder / "hopper.png"), frame[..., ::-1])
    video.write_video(folder / "hopper.mp4", np.stack([frame] * 12), fps=24)
    video.write_video(folder / "long.mp4", np.zeros((48, 32, 48, 3), np.uint8), fps=24)
    return {"image": folder / "hopper.png", "clip": folder / "hopper.mp4", "long": folder / "long.mp4"}


@pytest.fixture(scope="session")
def face_frame_large():
    """``face_frame()`` upscaled 4x (1280 x 960)."""
    import cv2

    return cv2.resize(face_frame(), (1280, 960), interpolation=cv2.INTER_CUBIC)
