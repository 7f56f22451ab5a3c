"""The warm cache of the embedded PostgreSQL: initialised data folders, ready to unpack.

``initdb`` is most of an embedded cold start (and loading the schema needs a
running server on top). Both results depend only on the PostgreSQL binaries,
on how we run ``initdb`` (our *recipe*) and on the schema file, so we keep one
stopped, schema-loaded data folder per such key in a user cache folder::

    $CHAT_HARNESS_CACHE, else $XDG_CACHE_HOME/chat-harness, else ~/.cache/chat-harness
        pg16.2-r1-<hash>.tar    the data folder, cleanly shut down, as one tar file
        pg16.2-r1-<hash>.lock   flock'ed: shared while unpacking, alone to build or evict

A run never starts PostgreSQL on a cached folder: it unpacks the entry into
its own temporary folder, so parallel runs and xdist workers never share a
data folder. One tar file rather than a folder tree because the folder has
~1300 small files, and creating files is what a busy ext4 is slow at:
measured here, writing the entry as a tree took ~1 s and as one tar file
~0.1 s; unpacking it (``tar -x``, which keeps the owner a root run needs) is
as fast as ``cp -a`` of a tree. An entry is written under a temporary name and
renamed into place: readers see a whole entry or none; a damaged one fails to
unpack or to start, and the run evicts and rebuilds it.
``CHAT_HARNESS_CACHE=off`` (or ``CHAT_HARNESS_NO_CACHE=1``) switches it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from harness.processes import run_command

# Bump when how an entry is made changes (initdb flags, build steps, layout).
RECIPE = 2
# What initdb gets besides the folder, user and password file; part of the key.
INITDB_ARGS = (
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
    # 1 MB WAL segments: a copy carries ~1 MB of WAL instead of 16+ MB
    "--wal-segsize=1",
)
# initdb's own servers keep their dynamic shared memory in the data folder, not in
# /dev/shm, where a killed one (an interrupted initdb) would leave it (PostgreSQL 16+)
_DSM_IN_DATA = ("-c", "dynamic_shared_memory_type=mmap")
KEEP_ENTRIES = 6  # older entries (other schemas, other versions) are pruned
_OFF = ("off", "0", "no", "false", "none")
_ENTRY_RE = re.compile(r"^pg[\w.]+-r\d+-[0-9a-f]{16}$")


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when the cache is switched off."""
    if os.environ.get("CHAT_HARNESS_NO_CACHE", "").lower() not in ("", *_OFF):
        return None
    explicit = os.environ.get("CHAT_HARNESS_CACHE")
    if explicit is not None:
        if explicit.strip().lower() in ("", *_OFF):
            return None
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chat-harness"


def pg_version(binaries: Path) -> str:
    """The PostgreSQL version of ``binaries`` (from pg_config.h: no process to start)."""
    header = binaries.parent / "include" / "pg_config.h"
    with contextlib.suppress(OSError):
        found = re.search(r'#define PG_VERSION "([^"]+)"', header.read_text(errors="replace"))
        if found:
            return found.group(1)
    out = subprocess.run([str(binaries / "postgres"), "--version"], capture_output=True,
                         text=True, check=False).stdout
    found = re.search(r"(\d+(?:\.\d+)+)", out)
    return found.group(1) if found else "unknown"


def initdb_args(binaries: Path) -> tuple[str, ...]:
    """What initdb gets besides the folder, user and password file."""
    major = pg_version(binaries).split(".")[0]
    return INITDB_ARGS + (_DSM_IN_DATA if major.isdigit() and int(major) >= 16 else ())


def schema_digest(schema: Path | None) -> str | None:
    """sha256 of the schema file's bytes (``None``: no schema)."""
    return None if schema is None else hashlib.sha256(schema.read_bytes()).hexdigest()


