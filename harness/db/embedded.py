"""Embedded PostgreSQL from the ``pgserver`` wheel, run by the harness itself.

We use pgserver for what it is best at, shipping PostgreSQL binaries in a
wheel, and start the server ourselves: pgserver's own ``get_server`` listens
on a Unix socket only (black-box backends need TCP with a password), polls
with one-second sleeps, and keeps a process-wide handle list. Here the server
is one child process in its own process group, listening on a socket folder
and on a free loopback port, stopped (and its folder removed) by ``close``.

As root, PostgreSQL refuses to run; like pgserver we run it as the system user
``pgserver`` (created on first use).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from harness.db._base import Database, wait_until_accepting
from harness.errors import DatabaseError

SYSTEM_USER = "pgserver"
DB_NAME = "chat"
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


def bin_dir() -> Path:
    """Where the pgserver wheel keeps ``initdb`` and ``postgres``."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "the embedded database needs the 'pgserver' package",
            hint="pip install pgserver, or use --db container / --db-url URL",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise DatabaseError(f"pgserver is installed but has no binaries at {path}")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def _prepare_root_access(root: Path, binaries: Path) -> None:
    """As root: make sure the system user exists and can reach what it needs."""
    import pwd

    try:
        pw = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(SYSTEM_USER)
    # Every folder above the binaries and the data must be traversable.
    for path in (binaries, root):
        for parent in [path, *path.parents]:
            mode = parent.stat().st_mode
            if mode & 0o011 != 0o011:
                parent.chmod(mode | 0o055)
    for sub in (binaries.parent / "lib", binaries.parent / "share"):
        if sub.exists():
            for dirpath, dirnames, filenames in os.walk(sub):
                for name in dirnames + filenames:
                    p = Path(dirpath) / name
                    p.chmod(p.stat().st_mode | 0o055)
    os.chown(root, pw.pw_uid, pw.pw_gid)


def start(*, startup_deadline_s: float = 60.0) -> Database:
    """initdb a fresh data folder, start PostgreSQL, create the ``chat`` database."""
    binaries = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="chat-harness-pg-"))
    data, sock = root / "data", root / "s"
    password = secrets.token_hex(12)
    user = _run_as()
    proc: subprocess.Popen[bytes] | None = None

    def stop() -> None:
        if proc is not None and proc.poll() is None:
            # SIGINT is PostgreSQL's "fast shutdown": clients cut, clean exit.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        shutil.rmtree(root, ignore_errors=True)

    try:
        if user:
            _prepare_root_access(root, binaries)
        pwfile = root / "pw"
        pwfile.write_text(password)
        sock.mkdir()
        if user:
            import pwd

            pw = pwd.getpwnam(user)
            for p in (pwfile, sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        init = subprocess.run(
            [
                str(binaries / "initdb"),
                "-D", str(data),
                "-U", SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user=user,
            capture_output=True,
            text=True,
        )
        if init.returncode != 0:
            raise DatabaseError(f"initdb failed:\n{init.stderr.strip() or init.stdout.strip()}")
        port = _free_port()
        args = [str(binaries / "postgres"), "-D", str(data), "-k", str(sock),
                "-h", "127.0.0.1", "-p", str(port)]
        for setting in _FAST:
            args += ["-c", setting]
        log = open(root / "postgres.log", "wb")  # noqa: SIM115 - the child keeps it
        with log:
            proc = subprocess.Popen(
                args, user=user, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, not it
            )
        socket_url = f"postgresql://{SUPERUSER}@/postgres?host={sock}&port={port}"
        started = proc
        try:
            wait_until_accepting(
                socket_url, deadline_s=startup_deadline_s,
                alive=lambda: started.poll() is None, what="embedded PostgreSQL",
            )
        except DatabaseError as exc:
            tail = (root / "postgres.log").read_text(errors="replace")[-2000:]
            raise DatabaseError(f"{exc.message}\n--- postgres.log ---\n{tail}") from None
        import psycopg

        with psycopg.connect(socket_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}".encode())
    except BaseException:
        stop()
        raise
    return Database(
        kind="embedded",
        url=f"postgresql://{SUPERUSER}@/{DB_NAME}?host={sock}&port={port}",
        tcp_url=f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{DB_NAME}",
        description=f"pgserver binaries, data in {root}",
        _stop=stop,
    )
