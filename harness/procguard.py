"""The guard: a small process between the harness and a command it starts (Linux).

``python -I -S procguard.py PARENT GRACE PID_FD -- ARGV...`` runs ARGV as its
child (its pid written to the pipe PID_FD) and ends with it, taking along
everything ARGV started. A user's ``--target-cmd``
runs through ``/bin/sh -c``, and the backend is the shell's child (or
grandchild: ``cd app && npm start``). The kernel's parent-death signal is
armed per process and cleared by ``fork``: the shell would get it, its
children would not, and a harness killed outright (SIGKILL, the OOM killer)
would leave the backend running, still listening on its port. So the harness
starts this guard instead, in a session of its own, with the death signal
armed (:func:`harness.processes.die_with_parent`); the guard

- is a child subreaper: whatever ARGV leaves (double forks, ``setsid``)
  is reparented to the guard, not to init, and stays in reach;
- on the harness's stop (its signal to the guard's process group, which ARGV
  shares) lets ARGV stop as it likes: the harness keeps the time, and SIGKILLs
  the group past it;
- on the harness's death (the death signal, or ``getppid`` changed: the signal
  cannot be armed from a thread other than the main one), or a stop signal
  from anyone else, does what the harness would have done: SIGTERM to the
  group, ``GRACE`` seconds, then SIGKILL to every descendant;
- once ARGV has exited, stops what it left (SIGTERM, the grace, SIGKILL), then
  exits as ARGV did (same code, or the same signal), so the harness sees the
  command's end.

Standard library only and no ``harness`` import: it starts in ~20 ms and runs
with ``-I -S`` whatever the command's environment holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_STOP = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_WATCHED = _STOP | {signal.SIGCHLD}
_POLL_S = 0.1  # how often the parent is looked at without a signal


def descendants(root: int) -> list[int]:
    """Every live (non-zombie) process below ``root``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(pid, sig)


def _reap() -> dict[int, int]:
    """Wait for every child that has ended; their wait statuses."""
    ended: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = status


class Guard:
    def __init__(self, parent: int, grace_s: float, pid_fd: int = -1) -> None:
        self.parent = parent
        self.grace_s = grace_s
        self.pid_fd = pid_fd  # where the command's pid goes (-1: nowhere)
        self.me = os.getpid()
        self.deadline: float | None = None  # past it, SIGKILL to every descendant

    def parent_gone(self) -> bool:
        return os.getppid() != self.parent

    def stop(self, sig: int, sender: int) -> None:
        """A stop signal came. From the living parent (the harness's stop), it went to
        our whole process group: the command stops as it likes, the harness keeps
        the time. From anyone else, it goes on to the group, and the grace starts."""
        if sender != self.me and (sender != self.parent or self.parent_gone()):
            self.abandon(sig)

    def abandon(self, sig: int = signal.SIGTERM) -> None:
        """Nobody else will stop the command: ``sig`` to the group (once), then the grace.
        (It comes back to us too, blocked: taken for a stop signal of our own, ignored.)"""
        if self.deadline is not None:
            return
        self.deadline = time.monotonic() + self.grace_s
        with contextlib.suppress(OSError):
            os.killpg(0, sig)

    def run(self, argv: list[str]) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        if self.parent_gone():  # the harness died before we were ready
            return 128 + signal.SIGTERM
        _subreaper()
        if self.pid_fd >= 0:
            os.set_inheritable(self.pid_fd, False)  # the command does not get it
        child = None
        try:
            child = os.posix_spawnp(argv[0], argv, dict(os.environ), setsigmask=(),
                                    setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        except OSError as exc:
            print(f"chat-harness: cannot start {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        self._tell(child)
        if child is None:
            return 127
        status = self._wait(child)
        self._end_rest()
        return _as_exit(status)

    def _tell(self, child: int | None) -> None:
        """The command's pid to the harness, which watches it for the moment it ends
        (a moment before we do): an empty message if it did not start."""
        if self.pid_fd < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self.pid_fd, f"{child or ''}\n".encode())
        with contextlib.suppress(OSError):
            os.close(self.pid_fd)

    def _wait(self, child: int) -> int:
        while True:
            info = signal.sigtimedwait(_WATCHED, _POLL_S)
            if info is not None and info.si_signo in _STOP:
                self.stop(info.si_signo, info.si_pid)
            if self.parent_gone():
                self.abandon()
            ended = _reap()
            if child in ended:
                return ended[child]
            if self.deadline is not None and time.monotonic() > self.deadline:
                _signal_all(descendants(self.me), signal.SIGKILL)

    def _end_rest(self) -> None:
        """What the command left behind: SIGTERM, the grace, then SIGKILL."""
        left = descendants(self.me)
        if not left:
            _reap()
            return
        _signal_all(left, signal.SIGTERM)
        deadline = self.deadline or time.monotonic() + self.grace_s
        while left and time.monotonic() < deadline:
            signal.sigtimedwait({signal.SIGCHLD}, 0.05)
            _reap()
            left = descendants(self.me)
        while left:  # forks racing the kill: again until none is left
            _signal_all(left, signal.SIGKILL)
            signal.sigtimedwait({signal.SIGCHLD}, 0.05)
            _reap()
            left = descendants(self.me)


def _subreaper() -> None:
    # without it, orphans go to init; the process group still reaches most of them
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _as_exit(status: int) -> int:
    """Exit as the command did: its code, or killed by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be caught anyway
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[4] != "--":
        print("usage: procguard.py PARENT_PID GRACE_S PID_FD -- ARGV...", file=sys.stderr)
        return 2
    return Guard(int(argv[1]), float(argv[2]), int(argv[3])).run(argv[5:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
