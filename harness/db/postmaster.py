"""One PostgreSQL server process of the embedded provider, and where its files live.

initdb, start, readiness, stop: the process side of :mod:`harness.db.embedded`
(which decides where the data folder comes from). The data folder goes on
tmpfs where there is a roomy one (``ram_folder``); the socket folder stays in
the run's TMPDIR folder unless that path is too long for a Unix socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.db import pgcache
from harness.errors import DatabaseError
from harness.processes import die_with_parent, pid_alive

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
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _reap_ram_orphans(ram: Path) -> None:
    """Remove data folders of runs killed outright (SIGKILL: no clean-up ran)."""
    for path in ram.glob(f"{_RAM_PREFIX}*"):
        pid = path.name[len(_RAM_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


_RAM_PREFIX = "chat-harness-pg-data-"
_SOCKET_MAX = 107 - len("/.s.PGSQL.65535")  # sun_path holds 108 bytes


def _socket_folder(preferred: Path, home: Path) -> Path:
    """``preferred``, unless a deep TMPDIR makes the socket's path too long for Unix."""
    for candidate in (preferred, home / "s"):
        if len(os.fsencode(candidate)) <= _SOCKET_MAX:
            return candidate
    short = Path(tempfile.mkdtemp(prefix="chpg-", dir="/tmp"))
    short.chmod(0o755)  # the server's user (pgserver, for a root run) must reach into it
    return short / "s"


class Postmaster:
    """One ``postgres`` process on its data folder, in its own process group.

    ``root`` (in TMPDIR) holds the socket folder and the log; the data folder
    is ``root/data``, or a folder of ours on ``/dev/shm`` (see ``ram_folder``).
    """

    def __init__(self, binaries: Path, root: Path, user: str | None) -> None:
        self.binaries, self.root, self.user = binaries, root, user
        self.sock, self.log = root / "s", root / "postgres.log"
        self.data = root / "data"
        ram = ram_folder()
        if ram is not None:
            _reap_ram_orphans(ram)
            home = Path(tempfile.mkdtemp(prefix=f"{_RAM_PREFIX}{os.getpid()}-", dir=ram))
            try:
                if user:
                    import pwd

                    pw = pwd.getpwnam(user)
                    os.chown(home, pw.pw_uid, pw.pw_gid)
            except BaseException:
                shutil.rmtree(home, ignore_errors=True)
                raise
            self.data = home / "data"
        self.home = self.data.parent  # removed with the server (root is removed by start)
        self.sock = _socket_folder(self.sock, self.home)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def socket_url(self, db: str) -> str:
        return f"postgresql://{SUPERUSER}@/{db}?host={self.sock}&port={self.port}"

    def initdb(self, password_file: Path) -> None:
        init = subprocess.run(
            [str(self.binaries / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
             f"--pwfile={password_file}", *pgcache.INITDB_ARGS],
            user=self.user, capture_output=True, text=True, check=False,
        )
        if init.returncode != 0:
            raise DatabaseError(f"initdb failed:\n{init.stderr.strip() or init.stdout.strip()}")

    def launch(self) -> None:
        self.port = _free_port()
        args = [str(self.binaries / "postgres"), "-D", str(self.data), "-k", str(self.sock),
                "-h", "127.0.0.1", "-p", str(self.port)]
        for setting in _FAST:
            args += ["-c", setting]
        with open(self.log, "ab") as log:
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
        if proc is None or proc.poll() is not None:
            return
        # SIGINT is PostgreSQL's "fast shutdown": clients cut, clean exit.
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


__all__ = ["SUPERUSER", "Postmaster", "ram_folder"]
