"""Build hook: the wheel carries the checkout's scenarios and fixtures.

They live at the top of the repository (``scenarios/``, ``fixtures/``), where
users read and extend them; a wheel puts a copy under ``harness/_bundled/`` so
``pip install chat-harness`` can run the suite from any folder. An editable
install reads them from the checkout instead. Everything else is in
pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in ("scenarios", "fixtures"):
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, Path(self.build_lib) / "harness" / "_bundled" / name,
                                dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithData})
