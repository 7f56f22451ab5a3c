"""Child processes the harness starts: logged, polled until ready, always stopped.

Every server the harness starts (the scripted provider, a ``--target-cmd``
backend) runs in its own session, so a Ctrl-C in the terminal reaches the
harness only, which then stops its children in order: SIGTERM to the child's
whole process group, a deadline, then SIGKILL. Output goes to a log file whose
last lines go into every error about the child.

A harness killed outright (SIGKILL, the OOM killer) cannot stop anything; on
Linux its children then get a signal from the kernel (``die_with_parent``),
so a CI runner that kills a job does not keep its servers running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TargetError


class Child:
    """One started process: ``alive``, ``log_tail``, ``wait_ready``, ``stop``."""

    def __init__(self, argv: Sequence[str] | str, *, log: Path, what: str,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        """Start it now; a string ``argv`` runs through ``/bin/sh -c`` (a user's CMD)."""
        self.what = what
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            try:
                with signals_deferred():  # no child without its handle
                    self.proc = subprocess.Popen(
                        argv, shell=isinstance(argv, str), stdin=subprocess.DEVNULL,
                        stdout=out, stderr=subprocess.STDOUT,
                        env=dict(env) if env is not None else None, cwd=cwd,
                        start_new_session=True, preexec_fn=die_with_parent(),
                    )
            except OSError as exc:
                raise TargetError(f"cannot start {what}: {exc}") from exc
            except BaseException:  # a Ctrl-C held back during the start: stop it again
                if hasattr(self, "proc"):
                    self.stop()
                raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _log_says(self) -> str:
        tail = self.log_tail()
        return f"its log ({self.log}) ends:\n{tail}" if tail.strip() else (
            f"its log ({self.log}) is empty")

    def wait_ready(self, ready: Callable[[], bool], *, timeout_s: float,
                   hint: str | None = None) -> float:
        """Poll ``ready()`` until true; fail at once if the child exits. Returns seconds."""
        started = time.monotonic()
        deadline = started + timeout_s
        while not ready():
            if not self.alive():
                raise TargetError(
                    f"{self.what} exited during start-up (exit code {self.proc.returncode}); "
                    + self._log_says(), hint=hint)
            if time.monotonic() >= deadline:
                raise TargetError(
                    f"{self.what} was not ready within {timeout_s:.0f} s; " + self._log_says(),
                    hint=hint)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.02)  # a poll interval that ends early on exit
        return time.monotonic() - started

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the group, wait up to ``timeout_s``, then SIGKILL. Safe to call twice."""
        return stop_process(self.proc, timeout_s=timeout_s)


def stop_process(proc: subprocess.Popen[Any], *, sig: int = signal.SIGTERM,
                 timeout_s: float = 10.0, whole_group: bool = True) -> int | None:
    """Stop a process started in a session of its own; its exit code. Safe to call twice.

    ``sig`` to its whole process group (or to the process only: ``whole_group``
    False, for a server that stops its own children), up to ``timeout_s`` to
    exit, then SIGKILL to the group; a Ctrl-C while waiting goes on only once
    the group is killed. Returns when nothing of the group runs any more.
    """
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if whole_group:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)
    finally:
        # still running (too slow, or interrupted while waiting), or grandchildren
        # it left: the group is the process's own session, nobody else's
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _wait_group_gone(proc.pid, deadline_s=10.0)
    return proc.returncode


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold a SIGINT or SIGTERM back until the block ends, then deliver it.

    For steps that must not be cut in two: a process started and its handle
    kept, a folder made and its path noted. A Ctrl-C in the middle of
    ``Popen`` would leave a child nobody stops; in the middle of ``mkdtemp``,
    a folder nobody removes. Only Python handlers are held (the pytest plugin
    installs them); from a thread other than the main one, a no-op (signals
    are handled in the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    held: dict[int, Callable[[int, Any], Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):
            held[sig] = handler
            signal.signal(sig, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield
    finally:
        for held_sig, handler in held.items():
            signal.signal(held_sig, handler)
        if caught:
            signum, frame = caught[0]
            held[signum](signum, frame)  # the usual handler: raises KeyboardInterrupt


def run_command(argv: Sequence[str], *,
                user: str | None = None) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True)``, for commands that write
    into folders of ours.

    Interrupted, ``subprocess.run`` gives the command a quarter of a second and
    then leaves it dying, and whatever it started running: ``initdb``'s
    bootstrap server still writing into the data folder we are about to
    remove. Here the command runs in a process group of its own, which is
    killed, and waited for, before the interrupt goes on.
    """
    proc: subprocess.Popen[str] | None = None
    try:
        with signals_deferred():
            proc = subprocess.Popen(list(argv), user=user, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
        out, err = proc.communicate()
    except BaseException:
        if proc is not None:
            stop_process(proc, sig=signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_group_gone(pgid: int, deadline_s: float) -> None:
    """Poll until no process of group ``pgid`` runs (zombies run nothing)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and _group_runs(pgid):
        time.sleep(0.005)


def _group_runs(pgid: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: a zombie counts as running here
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the child binds it a moment later)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when we die.

    Linux only (``prctl(PR_SET_PDEATHSIG)``), and only from the main thread:
    the signal follows the death of the *thread* that started the child, and a
    worker thread may end long before the harness does. ``None`` elsewhere.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
            threading.main_thread()):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # we died between the fork and the prctl
            os.kill(os.getpid(), sig)

    return arm
