"""One PostgreSQL server process of the embedded provider, and where its files live.

initdb, start, readiness, stop: the process side of :mod:`harness.db.embedded`
(which decides where the data folder comes from). The data folder goes on
tmpfs where there is a roomy one (``ram_folder``); the socket folder stays in
the run's TMPDIR folder unless that path is too long for a Unix socket.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.db import pgcache
from harness.errors import DatabaseError
from harness.folders import owned_folder
from harness.processes import (
    die_with_parent,
    free_port,
    run_command,
    signals_deferred,
    stop_process,
)

if TYPE_CHECKING:
    import psycopg

SUPERUSER = "postgres"

# Settings for a throw-away test server: durability buys nothing here.
_FAST = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
    "shared_buffers=64MB",
    "log_min_messages=warning",
    # in the data folder, which goes with the server, not in /dev/shm (a killed
    # server would leave its segments there)
    "dynamic_shared_memory_type=mmap",
)


def ram_folder() -> Path | None:
    """``/dev/shm`` when it is a roomy tmpfs, else ``None`` (``CHAT_HARNESS_PG_TMPFS=0``: never).

    The data folder goes there: creating its ~1300 files costs a tenth of
    what it costs on a busy ext4 (journal), which is most of a warm start.
    Containers often give ``/dev/shm`` 64 MB; below 1 GB free we stay on disk.
    """
    if os.environ.get("CHAT_HARNESS_PG_TMPFS", "").lower() in ("0", "off", "no", "false"):
        return None
    shm = Path("/dev/shm")
    try:
        st = os.statvfs(shm)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < 1 << 30 or not os.access(shm, os.W_OK | os.X_OK):
        return None
    return shm


def _prepare_root_access(user: str, root: Path, binaries: Path) -> tuple[int, int]:
    """As root: make sure ``user`` exists and can reach what it needs; its uid and gid.

    ``root`` becomes the user's (``initdb`` and the server write there).
    """
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        done = run_command(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", user])
        if done.returncode != 0:
            raise DatabaseError(
                f"cannot create the system user {user!r} to run PostgreSQL as: "
                f"{done.stderr.strip()}",
                hint="PostgreSQL refuses to run as root: create the user, or run "
                "chat-harness as another user") from None
        pw = pwd.getpwnam(user)
    # Every folder above the binaries and the data must be traversable.
    for path in (binaries, root):
        for parent in [path, *path.parents]:
            mode = parent.stat().st_mode
            if mode & 0o011 != 0o011:
                parent.chmod(mode | 0o055)
    # ~750 files: walked once per installation (the stamp goes with a reinstall)
    stamp = binaries.parent / ".chat-harness-readable"
    if not stamp.exists():
        for sub in (binaries.parent / "lib", binaries.parent / "share"):
            for dirpath, dirnames, filenames in os.walk(sub):
                for name in dirnames + filenames:
                    p = Path(dirpath) / name
                    mode = p.stat().st_mode
                    if mode & 0o055 != 0o055:
                        p.chmod(mode | 0o055)
        with contextlib.suppress(OSError):
            stamp.touch()
    os.chown(root, pw.pw_uid, pw.pw_gid)
    return pw.pw_uid, pw.pw_gid


_RAM_PREFIX = "chat-harness-pg-data-"
_ROOT_PREFIX = "chat-harness-pg-"  # in TMPDIR: the log and the socket folder
_SHORT_PREFIX = "chpg-"  # in /tmp: the socket folder, when TMPDIR is too deep
_SOCKET_MAX = 107 - len("/.s.PGSQL.65535")  # sun_path holds 108 bytes


def _socket_folder(preferred: Path, home: Path) -> Path | None:
    """``preferred``, unless a deep TMPDIR makes the socket's path too long for Unix
    (``None``: make one in ``/tmp``)."""
    for candidate in (preferred, home / "s"):
        if len(os.fsencode(candidate)) <= _SOCKET_MAX:
            return candidate
    return None


# Servers not removed yet: removed when the interpreter exits, whatever
# happened (a Ctrl-C between a start and the caller keeping what it returned)
_live: set[Postmaster] = set()


@atexit.register
def _remove_live() -> None:
    for server in list(_live):
        server.remove()


class Postmaster:
    """One ``postgres`` process on its data folder, in its own process group.

    It makes its own folders: ``root`` (in TMPDIR) holds the log and, where
    the path is short enough, the socket folder; the data folder is
    ``root/data``, or a folder of ours on ``/dev/shm`` (see ``ram_folder``).
    :meth:`remove` stops the server and removes them all. ``user``: the
    system user to run as (a root run), created on first use.
    """

    def __init__(self, binaries: Path, user: str | None) -> None:
        self.binaries, self.user = binaries, user
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._made: list[Path] = []  # every folder made so far, for remove()
        _live.add(self)
        try:
            tmp = Path(tempfile.gettempdir())
            self.root = self._folder(tmp, _ROOT_PREFIX)
            self.log = self.root / "postgres.log"
            self.home = self.root  # the data folder's parent
            owner = _prepare_root_access(user, self.root, binaries) if user else None
            ram = ram_folder()
            if ram is not None:
                self.home = self._folder(ram, _RAM_PREFIX)
                if owner is not None:
                    os.chown(self.home, *owner)
            sock = _socket_folder(self.root / "s", self.home)
            if sock is None:
                sock = self._folder(Path("/tmp"), _SHORT_PREFIX) / "s"
                sock.parent.chmod(0o755)  # the server's user (root runs) must reach into it
            self.sock = sock
            self.sock.mkdir()
            if owner is not None:
                os.chown(self.sock, *owner)
        except BaseException:
            self.remove()
            raise
        self.data = self.home / "data"

    def _folder(self, parent: Path, prefix: str) -> Path:
        """A new folder ``parent/prefix<pid>-*``, noted for :meth:`remove` (even on Ctrl-C);
        those of runs killed outright (the kernel stopped their PostgreSQL, see
        ``die_with_parent``) go first."""
        return owned_folder(prefix, parent, made=self._made)

    def socket_url(self, db: str) -> str:
        return f"postgresql://{SUPERUSER}@/{db}?host={self.sock}&port={self.port}"

    def initdb(self, password_file: Path) -> None:
        init = run_command(
            [str(self.binaries / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
             f"--pwfile={password_file}", *pgcache.initdb_args(self.binaries)], user=self.user)
        if init.returncode != 0:
            raise DatabaseError(f"initdb failed:\n{init.stderr.strip() or init.stdout.strip()}")

    def launch(self) -> None:
        self.port = free_port()
        args = [str(self.binaries / "postgres"), "-D", str(self.data), "-k", str(self.sock),
                "-h", "127.0.0.1", "-p", str(self.port)]
        for setting in _FAST:
            args += ["-c", setting]
        with open(self.log, "ab") as log, signals_deferred():  # no server without its handle
            self.proc = subprocess.Popen(
                args, user=self.user, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, not it
                # a harness killed outright: the kernel asks for a fast shutdown
                preexec_fn=die_with_parent(signal.SIGINT),
            )

    def wait_ready(self, db: str, deadline_s: float) -> psycopg.Connection[Any]:
        """Poll until the server says ``ready``, then connect to ``db`` (autocommit)."""
        import psycopg

        proc, pidfile = self.proc, self.data / "postmaster.pid"
        assert proc is not None
        end = time.monotonic() + deadline_s
        last: Exception | None = None
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise DatabaseError("embedded PostgreSQL exited while starting\n"
                                    f"--- postgres.log ---\n{self.log_tail()}")
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                try:
                    return psycopg.connect(self.socket_url(db), autocommit=True,
                                           connect_timeout=5)
                except psycopg.OperationalError as exc:
                    last = exc
            time.sleep(0.003)  # poll interval: the start takes ~0.1 s
        raise DatabaseError(f"embedded PostgreSQL did not accept connections within "
                            f"{deadline_s:.0f} s: {last}\n--- postgres.log ---\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Fast shutdown (a clean one: it checkpoints), SIGKILL past a deadline."""
        proc, self.proc = self.proc, None
        if proc is not None:
            # SIGINT is PostgreSQL's "fast shutdown": clients cut, clean exit; the
            # server stops its own processes
            stop_process(proc, sig=signal.SIGINT, timeout_s=15, whole_group=False)

    def remove(self) -> None:
        """Stop the server and remove every folder it made. Safe to call twice."""
        try:
            self.stop()
        finally:  # a second Ctrl-C during the shutdown still removes the folders
            for folder in reversed(self._made):
                shutil.rmtree(folder, ignore_errors=True)
            _live.discard(self)


__all__ = ["SUPERUSER", "Postmaster", "ram_folder"]
