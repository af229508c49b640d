"""Seeding reproduces draws; thread counts are fixed on request; the test suite refuses network access."""

import random
import socket

import numpy as np
import pytest
import torch

from fourfold.core.seeding import fix_thread_counts, seed_everything


def draws(seed):
    rng = seed_everything(seed)
    return random.random(), np.random.rand(), torch.rand(1).item(), rng.random()  # noqa: NPY002


def test_same_seed_same_draws_and_different_seed_differs():
    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


def test_fix_thread_counts_sets_torch_and_every_loaded_blas():
    from threadpoolctl import ThreadpoolController

    controller, threads = ThreadpoolController(), torch.get_num_threads()
    before = controller.info()
    try:
        fix_thread_counts(2)
        assert torch.get_num_threads() == 2
        assert {lib["num_threads"] for lib in ThreadpoolController().info()} == {2}
        fix_thread_counts(1)
        assert torch.get_num_threads() == 1
        assert {lib["num_threads"] for lib in ThreadpoolController().info()} == {1}
    finally:
        for lib in before:
            controller.select(filepath=lib["filepath"]).limit(limits=lib["num_threads"])
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="threads"):
        fix_thread_counts(0)


def test_network_is_refused_and_unix_sockets_work(forbid_network):
    with pytest.raises(RuntimeError, match="network access attempted"):
        socket.getaddrinfo("example.org", 443)
    assert forbid_network == ["getaddrinfo('example.org')"]
    forbid_network.clear()  # provoked on purpose: do not fail this test for it
    a, b = socket.socketpair()  # AF_UNIX: multiprocessing and joblib rely on these
    a.sendall(b"ok")
    assert b.recv(2) == b"ok"
    a.close()
    b.close()


def test_fixture_fails_a_test_that_swallows_the_error(pytester):
    pytester.makeconftest(open(__file__.replace("core/test_seeding_network.py", "conftest.py")).read())
    pytester.makepyfile(
        """
        import socket

        def test_sneaky():
            try:
                socket.create_connection(("example.org", 80), timeout=1)
            except Exception:
                pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    # The guard fails the test at teardown (an error in pytest's summary: the run goes red).
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test tried to use the network*create_connection*"])
