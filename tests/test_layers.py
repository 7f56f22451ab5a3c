"""The layers docs/reference/layout.md draws hold, and no package has an import cycle
(import-linter)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_imports_keep_to_the_layers_and_make_no_cycle() -> None:
    command = shutil.which("lint-imports")
    assert command, "lint-imports is missing: pip install -e '.[dev]' (import-linter)"
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for name in ("the harness in layers", "the reference backend stands alone",
                 "no import cycle between the modules of a package"):
        assert f"{name}" in done.stdout and "BROKEN" not in done.stdout, done.stdout[-3000:]
