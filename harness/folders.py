"""Folders a run makes for itself, named after it, and removed by the next run once it is gone.

A run removes its folders at its end, on failure and Ctrl-C alike. A run
killed outright (SIGKILL, the OOM killer) removes nothing; so each folder is
``PARENT/PREFIX<pid>-<random>``, and whoever makes such a folder first removes
those (of its prefix, and of every prefix in ``PREFIXES``) whose owner process no
longer exists: any later run that makes a folder cleans up after a killed one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.processes import pid_alive, signals_deferred

# every kind of folder a run makes in TMPDIR (the embedded PostgreSQL's has its own
# in /dev/shm and /tmp: see harness.db.postmaster)
PREFIXES = ("chat-harness-provider-", "chat-harness-logs-", "chat-harness-fuzz-",
            "chat-harness-pg-")


def reap_orphans(parent: Path, prefix: str) -> list[Path]:
    """Remove ``parent/prefix<pid>-*`` of processes that no longer run; the removed ones."""
    removed = []
    for path in parent.glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def owned_folder(prefix: str, parent: Path | None = None, *,
                 made: list[Path] | None = None) -> Path:
    """A new folder ``parent/prefix<our pid>-*`` (``parent``: TMPDIR), after removing
    the orphans of ``prefix`` and of ``PREFIXES`` there. ``made`` gets the path
    appended even on Ctrl-C (for whoever removes it)."""
    parent = Path(tempfile.gettempdir()) if parent is None else parent
    for kind in {prefix, *PREFIXES}:
        reap_orphans(parent, kind)
    with signals_deferred():
        path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
        if made is not None:
            made.append(path)
    return path


@contextlib.contextmanager
def temporary(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """An :func:`owned_folder` for the block, removed when it ends (however it ends)."""
    made: list[Path] = []
    try:
        yield owned_folder(prefix, parent, made=made)
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


__all__ = ["owned_folder", "reap_orphans", "temporary"]
