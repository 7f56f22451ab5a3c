"""Ctrl-C and SIGTERM at random moments of a real run leave nothing behind.

CI cancels jobs with SIGTERM and people press Ctrl-C; either can come while
PostgreSQL starts, while a scenario runs or is checked, or while the run shuts
down. Each case starts a real ``chat-harness run`` in its own TMPDIR, waits for
its phase to begin, then for a random delay drawn up front from a fixed seed
(so a failure is reproducible), sends the signal, and checks that the run
stops by itself and leaves no process (found by the TMPDIR in its environment),
no listening port, no container, no data folder (in its TMPDIR, or wherever
its PostgreSQL ran: ``-D`` of the server, ``/dev/shm``) and no half-written
entry in the warm cache behind.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from runs import (
    REFERENCE,
    ROOT,
    listening,
    poll_until,
    ports_of,
    processes_of,
    run_env,
    unavailable,
)

SEED = 8_2025  # the moments are random, and the same in every run of this test
# the black-box run is a subset: a whole black-box suite costs ~2x the in-process one
CMD_SCENARIOS = ("scenarios/seed", "scenarios/chat", "scenarios/stream")
# what a cache entry being written is called (whatever the cache's layout, its
# temporary names say so)
STAGING = re.compile(r"tmp|staging|partial|building|incomplete", re.IGNORECASE)


@dataclass(frozen=True)
class Moment:
    """When to send which signal to which kind of run."""

    sig: signal.Signals
    phase: str  # "db-start", "scenarios" (steps and checks) or "shutdown"
    delay_s: float  # after the phase begins
    target: str = "in-process"  # or "target-cmd"
    db: str = "embedded"  # or "container"

    @property
    def id(self) -> str:
        where = self.target if self.db == "embedded" else f"{self.target}-{self.db}"
        return f"{where}-{self.sig.name}-{self.phase}-{self.delay_s:.2f}s"


def _moments() -> list[Moment]:
    rng = random.Random(SEED)
    spans = {"db-start": (0.0, 0.25), "scenarios": (0.0, 3.0), "shutdown": (0.0, 0.3)}

    def at(sig: signal.Signals, phase: str, **kw: Any) -> Moment:
        return Moment(sig, phase, round(rng.uniform(*spans[phase]), 3), **kw)

    moments = [at(sig, phase) for phase in spans for sig in (signal.SIGINT, signal.SIGTERM)]
    moments += [at(signal.SIGTERM, "scenarios", target="target-cmd"),
                at(signal.SIGINT, "db-start", target="target-cmd"),
                at(signal.SIGINT, "db-start", db="container")]
    return moments


MOMENTS = _moments()


class RunDidNotStop(AssertionError):
    """The run was still there a minute after the signal."""


class FoldersLeft(AssertionError):
    """Every process is gone, but folders of the run are not."""


CASES = [pytest.param(m, id=m.id) for m in MOMENTS]


# -- what a run leaves behind ------------------------------------------------------


def _describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            args = "?"
        out.append(f"{pid}: {args.strip()}")
    return "\n".join(out)


def _data_dirs_of(pids: list[int]) -> set[Path]:
    """The data folders (``postgres -D DIR``) these processes run on."""
    found = set()
    for pid in pids:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for flag, value in itertools.pairwise(args):
            if flag == b"-D":
                found.add(Path(value.decode()))
    return found


def _ram_dirs_of(pid: int) -> list[Path]:
    """Folders on /dev/shm named after the run's pid (where its data folder may live)."""
    shm = Path("/dev/shm")
    return [p for p in shm.glob("chat-harness*") if f"-{pid}-" in p.name] if shm.is_dir() else []


def _containers_of(pid: int) -> list[str]:
    """Containers the run with this pid started (they carry its pid as a label)."""
    proc = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=chat-harness=1",
         "--filter", f"label=chat-harness.pid={pid}"],
        capture_output=True, text=True, timeout=30, check=False)
    return proc.stdout.split()


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "version"], capture_output=True, timeout=10,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# -- the runs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One warm cache for these runs: the first builds it (maybe interrupted), later copy it."""
    return tmp_path_factory.mktemp("pg-cache")


def _start(moment: Moment, tmp: Path, reports: Path, cache: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHAT_HARNESS_DATABASE_URL", "CHAT_HARNESS_MUTANT",
                         "CHAT_HARNESS_VARIANT")}
    env.update(TMPDIR=str(tmp), CHAT_HARNESS_CACHE=str(cache))
    args = ["scenarios"] if moment.target == "in-process" else list(CMD_SCENARIOS)
    if moment.target == "target-cmd":
        args += ["--target-cmd", REFERENCE]
    args += ["--db", moment.db, "--reports", str(reports), "-q", "-p", "no:cacheprovider"]
    log = (reports.parent / "run.out").open("wb")
    with log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "harness", "run", *args], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def _phase_began(moment: Moment, proc: subprocess.Popen[bytes], tmp: Path,
                 reports: Path) -> Callable[[], bool]:
    """Whether the moment's phase has begun, as seen from outside the run."""
    def db_start() -> bool:
        if moment.db == "container":
            return bool(_containers_of(proc.pid))
        return any(tmp.glob("chat-harness-pg-*"))

    def scenarios() -> bool:
        if moment.target == "target-cmd":
            log = reports / "target.log"
            return log.exists() and b"POST /api/chat" in log.read_bytes()
        return bool(ports_of(processes_of(tmp)))  # PostgreSQL listens: scenarios are next

    def shutdown() -> bool:
        return (reports / "results.json").exists()

    began = {"db-start": db_start, "scenarios": scenarios, "shutdown": shutdown}[moment.phase]

    def check() -> bool:
        return began() or proc.poll() is not None
    return check


