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
from dataclasses import dataclass
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


@dataclass
class EmbeddedDatabase(Database):
    """A :class:`Database` that knows which schema its data folder came with.

    ``cache`` says where the folder came from: ``hit`` (a copy of a cache
    entry), ``built`` (this run built the entry) or ``off`` (initdb, no cache).
    """

    preloaded_schema: str | None = None  # sha256 of the schema file already applied
    cache: str = "off"
    cache_key: str | None = None
    data_dir: Path | None = None  # this run's own data folder (gone after close)

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


def _build(server: Postmaster, password_file: Path, schema: Path | None, deadline_s: float
           ) -> None:
    """initdb, the ``chat`` database and the schema, then a clean stop: a cache entry."""
    server.initdb(password_file)
    server.launch()
    with server.wait_ready("postgres", deadline_s) as conn:
        # FILE_COPY: the new database is not written to the WAL, so the entry stays small
        conn.execute(f"CREATE DATABASE {DB_NAME} STRATEGY FILE_COPY".encode())
    if schema is not None:
        with Database("embedded", server.socket_url(DB_NAME), None,
                      "the warm cache entry being built") as db:
            db.apply_schema(schema)
    server.stop()


def _from_cache(cache: pgcache.Cache, key: str, server: Postmaster, password_file: Path,
                schema: Path | None, deadline_s: float
                ) -> tuple[str, psycopg.Connection[Any] | None]:
    """Give ``server`` a data folder from the cache, building the entry on a miss.

    Returns ``hit`` or ``built``, and the connection to the running server
    (``None``: the server still has to be started on the folder). An entry
    that does not unpack or start (a damaged one) is evicted and rebuilt once.
    """
    damaged = False
    with cache.lock(key, shared=True):
        entry = cache.lookup(key)
        if entry is not None:
            try:
                pgcache.unpack(entry, server.home)
            except pgcache.DamagedEntry:
                damaged = True
    if entry is not None and not damaged:
        try:
            server.launch()
            return "hit", server.wait_ready(DB_NAME, deadline_s)
        except DatabaseError:
            damaged = True
            server.stop()
    if damaged:
        shutil.rmtree(server.data, ignore_errors=True)
        with open(server.log, "ab") as log:
            log.write(b"chat-harness: the cached data folder did not start; rebuilding\n")
    with cache.lock(key):
        if damaged:
            cache.evict(key)  # make way for a new one
        else:
            entry = cache.lookup(key)  # another run built it while we waited
            if entry is not None:
                with contextlib.suppress(pgcache.DamagedEntry):
                    pgcache.unpack(entry, server.home)
                    return "hit", None
                shutil.rmtree(server.data, ignore_errors=True)
                cache.evict(key)
        _build(server, password_file, schema, deadline_s)
        cache.publish(key, server.data)
    return "built", None


def start(schema: Path | None = None, *, cache: bool = True,
          startup_deadline_s: float = 60.0) -> EmbeddedDatabase:
    """Start PostgreSQL on a data folder of its own, with the ``chat`` database.

    ``schema``: the schema the session will apply; with the cache on, the
    folder comes with it loaded (and :meth:`EmbeddedDatabase.apply_schema`
    of the same file is then a no-op). ``cache=False`` (or the environment,
    see :func:`harness.db.pgcache.cache_dir`) runs initdb every time.
    """
    binaries = bin_dir()
    server = Postmaster(binaries, _run_as())
    password = secrets.token_hex(12)
    try:
        pwfile = server.root / "pw"
        pwfile.write_text(password)
        if server.user:
            shutil.chown(pwfile, server.user)
        folder = pgcache.cache_dir() if cache else None
        key, state, digest, conn = None, "off", None, None
        if folder is not None:
            try:
                digest = pgcache.schema_digest(schema)
            except OSError:  # unreadable: apply_schema will say so; cache without it
                schema = None
            key = pgcache.cache_key(binaries, digest)
            try:
                state, conn = _from_cache(pgcache.Cache(folder), key, server, pwfile, schema,
                                          startup_deadline_s)
            except OSError as exc:  # an unwritable or full cache folder: do without
                server.stop()
                shutil.rmtree(server.data, ignore_errors=True)
                with open(server.log, "ab") as log:
                    log.write(f"chat-harness: warm cache {folder} unusable: {exc}\n".encode())
                key = None
        if state == "off":  # a bare initdb: the chat database is made here
            server.initdb(pwfile)
            server.launch()
            with server.wait_ready("postgres", startup_deadline_s) as admin:
                admin.execute(f"CREATE DATABASE {DB_NAME}".encode())
                _set_password(admin, password)
        else:
            if conn is None:  # built (and stopped), or copied under the build lock
                server.launch()
                conn = server.wait_ready(DB_NAME, startup_deadline_s)
            try:
                _set_password(conn, password)
            except BaseException:
                conn.close()
                raise
        pwfile.unlink()
    except BaseException:
        server.remove()
        raise
    return EmbeddedDatabase(
        kind="embedded",
        url=server.socket_url(DB_NAME),
        tcp_url=f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{server.port}/{DB_NAME}",
        description=f"pgserver binaries, data in {server.data}"
        + (f" (warm cache {state}: {key})" if key else ""),
        _stop=server.remove,
        _conn=conn,  # the readiness connection, already on the chat database (None: off)
        preloaded_schema=digest if state != "off" else None,
        cache=state,
        cache_key=key,
        data_dir=server.data,
    )


def _set_password(conn: psycopg.Connection[Any], password: str) -> None:
    """Each run its own password, whatever the cached folder was made with."""
    conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'".encode())
