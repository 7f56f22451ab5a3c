"""The wheel carries the scenarios and fixtures, so an installed harness runs from anywhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from runs import ROOT, unavailable

from harness.config import default_scenarios


def test_the_wheel_carries_every_scenario_and_fixture(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a clean copy: no build/ of an earlier build leaks in
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("harness", "scenarios", "fixtures"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
         str(source)], capture_output=True, text=True, check=False, timeout=300)
    if built.returncode != 0 and "setuptools" in built.stderr and "find" in built.stderr:
        unavailable("packaging",
                    f"no setuptools to build with (package index unreachable?): {built.stderr}")
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("chat_harness-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("scenarios", "fixtures"):
        want = {f"harness/_bundled/{kind}/{p.relative_to(ROOT / kind).as_posix()}"
                for p in (ROOT / kind).rglob("*") if p.is_file()}
        assert want and want <= names, sorted(want - names)[:5]
    assert "harness/contract/clauses.yaml" in names
    assert "harness/scenario/scenario.schema.json" in names  # for editors (chat-harness schema)


def test_without_a_scenarios_folder_here_the_harness_runs_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(default_scenarios()) == ROOT / "scenarios"  # the checkout's (editable install)
    (tmp_path / "scenarios" / "seed").mkdir(parents=True)
    assert default_scenarios() == "scenarios"  # a folder of one's own comes first