@pytest.mark.parametrize("moment", CASES)
def test_a_signal_at_a_random_moment_leaves_nothing(
    moment: Moment, tmp_path: Path, run_tmp: Path, cache: Path
) -> None:
    if moment.db == "container" and not _docker_answers():
        unavailable("docker", "no Docker engine answers here")
    tmp, reports = run_tmp, tmp_path / "reports"
    proc = _start(moment, tmp, reports, cache)
    out_file = tmp_path / "run.out"

    def output() -> str:
        return out_file.read_text(errors="replace")[-4000:]

    ports: set[int] = set()
    data_dirs: set[Path] = set()
    try:
        poll_until(_phase_began(moment, proc, tmp, reports),
                   lambda: f"phase {moment.phase} never began\n{output()}", deadline_s=120)
        at = time.monotonic() + moment.delay_s
        # the one timed wait that is the point: the random delay into the phase
        poll_until(lambda: time.monotonic() >= at or proc.poll() is not None,
                   lambda: "unreachable", deadline_s=moment.delay_s + 5)
        ours = processes_of(tmp)
        ports, data_dirs = ports_of(ours), _data_dirs_of(ours)
        delivered = proc.poll() is None
        if delivered:
            proc.send_signal(moment.sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise RunDidNotStop(f"the run did not stop within 60 s of {moment.sig.name}\n"
                                f"{output()}") from None
        _check_nothing_left(moment, proc, tmp, cache, ports, data_dirs, output())
        if moment.phase == "scenarios" and moment.db == "embedded":
            assert ports and data_dirs, "nothing was open mid-run: the checks checked nothing"
        if moment.phase != "shutdown":
            text = output()
            assert delivered, f"the run ended before the {moment.phase} signal\n{text}"
            assert proc.returncode != 0, f"an interrupted run reported success\n{text}"
            # at shutdown a signal can land in a finalizer (an event loop's __del__),
            # where Python prints it as "Exception ignored in": left out there
            assert "Traceback (most recent call last)" not in text, text
    finally:
        _clean_up(proc, tmp, data_dirs)


def _check_nothing_left(moment: Moment, proc: subprocess.Popen[bytes], tmp: Path, cache: Path,
                        ports: set[int], data_dirs: set[Path], text: str) -> None:
    # children are reaped a moment after the parent
    poll_until(lambda: not processes_of(tmp),
               lambda: "still running:\n" + _describe(processes_of(tmp)), deadline_s=30)
    still = sorted(ports & set(listening().values()))
    assert not still, f"ports {still} of the run still listen"
    left = [str(p) for p in tmp.iterdir()] + sorted(str(d) for d in data_dirs if d.exists()) \
        + [str(d) for d in _ram_dirs_of(proc.pid)]
    if left:
        raise FoldersLeft(f"left behind: {left}\n{text}")
    half_built = [p.name for p in cache.iterdir() if STAGING.search(p.name)]
    assert not half_built, f"half-written warm cache entries: {half_built}"
    if moment.db == "container":
        poll_until(lambda: not _containers_of(proc.pid),
                   lambda: f"containers left: {_containers_of(proc.pid)}", deadline_s=30)


def _clean_up(proc: subprocess.Popen[bytes], tmp: Path, data_dirs: set[Path]) -> None:
    """After the verdict: stop what a failed case left (by pid: all started by this test)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_of(tmp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(BaseException):
            poll_until(lambda: not processes_of(tmp), lambda: "", deadline_s=10)
    for folder in [*data_dirs, *_ram_dirs_of(proc.pid)]:
        shutil.rmtree(folder.parent if folder.name == "data" else folder, ignore_errors=True)


# -- a Ctrl-C while a command writes the data folder -------------------------------------

_WRITES = {
    # initdb's bootstrap server writes template1 (base/1) into the data folder
    "initdb": ("base/1", "off"),
    # tar -x unpacks a warm cache entry into it
    "unpack": ("base", "on"),
}


@pytest.mark.parametrize("step", list(_WRITES))
def test_a_ctrl_c_while_the_data_folder_is_written_leaves_nothing(
        step: str, tmp_path: Path, run_tmp: Path) -> None:
    """The moment is not random: the signal comes once the command is seen writing."""
    marker, cache = _WRITES[step]
    script = f"""
        import glob, os, signal, sys, threading, time
        import psycopg
        from harness.db import embedded

        def interrupt_once_written():
            end = time.monotonic() + 60
            while time.monotonic() < end:
                if (glob.glob(os.path.join(os.environ["TMPDIR"], "chat-harness-pg-*",
                                           "data", {marker!r}))
                        or glob.glob(f"/dev/shm/chat-harness-pg-data-{{os.getpid()}}-*/data/"
                                     + {marker!r})):
                    os.kill(os.getpid(), signal.SIGINT)
                    return
                time.sleep(0.0005)

        if {cache == "on"}:  # a warm entry to unpack
            embedded.start().close()
        threading.Thread(target=interrupt_once_written, daemon=True).start()
        try:
            embedded.start().close()
        except KeyboardInterrupt:
            print("interrupted", os.getpid())
    """
    env = run_env(run_tmp, CHAT_HARNESS_CACHE=str(tmp_path / "cache") if cache == "on" else "off")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.stdout.startswith("interrupted"), done.stdout + done.stderr
    pid = int(done.stdout.split()[1])
    poll_until(lambda: not processes_of(run_tmp),
               lambda: "still running:\n" + _describe(processes_of(run_tmp)), deadline_s=30)
    left = [str(p) for p in run_tmp.iterdir()] + [str(p) for p in _ram_dirs_of(pid)]
    assert not left, f"left behind: {left}"
