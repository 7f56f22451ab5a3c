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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

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
                self.proc = subprocess.Popen(
                    argv, shell=isinstance(argv, str), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, env=dict(env) if env is not None else None,
                    cwd=cwd, start_new_session=True, preexec_fn=die_with_parent(),
                )
            except OSError as exc:
                raise TargetError(f"cannot start {what}: {exc}") from exc

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

    def wait_ready(self, ready: Callable[[], bool], *, timeout_s: float,
                   hint: str | None = None) -> float:
        """Poll ``ready()`` until true; fail at once if the child exits. Returns seconds."""
        started = time.monotonic()
        deadline = started + timeout_s
        while not ready():
            if not self.alive():
                raise TargetError(
                    f"{self.what} exited during start-up (exit code {self.proc.returncode}); "
                    f"its log ({self.log}) ends:\n{self.log_tail()}", hint=hint)
            if time.monotonic() >= deadline:
                raise TargetError(
                    f"{self.what} was not ready within {timeout_s:.0f} s; its log ({self.log}) "
                    f"ends:\n{self.log_tail()}", hint=hint)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.02)  # a poll interval that ends early on exit
        return time.monotonic() - started

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the group, wait up to ``timeout_s``, then SIGKILL. Safe to call twice."""
        proc = self.proc
        try:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=timeout_s)
        finally:
            # still running (too slow, or interrupted while waiting): the group is
            # the child's own session, nobody else's
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            else:  # the leader is gone; grandchildren it left in its group go too
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode


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
