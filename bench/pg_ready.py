"""PostgreSQL ready: cold, warm, pgserver's own, a container; and how the cache copies.

"Ready" is what a run waits for before its first scenario: a server that
accepts connections, with the ``chat`` database and the schema loaded. Cold
samples each get an empty cache folder; pgserver's ``get_server`` (initdb and
start, nothing else) is the floor a cold start must not exceed; restarting
PostgreSQL on a data folder that is already there is the floor of a warm
start (what no copy can beat). Samples are interleaved so each pair sees the
same machine noise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from bench.measure import ROOT, Context, Row, environ

SCHEMA = ROOT / "fixtures" / "schema.sql"
FIG = "pg"


def _embedded(schema: Path = SCHEMA) -> tuple[float, str]:
    """Seconds to a ready ``provision('embedded')`` with the schema applied, and its cache state."""
    from harness.db import provision

    began = time.perf_counter()
    db = provision("embedded", schema=schema)
    try:
        db.apply_schema(schema)
        took = time.perf_counter() - began
        return took, str(getattr(db, "cache", "?"))
    finally:
        db.close()


def _pgserver_cold(tmp: Path) -> float:
    """pgserver's own ``get_server`` on a fresh folder: initdb + start (its floor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
        import pgserver

        folder = Path(tempfile.mkdtemp(prefix="pgserver-", dir=tmp))
        began = time.perf_counter()
        server = pgserver.get_server(folder, cleanup_mode="delete")
        took = time.perf_counter() - began
        server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)
    return took


def _restart(entry: Path) -> float:
    """Start PostgreSQL on a data folder that is already there (unpacked beforehand)."""
    from harness.db import embedded, pgcache
    from harness.db.postmaster import Postmaster

    server = Postmaster(embedded.bin_dir(), embedded._run_as())
    try:
        pgcache.unpack(entry, server.home)
        began = time.perf_counter()
        server.launch()
        server.wait_ready(embedded.DB_NAME, 60).close()
        return time.perf_counter() - began
    finally:
        server.remove()


def _container() -> float:
    from harness.db import provision

    began = time.perf_counter()
    db = provision("container")
    try:
        db.apply_schema(SCHEMA)
        return time.perf_counter() - began
    finally:
        db.close()


def measure_ready(ctx: Context) -> tuple[list[Row], list[str]]:
    from harness.db import pgcache
    from harness.db.container import docker_available

    n_cold, n_warm = ctx.reps(5, 1), ctx.reps(15, 3)
    pgserver_cold = Row(FIG, "pgserver get_server, cold (initdb + start)", [])
    cold = Row(FIG, "embedded, cold: empty cache (initdb, schema, publish, start)", [],
               floor=pgserver_cold.name, target="≤ 1.0× (pgserver's own)", limit=1.0,
               on_ratio=True)
    nocache = Row(FIG, "embedded, cache off (initdb every run)", [], floor=pgserver_cold.name)
    restart = Row(FIG, "restart on an initialised data folder (warm floor)", [])
    warm = Row(FIG, "embedded, warm cache (unpack + start)", [], floor=restart.name,
               target="≤ 0.3 s", limit=0.3)
    tmp = ctx.workdir / "pg"
    tmp.mkdir(exist_ok=True)
    for i in range(n_cold):
        pgserver_cold.samples.append(_pgserver_cold(tmp))
        with environ(CHAT_HARNESS_CACHE=str(tmp / f"cold-{i}"), CHAT_HARNESS_NO_CACHE=None):
            took, state = _embedded()
        assert state == "built", state
        cold.samples.append(took)
        with environ(CHAT_HARNESS_CACHE="off"):
            nocache.samples.append(_embedded()[0])
    warm_cache = tmp / "warm"
    with environ(CHAT_HARNESS_CACHE=str(warm_cache), CHAT_HARNESS_NO_CACHE=None):
        _embedded()  # builds the entry
        entry = next(warm_cache.glob("*.tar"))
        for _ in range(n_warm):
            took, state = _embedded()
            assert state == "hit", state
            warm.samples.append(took)
            restart.samples.append(_restart(entry))
    rows = [pgserver_cold, cold, nocache, restart, warm]
    notes = [f"data folders on {'tmpfs (/dev/shm)' if _tmpfs() else 'TMPDIR'}; "
             f"cache entry {entry.stat().st_size / 2**20:.0f} MB "
             f"(PostgreSQL {pgcache.pg_version(_bin())})"]
    if docker_available():
        container = Row(FIG, "container (testcontainers, local image)", [],
                        floor=pgserver_cold.name)
        from harness.db.image import DEFAULT_TAG, ensure_image

        ensure_image(DEFAULT_TAG)  # a first build is not a start
        for _ in range(ctx.reps(3, 1)):
            container.samples.append(_container())
        rows.append(container)
    else:
        notes.append("container: no Docker engine answers here, not measured")
    return rows, notes


