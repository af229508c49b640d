"""`make bench` passes each paper's benchmark light settings that its command line accepts."""

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).parents[2] / "Makefile"


def light_settings() -> dict[str, str]:
    text = MAKEFILE.read_text()
    light = text[text.index("ifeq ($(BENCH),full)") :].split("else\n", 1)[1].split("endif", 1)[0]
    return dict(re.findall(r"^BENCH_ARGS_(\w+) := (.*)$", light, flags=re.M))


class Parsed(Exception):
    """Raised instead of running the benchmark once its arguments parsed."""


def test_every_paper_with_a_bench_gets_light_settings():
    papers = {p.parent.name for p in MAKEFILE.parent.glob("packages/fourfold/*/bench.py")}
    settings = light_settings()
    assert papers <= set(settings)
    assert all(settings[p].strip() for p in papers)


@pytest.mark.parametrize("paper", sorted(light_settings()))
def test_light_settings_are_flags_the_bench_accepts(paper, monkeypatch):
    bench = importlib.import_module(f"fourfold.{paper}.bench")
    real_parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(real_parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    argv = shlex.split(light_settings()[paper])
    with pytest.raises(Parsed) as parsed:
        bench.main(argv)  # an unknown flag or a bad value exits (SystemExit) instead
    given = dict(zip(argv[::2], argv[1::2]))
    namespace = vars(parsed.value.args[0])
    for flag, value in given.items():
        assert str(namespace[flag.lstrip("-").replace("-", "_")]) == value
