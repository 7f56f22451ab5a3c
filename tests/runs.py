"""Helpers for tests that start real runs: their environment, polling, what they leave.

Imported by name from the tests next to it (pytest puts this folder on
``sys.path``; the folder is not a package).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = f"{sys.executable} -m harness.reference"
# Parts .ci/run sets up (docker, chromium, packaging): their tests fail, not skip, without them
REQUIRED = frozenset(os.environ.get("CHAT_HARNESS_REQUIRE", "").replace(",", " ").split())


def unavailable(part: str, reason: str) -> NoReturn:
    """Skip a test for want of ``part``, or fail it where CI said ``part`` is there
    (``CHAT_HARNESS_REQUIRE``, set by .ci/run): a gate whose tests skip proves nothing."""
    if part in REQUIRED:
        pytest.fail(f"{reason}; but CHAT_HARNESS_REQUIRE says {part} is set up here")
    pytest.skip(reason)


def run_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Our environment for a child run whose TMPDIR is ``tmp`` (created), minus a
    database URL or mutant of the caller's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHAT_HARNESS_DATABASE_URL", "CHAT_HARNESS_MUTANT",
                         "CHAT_HARNESS_VARIANT")}
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(TMPDIR=str(tmp), **extra)
    return env


def chat_harness(*args: str, tmp: Path, cwd: Path = ROOT, timeout: float = 300,
                 **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` as a user runs it, in ``cwd``, with a TMPDIR of its own
    (:func:`run_env`, ``env`` added); what it printed captured as text."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd,
                          env=run_env(tmp, **env), capture_output=True, text=True,
                          timeout=timeout)


def processes_of(tmp: Path) -> list[int]:
    """Processes whose environment carries this TMPDIR: a run's and its children's."""
    mark = f"TMPDIR={tmp}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def poll_until(predicate: Callable[[], Any], failure: Callable[[], str],
               deadline_s: float, interval_s: float = 0.02) -> Any:
    """Poll ``predicate`` until it is truthy (and return it); at the deadline,
    fail the test with ``failure()``."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            break
        time.sleep(interval_s)  # the poll interval, not a wait standing in for an event
    if not value:
        pytest.fail(failure())
    return value


def gone(pid: int) -> bool:
    """No such process, or a zombie (it runs nothing; init reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def listening() -> dict[int, int]:
    """Every listening TCP socket on this host: inode -> port."""
    sockets: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # TCP_LISTEN
                sockets[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return sockets


def ports_of(pids: list[int]) -> set[int]:
    """The TCP ports these processes listen on."""
    sockets = listening()
    ports = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:[") and int(link[8:-1]) in sockets:
                    ports.add(sockets[int(link[8:-1])])
    return ports


def communicate_or_dump(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """``proc.communicate(timeout)``'s output; past the timeout, the stacks of every
    thread of the run (SIGUSR1: chat-harness's faulthandler) in the test's failure."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):  # the stacks written meanwhile
            proc.wait(timeout=3)
        proc.kill()
        out = proc.communicate()[0]  # everything it wrote, from the start
        raise AssertionError(f"the run did not end within {timeout:.0f} s; its output, "
                             "then where its threads were:\n"
                             + out.decode(errors="replace")[-6000:]) from None


def slow_scenarios(folder: Path, *, steps: int = 40, delay_ms: int = 400) -> Path:
    """``folder/scenarios`` with one scenario of ``steps`` slowly answered chat steps:
    a run that stays busy long enough to be interrupted, or looked into."""
    scenarios = folder / "scenarios"
    scenarios.mkdir()
    (scenarios / "slow.yaml").write_text(
        "name: slow\nmodel: m\nsteps:\n"
        + "".join(f"  - chat: hello {i}\n    provider: {{reply: hi, delay_ms: {delay_ms}}}\n"
                  for i in range(steps)), encoding="utf-8")
    return scenarios