def _bin() -> Path:
    from harness.db.embedded import bin_dir

    return bin_dir()


def _tmpfs() -> bool:
    from harness.db.postmaster import ram_folder

    return ram_folder() is not None


# -- how a cache entry is copied -------------------------------------------------------


def _fresh(base: Path, tag: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"chat-harness-bench-{tag}-", dir=base))


def measure_restore(ctx: Context) -> tuple[list[Row], list[str]]:
    """Copying a data folder out of the cache, and writing one in, by each method.

    Restoring: ``tar -x`` of the entry vs ``cp -a`` / ``shutil.copytree`` of
    the same folder kept as a tree, to tmpfs and to TMPDIR. Publishing: one
    tar file vs a tree, into the cache's folder (a disk).
    """
    from harness.db import pgcache

    fig, n = "restore", ctx.reps(7, 2)
    cache = ctx.workdir / "restore-cache"
    with environ(CHAT_HARNESS_CACHE=str(cache), CHAT_HARNESS_NO_CACHE=None):
        _embedded()
    entry = next(cache.glob("*.tar"))
    tree_parent = _fresh(cache, "tree")
    pgcache.unpack(entry, tree_parent)
    tree = tree_parent / "data"
    targets = {"tmpfs": Path("/dev/shm")} if Path("/dev/shm").is_dir() else {}
    targets["TMPDIR"] = Path(tempfile.gettempdir())
    rows: list[Row] = []
    floor = None
    for where, base in targets.items():
        methods = {
            f"tar -x of the entry → {where}": lambda d: pgcache.unpack(entry, d),
            f"cp -a of a tree → {where}": lambda d: subprocess.run(
                ["cp", "-a", str(tree), str(d / "data")], check=True),
            f"shutil.copytree (+chown) of a tree → {where}": lambda d: _copytree(tree, d),
        }
        for name, method in methods.items():
            row = Row(fig, name, [], floor=floor)
            for _ in range(n):
                dest = _fresh(base, "restore")
                try:
                    began = time.perf_counter()
                    method(dest)
                    row.samples.append(time.perf_counter() - began)
                finally:
                    shutil.rmtree(dest, ignore_errors=True)
            floor = floor or row.name
            rows.append(row)
    tar_row = Row(fig, "publish: tar -c into the cache folder", [])
    tree_row = Row(fig, "publish: cp -a of the tree into the cache folder", [],
                   floor=tar_row.name)
    for _ in range(n):
        out = cache / f"bench-{os.getpid()}.tar"
        began = time.perf_counter()
        pgcache.pack(tree, out)
        tar_row.samples.append(time.perf_counter() - began)
        out.unlink()
        dest = _fresh(cache, "publish")
        began = time.perf_counter()
        subprocess.run(["cp", "-a", str(tree), str(dest / "data")], check=True)
        tree_row.samples.append(time.perf_counter() - began)
        shutil.rmtree(dest, ignore_errors=True)
    rows += [tar_row, tree_row]
    files = sum(1 for _ in tree.rglob("*"))
    shutil.rmtree(tree_parent, ignore_errors=True)
    return rows, [f"a data folder: {files} files and folders; the pick: one tar file per "
                  "entry, unpacked to tmpfs where there is one (harness/db/pgcache.py)"]


def _copytree(tree: Path, dest: Path) -> None:
    shutil.copytree(tree, dest / "data", symlinks=True)
    st = tree.stat()
    if os.geteuid() == 0 and st.st_uid != 0:
        for dirpath, _, files in os.walk(dest / "data"):
            os.chown(dirpath, st.st_uid, st.st_gid)
            for name in files:
                with contextlib.suppress(OSError):
                    os.chown(os.path.join(dirpath, name), st.st_uid, st.st_gid)


__all__ = ["measure_ready", "measure_restore"]