def cache_key(binaries: Path, schema_sha: str | None) -> str:
    """``pg<version>-r<recipe>-<hash>``: the hash covers the binaries, the recipe, the schema.

    The ``postgres`` binary's size and mtime stand for "the same build": a
    reinstalled wheel of the same version gets a new entry, which is cheap.
    """
    version = pg_version(binaries)
    st = (binaries / "postgres").stat()
    material = json.dumps([version, RECIPE, initdb_args(binaries), st.st_size, st.st_mtime_ns,
                           str(binaries), schema_sha])
    return f"pg{version}-r{RECIPE}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def pack(folder: Path, archive: Path) -> None:
    """Write ``folder`` (with owners, modes, times) as the tar file ``archive``."""
    tar = shutil.which("tar")
    if tar is not None:
        done = run_command([tar, "-C", str(folder.parent), "-cf", str(archive), folder.name])
        if done.returncode == 0:
            return
        raise OSError(f"tar -c failed: {done.stderr.strip()}")
    import tarfile

    with tarfile.open(archive, "w") as out:
        out.add(folder, arcname=folder.name)


def unpack(archive: Path, into: Path) -> None:
    """Unpack ``archive`` into the folder ``into`` (its top folder lands inside)."""
    tar = shutil.which("tar")
    if tar is not None:
        done = run_command([tar, "-C", str(into), "-xpf", str(archive)])
        if done.returncode == 0:
            return
        raise DamagedEntry(f"tar -x of {archive} failed: {done.stderr.strip()}")
    import tarfile

    try:
        with tarfile.open(archive) as src:
            try:
                src.extractall(into, filter="fully_trusted")  # our own archive
            except TypeError:  # Python without extraction filters
                src.extractall(into)
    except (tarfile.TarError, EOFError) as exc:
        raise DamagedEntry(f"{archive} cannot be unpacked: {exc}") from exc


class DamagedEntry(Exception):
    """A cache entry that does not unpack: evict it and build it again."""


class Cache:
    """One cache folder: look up, lock, publish, evict and prune entries."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, key: str) -> Path:
        return self.root / f"{key}.tar"

    def lookup(self, key: str) -> Path | None:
        """The entry's tar file if there is one (complete, since it was renamed in)."""
        entry = self.entry(key)
        try:
            if entry.stat().st_size == 0:
                return None
            os.utime(entry)  # last use, for pruning
        except OSError:
            return None
        return entry

    @contextlib.contextmanager
    def lock(self, key: str, *, shared: bool = False, deadline_s: float = 300.0
             ) -> Iterator[None]:
        """Hold the key's lock (an flock, released by the kernel if we die).

        Readers unpacking an entry share it; building, publishing and evicting
        take it alone, so nobody unpacks an entry that is being replaced.
        """
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            end = time.monotonic() + deadline_s
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > end:
                        raise TimeoutError(f"{self.root / key}.lock held for {deadline_s:.0f} s"
                                           ) from None
                    time.sleep(0.02)  # poll interval while another run builds the entry
            yield
        finally:
            os.close(fd)  # releases the flock

    def publish(self, key: str, data: Path) -> Path:
        """Pack the stopped data folder ``data`` in as ``key`` (caller holds the lock)."""
        for stale in self.root.glob(f"{key}.tar.tmp-*"):  # builds killed mid-write
            with contextlib.suppress(OSError):
                stale.unlink()
        staging = self.root / f"{key}.tar.tmp-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            pack(data, staging)
            os.replace(staging, self.entry(key))
        finally:
            with contextlib.suppress(OSError):
                staging.unlink()
        self.prune(keep=key)
        return self.entry(key)

    def evict(self, key: str) -> None:
        """Remove the entry (caller holds the lock)."""
        with contextlib.suppress(FileNotFoundError):
            self.entry(key).unlink()

    def prune(self, *, keep: str) -> None:
        """Drop all but the ``KEEP_ENTRIES`` most recently used entries (unlocked ones)."""
        import fcntl

        entries = []
        for path in self.root.glob("*.tar"):
            key = path.name[:-4]
            if key != keep and _ENTRY_RE.match(key):
                with contextlib.suppress(OSError):
                    entries.append((path.stat().st_mtime, key))
        entries.sort(reverse=True)
        for _, key in entries[KEEP_ENTRIES - 1:]:
            fd = os.open(self.root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # someone unpacks or builds it right now
            else:
                self.evict(key)  # its .lock stays: unlinking one races with openers
            finally:
                os.close(fd)


__all__ = [
    "INITDB_ARGS",
    "RECIPE",
    "Cache",
    "DamagedEntry",
    "cache_dir",
    "cache_key",
    "initdb_args",
    "pack",
    "pg_version",
    "schema_digest",
    "unpack",
]
