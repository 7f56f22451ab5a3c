"""Embedded PostgreSQL from the ``pgserver`` wheel, run by the harness itself.

We use pgserver for what it is best at, shipping PostgreSQL binaries in a
wheel, and start the server ourselves: pgserver's own ``get_server`` listens
on a Unix socket only (black-box backends need TCP with a password), polls
with one-second sleeps, and keeps a process-wide handle list. Here the server
is one child process in its own process group, listening on a socket folder
and on a free loopback port, stopped (and its folder removed) by ``close``.

The data folder comes from the warm cache (:mod:`harness.db.pgcache`) when it
can: a copy of an initialised folder, with the schema the session named
already loaded, starts in a fraction of what ``initdb`` takes. On a miss the
run builds the entry itself (initdb, schema, clean stop), publishes it, and
starts on the folder it built. The server process itself (initdb, start,
readiness, stop, and where its files live) is :mod:`harness.db.postmaster`.

As root, PostgreSQL refuses to run; like pgserver we run it as the system user
``pgserver`` (created on first use).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.db import pgcache
from harness.db._base import Database
from harness.db.postmaster import SUPERUSER, Postmaster
from harness.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

SYSTEM_USER = "pgserver"
DB_NAME = "chat"


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
    # ~750 files: walked once per installation (the stamp goes with a reinstall)
    stamp = binaries.parent / ".chat-harness-readable"
    if not stamp.exists():
        for sub in (binaries.parent / "lib", binaries.parent / "share"):
            if sub.exists():
                for dirpath, dirnames, filenames in os.walk(sub):
                    for name in dirnames + filenames:
                        p = Path(dirpath) / name
                        mode = p.stat().st_mode
                        if mode & 0o055 != 0o055:
                            p.chmod(mode | 0o055)
        with contextlib.suppress(OSError):
            stamp.touch()
    os.chown(root, pw.pw_uid, pw.pw_gid)



@dataclass
class EmbeddedDatabase(Database):
    """A :class:`Database` that knows which schema its data folder came with.

    ``cache`` says where the folder came from: ``hit`` (a copy of a cache
    entry), ``built`` (this run built the entry) or ``off`` (initdb, no cache);
    ``phases`` how long each part of the start took, in seconds (for the bench).
    """

    preloaded_schema: str | None = None  # sha256 of the schema file already applied
    cache: str = "off"
    cache_key: str | None = None
    data_dir: Path | None = None  # this run's own data folder (gone after close)
    phases: dict[str, float] = field(default_factory=dict)

    def apply_schema(self, schema: Path) -> None:
        """A no-op for the very schema the cached folder holds; applied otherwise."""
        if self.preloaded_schema is not None:
            try:
                same = pgcache.schema_digest(schema) == self.preloaded_schema
            except OSError:
                same = False  # let the base class report the unreadable file
            if same:
                return
        super().apply_schema(schema)


def _load_schema(conn: psycopg.Connection[Any], schema: Path) -> None:
    import psycopg

    try:
        conn.execute(schema.read_bytes())
    except OSError as exc:
        raise DatabaseError(f"cannot read the schema {schema}: {exc}") from exc
    except psycopg.Error as exc:
        raise DatabaseError(f"applying {schema} failed: {exc}",
                            hint="the schema must be valid PostgreSQL and idempotent") from exc


def _build(server: Postmaster, password_file: Path, schema: Path | None, deadline_s: float
           ) -> None:
    """initdb, the ``chat`` database and the schema, then a clean stop: a cache entry."""
    server.initdb(password_file)
    server.launch()
    with server.wait_ready("postgres", deadline_s) as conn:
        # FILE_COPY: the new database is not written to the WAL, so the entry stays small
        conn.execute(f"CREATE DATABASE {DB_NAME} STRATEGY FILE_COPY".encode())
    if schema is not None:
        with server.wait_ready(DB_NAME, deadline_s) as conn:
            _load_schema(conn, schema)
    server.stop()


def _from_cache(cache: pgcache.Cache, key: str, server: Postmaster, password_file: Path,
                schema: Path | None, deadline_s: float, phases: dict[str, float]
                ) -> tuple[str, psycopg.Connection[Any] | None]:
    """Give ``server`` a data folder from the cache, building the entry on a miss.

    Returns ``hit`` or ``built``, and the connection to the running server
    (``None``: the server still has to be started on the folder). An entry
    that does not unpack or start (a damaged one) is evicted and rebuilt once.
    """
    began = time.perf_counter()
    damaged = False
    with cache.lock(key, shared=True):
        entry = cache.lookup(key)
        if entry is not None:
            try:
                pgcache.unpack(entry, server.home)
            except pgcache.DamagedEntry:
                damaged = True
    if entry is not None and not damaged:
        phases["copy"] = time.perf_counter() - began
        try:
            launched = time.perf_counter()
            server.launch()
            conn = server.wait_ready(DB_NAME, deadline_s)
            phases["start"] = time.perf_counter() - launched
            return "hit", conn
        except DatabaseError:
            damaged = True
            server.stop()
    if damaged:
        shutil.rmtree(server.data, ignore_errors=True)
        with open(server.log, "ab") as log:
            log.write(b"chat-harness: the cached data folder did not start; rebuilding\n")
    began = time.perf_counter()
    with cache.lock(key):
        if damaged:
            cache.evict(key)  # make way for a new one
        else:
            entry = cache.lookup(key)  # another run built it while we waited
            if entry is not None:
                with contextlib.suppress(pgcache.DamagedEntry):
                    pgcache.unpack(entry, server.home)
                    phases["copy"] = time.perf_counter() - began
                    return "hit", None
                shutil.rmtree(server.data, ignore_errors=True)
                cache.evict(key)
        _build(server, password_file, schema, deadline_s)
        phases["build"] = time.perf_counter() - began
        began = time.perf_counter()
        cache.publish(key, server.data)
        phases["publish"] = time.perf_counter() - began
    return "built", None


def start(schema: Path | None = None, *, cache: bool = True,
          startup_deadline_s: float = 60.0) -> EmbeddedDatabase:
    """Start PostgreSQL on a data folder of its own, with the ``chat`` database.

    ``schema``: the schema the session will apply; with the cache on, the
    folder comes with it loaded (and :meth:`EmbeddedDatabase.apply_schema`
    of the same file is then a no-op). ``cache=False`` (or the environment,
    see :func:`harness.db.pgcache.cache_dir`) runs initdb every time.
    """
    began = time.perf_counter()
    binaries = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="chat-harness-pg-"))
    user = _run_as()
    try:
        server = Postmaster(binaries, root, user)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    password = secrets.token_hex(12)
    phases: dict[str, float] = {}

    def stop() -> None:
        try:
            server.stop()
        finally:  # a second Ctrl-C during the shutdown still removes the folders
            for extra in (server.home, server.sock.parent):
                if extra != root:
                    shutil.rmtree(extra, ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)

    try:
        if user:
            _prepare_root_access(root, binaries)
        pwfile = root / "pw"
        pwfile.write_text(password)
        server.sock.mkdir()
        if user:
            import pwd

            pw = pwd.getpwnam(user)
            for p in (pwfile, server.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        folder = pgcache.cache_dir() if cache else None
        key, state, digest, conn = None, "off", None, None
        if folder is not None:
            try:
                digest = pgcache.schema_digest(schema) if schema is not None else None
            except OSError:  # unreadable: apply_schema will say so; cache without it
                schema = None
            key = pgcache.cache_key(binaries, digest)
            try:
                state, conn = _from_cache(pgcache.Cache(folder), key, server, pwfile, schema,
                                          startup_deadline_s, phases)
            except OSError as exc:  # an unwritable or full cache folder: do without
                server.stop()
                shutil.rmtree(server.data, ignore_errors=True)
                with open(server.log, "ab") as log:
                    log.write(f"chat-harness: warm cache {folder} unusable: {exc}\n".encode())
                key, digest = None, None
        if state == "off":
            server.initdb(pwfile)
            phases["initdb"] = time.perf_counter() - began
        if conn is None:  # built (and stopped), copied under the build lock, or initdb'ed
            launched = time.perf_counter()
            server.launch()
            conn = server.wait_ready("postgres" if state == "off" else DB_NAME,
                                     startup_deadline_s)
            phases["start"] = time.perf_counter() - launched
        try:
            if state == "off":
                conn.execute(f"CREATE DATABASE {DB_NAME}".encode())
            # each run its own password, whatever the cached folder was made with
            conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'".encode())
        except BaseException:
            conn.close()
            raise
        if state == "off":
            conn.close()
            conn = None
        pwfile.unlink()
    except BaseException:
        stop()
        raise
    phases["total"] = time.perf_counter() - began
    return EmbeddedDatabase(
        kind="embedded",
        url=server.socket_url(DB_NAME),
        tcp_url=f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{server.port}/{DB_NAME}",
        description=f"pgserver binaries, data in {server.data}"
        + (f" (warm cache {state}: {key})" if key else ""),
        _stop=stop,
        _conn=conn,  # the readiness connection, already on the chat database
        preloaded_schema=digest if state != "off" else None,
        cache=state,
        cache_key=key,
        data_dir=server.data,
        phases=phases,
    )
