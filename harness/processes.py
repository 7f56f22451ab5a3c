"""Child processes the harness starts: logged, polled until ready, always stopped.

Every process the harness starts (the scripted provider, a ``--target-cmd``
backend, the runs of the kill matrix) runs in its own session, so a Ctrl-C in
the terminal reaches the harness only, which then stops its children in
order: SIGTERM to the child's whole process group, a deadline, then SIGKILL.
Output goes to a log file whose last lines go into every error about the
child.

A harness killed outright (SIGKILL, the OOM killer) cannot stop anything; on
Linux its children then get a signal from the kernel (``die_with_parent``),
so a CI runner that kills a job does not keep its servers running. That
signal reaches one process only: a command run through ``/bin/sh -c``, or
started from a thread, runs under the guard (:mod:`harness.procguard`), which
takes the command's whole tree along when the harness goes.
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

_GUARD = Path(__file__).with_name("procguard.py")
GUARD_GRACE_S = 10.0  # what the guard gives the tree once the harness is gone, before SIGKILL


def guard_available() -> bool:
    """Whether commands can run under :mod:`harness.procguard` here (it reads /proc)."""
    return sys.platform.startswith("linux") and Path("/proc/self/stat").exists()


class Child:
    """One started process: ``alive``, ``log_tail``, ``wait_ready``, ``wait``, ``stop``.

    A string ``argv`` is a user's CMD, run by ``/bin/sh -c``. ``guard`` (None:
    when ``argv`` is a string or we are not on the main thread, where the
    kernel's death signal cannot be armed) puts :mod:`harness.procguard`
    between us and the command: then ``pid`` is the guard's, and the guard
    exits as the command does.
    """

    def __init__(self, argv: Sequence[str] | str, *, log: Path, what: str,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 guard: bool | None = None) -> None:
        """Start it now."""
        self.what = what
        self.log = log
        self._command: int | None = None  # the guarded command's pid, once the guard tells
        self._told: int | None = None  # the pipe it tells it through
        command = ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)
        if guard is None:
            guard = isinstance(argv, str) or (
                threading.current_thread() is not threading.main_thread())
        passed: tuple[int, ...] = ()
        if guard and guard_available():
            self._told, write = os.pipe()
            os.set_blocking(self._told, False)
            passed = (write,)
            command = [sys.executable, "-I", "-S", str(_GUARD), str(os.getpid()),
                       str(GUARD_GRACE_S), str(write), "--", *command]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            try:
                with signals_deferred():  # no child without its handle
                    self.proc = subprocess.Popen(
                        command, stdin=subprocess.DEVNULL,
                        stdout=out, stderr=subprocess.STDOUT, pass_fds=passed,
                        env=dict(env) if env is not None else None, cwd=cwd,
                        start_new_session=True, preexec_fn=die_with_parent(),
                    )
            except OSError as exc:
                self._close_pipe()
                raise TargetError(f"cannot start {what}: {exc}") from exc
            except BaseException:  # a Ctrl-C held back during the start: stop it again
                if hasattr(self, "proc"):
                    self.stop()
                self._close_pipe()
                raise
            finally:
                for fd in passed:
                    os.close(fd)

    @property
    def pid(self) -> int:
        """The process we started (a guard, for a guarded command): its group's id too."""
        return self.proc.pid

    @property
    def command_pid(self) -> int:
        """The command's own pid (the guard's until the guard has told it)."""
        return self._command_pid() or self.proc.pid

    def alive(self) -> bool:
        """Whether it runs; for a guarded command, the command itself (the guard ends a
        moment after it, once it has stopped what the command left)."""
        if self.proc.poll() is not None:
            return False
        command = self._command_pid()
        return command is None or not _ended(command)

    def _command_pid(self) -> int | None:
        if self._command is None and self._told is not None:
            try:
                told = os.read(self._told, 64)
            except BlockingIOError:  # not started yet
                return None
            except OSError:
                told = b""
            self._close_pipe()
            if told.strip().isdigit():
                self._command = int(told)
        return self._command

    def _close_pipe(self) -> None:
        told, self._told = self._told, None
        if told is not None:
            os.close(told)

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
                    f"{self.what} exited during start-up (exit code {self.exit_code()}); "
                    + self._log_says(), hint=hint)
            if time.monotonic() >= deadline:
                raise TargetError(
                    f"{self.what} was not ready within {timeout_s:.0f} s; " + self._log_says(),
                    hint=hint)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.02)  # a poll interval that ends early on exit
        return time.monotonic() - started

    def exit_code(self) -> int | None:
        """Once it has ended: its exit code (a guard's comes a moment after the command's
        end); None while it runs."""
        if self.proc.poll() is None and not self.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=GUARD_GRACE_S + 5)
        return self.proc.poll()

    def wait(self) -> int:
        """Until it exits by itself; its exit code."""
        try:
            return self.proc.wait()
        finally:
            self._close_pipe()

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the group, wait up to ``timeout_s``, then SIGKILL. Safe to call twice."""
        try:
            return stop_process(self.proc, timeout_s=timeout_s)
        finally:
            self._close_pipe()


def stop_all(children: Sequence[Child], timeout_s: float = 15.0) -> None:
    """Stop many at once: SIGTERM to every group, one deadline for all, then SIGKILL."""
    for child in children:
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        stop_process(child.proc, sig=signal.SIGKILL, timeout_s=0)  # the slow, and what is left


def _ended(pid: int) -> bool:
    """No such process any more, or a zombie (its parent has not waited for it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat.rsplit(b")", 1)[1].split()[:1] == [b"Z"]


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
