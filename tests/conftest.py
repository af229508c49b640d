"""Test-suite settings: offline environment, no network sockets, `slow` and `gpu` markers."""

import socket

import pytest

from fourfold.core.environment import configure_environment

configure_environment()

pytest_plugins = ["pytester"]  # lets tests/core check this conftest's own network guard

_NETWORK_FAMILIES = {socket.AF_INET, socket.AF_INET6}


class NetworkAccessError(RuntimeError):
    """Raised when a test tries to reach the network."""


@pytest.fixture(autouse=True)
def forbid_network(monkeypatch):
    """Fail any test that resolves a host name or connects an internet socket.

    The attempt raises at the call site (naming what was called) and, in case library code swallows that
    error, the test is failed afterwards too. Unix-domain sockets (multiprocessing, joblib) stay allowed.
    """
    attempts: list[str] = []

    def refuse(what: str):
        attempts.append(what)
        raise NetworkAccessError(f"network access attempted in a test: {what}")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family in _NETWORK_FAMILIES:
            refuse(f"socket.connect({address!r})")
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in _NETWORK_FAMILIES:
            refuse(f"socket.connect_ex({address!r})")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(
        socket, "create_connection", lambda address, *a, **k: refuse(f"create_connection({address!r})")
    )
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: refuse(f"getaddrinfo({host!r})"))
    monkeypatch.setattr(socket, "gethostbyname", lambda host: refuse(f"gethostbyname({host!r})"))
    yield attempts  # a test that provokes an attempt on purpose clears this list
    if attempts:
        pytest.fail(f"test tried to use the network: {attempts}")


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_items:
            item.add_marker(skip)
