"""Build hook: wheels carry a copy of the repository's top-level conf/ tree as ``fourfold/conf``, so that
``python -m fourfold`` works from an installed wheel. conf/ at the top level stays the only source."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildPyWithConf(build_py):
    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False) and CONF.is_dir():
            shutil.copytree(CONF, Path(self.build_lib) / "fourfold" / "conf", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithConf})
