"""A PostgreSQL Docker image built on this machine, without any image registry.

CI here reaches Debian and PyPI mirrors but no image registry, so ``postgres:16``
cannot be pulled and no base image exists to build ``FROM``. What we do have is
the PostgreSQL the ``pgserver`` wheel ships (already a dependency, same binaries
as ``--db embedded``), so the image is ``FROM scratch`` holding exactly:

- pgserver's ``initdb``, ``postgres``, ``psql`` and ``pg_isready`` with the
  ``lib/postgresql`` modules and ``share`` files, laid out as in site-packages so
  the wheel's ``$ORIGIN``-relative RPATH still finds its bundled ``libpq``;
- every shared library those ELF files need outside the wheel (libc, libz, the
  loader…), found with ``ldd`` and stored at the path ``ldd`` reports;
- the host's ``dash`` as ``/bin/sh`` (no static shell exists to copy) for a
  15-line entrypoint, and ``/etc/passwd`` / ``/etc/group`` with user ``postgres``
  (PostgreSQL refuses to run as root).

The entrypoint mirrors the official image's environment contract
(``POSTGRES_USER`` / ``POSTGRES_PASSWORD`` / ``POSTGRES_DB`` /
``POSTGRES_HOST_AUTH_METHOD``, ``PGDATA``, ``CMD ["postgres"]``, extra ``-c``
arguments), and ``sh`` + ``psql`` exist inside, so testcontainers'
``PostgresContainer`` works with this image unchanged.

The build context is written as a tar stream straight from the source files
(no copied tree on disk), and a build is skipped when an image with the tag
already carries the same recipe hash (the recipe text, the PostgreSQL version,
the machine architecture) in its label.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import platform
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from harness.db.embedded import bin_dir
from harness.errors import DatabaseError

DEFAULT_TAG = "chat-harness/postgres:16-local"
RECIPE_LABEL = "chat-harness.recipe"
# Bump when the code below changes what goes into the image in a way the
# texts hashed in recipe_hash() do not show.
RECIPE_VERSION = "1"

# Where the site-packages folder holding pgserver lands in the image.
PREFIX = "/opt/pg"
PG_UID = 999
PROGRAMS = ("initdb", "postgres", "psql", "pg_isready")

DOCKERFILE = f"""\
FROM scratch
COPY rootfs/ /
COPY --chown={PG_UID}:{PG_UID} owned/ /
ENV PATH={PREFIX}/pgserver/pginstall/bin:/usr/local/bin:/bin \\
    PGDATA=/var/lib/postgresql/data \\
    TZ=UTC
USER {PG_UID}:{PG_UID}
WORKDIR /var/lib/postgresql
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
"""

# dash only: no mkdir, rm or cat exist in the image, so everything here is a
# shell builtin or a PostgreSQL program. The database is created in
# single-user mode, which needs no server start and no client.
ENTRYPOINT = r"""#!/bin/sh
# chat-harness PostgreSQL image: the official image's environment contract.
set -eu
[ $# -gt 0 ] || set -- postgres
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_USER:=postgres}" "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    : "${POSTGRES_DB:=$POSTGRES_USER}" "${POSTGRES_PASSWORD:=}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        echo "error: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    printf '%s\n' "$POSTGRES_PASSWORD" | initdb -D "$PGDATA" -U "$POSTGRES_USER" \
        ${POSTGRES_PASSWORD:+--pwfile=/dev/stdin} --auth-local=trust \
        --auth-host="$POSTGRES_HOST_AUTH_METHOD" --encoding=UTF8 --locale=C \
        --no-sync --no-instructions >/dev/null
    printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        printf 'CREATE DATABASE "%s"\n' "$POSTGRES_DB" |
            postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "chat-harness: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
if [ "$1" = postgres ]; then shift; exec postgres -c listen_addresses='*' "$@"; fi
exec "$@"
"""

PASSWD = (
    "root:x:0:0:root:/:/bin/sh\n"
    f"postgres:x:{PG_UID}:{PG_UID}:PostgreSQL:/var/lib/postgresql:/bin/sh\n"
)
GROUP = f"root:x:0:\npostgres:x:{PG_UID}:\n"


def _site_root() -> Path:
    """The site-packages folder holding ``pgserver`` and ``pgserver.libs``."""
    return bin_dir().parents[2]


def pg_version() -> str:
    """``16.2`` for pgserver's PostgreSQL (asks its ``postgres --version``)."""
    out = subprocess.run(
        [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+(?:\.\d+)*)", out)
    if match is None:  # pragma: no cover - postgres always prints its version
        raise DatabaseError(f"cannot read the PostgreSQL version from {out!r}")
    return match.group(1)


def recipe_hash() -> str:
    """What the image is made of, as a short hash: equal hash, equal image.

    The host libraries copied in are not hashed: whichever version they were,
    the image is self-consistent, and pgserver's binaries target old glibc.
    """
    from importlib.metadata import version

    digest = hashlib.sha256()
    for part in (RECIPE_VERSION, DOCKERFILE, ENTRYPOINT, PASSWD, GROUP, " ".join(PROGRAMS),
                 pg_version(), version("pgserver"), platform.machine()):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


# -- the file system of the image --------------------------------------------------


def _image_path(host_path: Path, site: Path) -> str:
    """Where ``host_path`` goes in the image: the wheel under PREFIX, the rest as is."""
    if host_path.is_relative_to(site):
        return f"{PREFIX}/{host_path.relative_to(site).as_posix()}"
    return host_path.as_posix()


def _shared_libraries(elf: Path) -> set[Path]:
    """The libraries ``elf`` loads (and its loader), as absolute host paths, via ``ldd``."""
    try:
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise DatabaseError(
            "building the PostgreSQL image needs ldd (glibc's, package libc-bin)",
            hint="use --db embedded, or a --db-image that exists locally",
        ) from exc
    if out.returncode != 0:
        # "not a dynamic executable" / "statically linked": nothing to add
        return set()
    libs: set[Path] = set()
    for line in out.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise DatabaseError(f"{elf} needs a library this machine lacks: {line}")
        target = line.split("=>", 1)[1] if "=>" in line else line
        path = target.strip().split(" (", 1)[0].strip()
        if path.startswith("/"):
            libs.add(Path(os.path.normpath(path)))
    return libs


def _files() -> Iterator[tuple[str, Path]]:
    """Every ``(image path, host file)`` the image holds, libraries included."""
    site = _site_root()
    install = bin_dir().parent
    elves = [bin_dir() / name for name in PROGRAMS]
    elves += sorted((install / "lib" / "postgresql").glob("*.so"))
    shell = Path(os.path.realpath("/bin/sh"))
    if shell.name != "dash":
        found = next((p for p in (Path("/usr/bin/dash"), Path("/bin/dash")) if p.exists()), None)
        if found is None:
            raise DatabaseError(
                "building the PostgreSQL image needs dash (/bin/sh on Debian)",
                hint="apt-get install dash, or use --db embedded",
            )
        shell = found
    yield "/bin/sh", shell
    for elf in elves:
        yield _image_path(elf, site), elf
    for lib in sorted({lib for elf in [shell, *elves] for lib in _shared_libraries(elf)}):
        yield _image_path(lib, site), lib
    for path in sorted((install / "share").rglob("*")):
        if path.is_file():
            yield _image_path(path, site), path


def _add_dir(tar: tarfile.TarFile, name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def write_context(out: IO[bytes]) -> int:
    """Write the build context (Dockerfile + ``rootfs/`` + ``owned/``) as a tar to ``out``.

    Returns the number of files from the host. Symbolic links are stored as
    the files they point to (``libz.so.1`` → its real file, under its own name).
    """
    count = 0
    with tarfile.open(fileobj=out, mode="w", dereference=True) as tar:
        _add_text(tar, "Dockerfile", DOCKERFILE)
        _add_text(tar, "rootfs/etc/passwd", PASSWD)
        _add_text(tar, "rootfs/etc/group", GROUP)
        _add_text(tar, "rootfs/usr/local/bin/docker-entrypoint.sh", ENTRYPOINT, 0o755)
        _add_dir(tar, "rootfs/tmp", 0o1777)
        _add_dir(tar, "owned/var/lib/postgresql", 0o700)
        seen: set[str] = set()
        for image_path, host_path in _files():
            if image_path in seen:
                continue
            seen.add(image_path)
            info = tar.gettarinfo(str(host_path), arcname=f"rootfs{image_path}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if info.mode & 0o111 else 0o644
            with host_path.open("rb") as fh:
                tar.addfile(info, fh)
            count += 1
    return count


# -- building -----------------------------------------------------------------------


def _docker_client() -> Any:
    try:
        import docker

        client = docker.from_env(timeout=300)
        client.ping()
        return client
    except Exception as exc:
        raise DatabaseError(
            f"no Docker engine answers ({exc.__class__.__name__}: {exc})",
            hint="start one (.ci/docker-up installs and starts dockerd on Debian), "
            "or use --db embedded",
        ) from exc


def image_is_current(client: Any, tag: str, recipe: str) -> bool:
    """True when ``tag`` exists locally and was built from ``recipe``."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return bool((image.labels or {}).get(RECIPE_LABEL) == recipe)


def _image_id(client: Any, tag: str) -> str | None:
    import docker.errors

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return None


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time on this machine (parallel workers would each build)."""
    path = Path(tempfile.gettempdir()) / "chat-harness-image-build.lock"
    try:
        fh = path.open("a")
    except OSError:  # another user's lock file: building twice is merely slower
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_image(tag: str = DEFAULT_TAG, *, force: bool = False) -> bool:
    """Build ``tag`` unless it is current; True when a build ran."""
    client = _docker_client()
    try:
        recipe = recipe_hash()
        if not force and image_is_current(client, tag, recipe):
            return False
        with _build_lock():
            if not force and image_is_current(client, tag, recipe):
                return False  # another process built it while we waited
            old = _image_id(client, tag)
            _build(client, tag, recipe)
            if old is not None and old != _image_id(client, tag):
                # the stale image is now untagged: drop it (unless a container uses it)
                with contextlib.suppress(Exception):
                    client.images.remove(old)
        return True
    finally:
        client.close()


def build_image(tag: str = DEFAULT_TAG, force: bool = False) -> str:
    """Make sure the local PostgreSQL image ``tag`` exists and is current; return ``tag``."""
    ensure_image(tag, force=force)
    return tag


def _build(client: Any, tag: str, recipe: str) -> None:
    import docker.errors

    labels = {
        RECIPE_LABEL: recipe,
        "chat-harness.postgres-version": pg_version(),
        "org.opencontainers.image.description": "PostgreSQL from the pgserver wheel, "
        "built by chat-harness without a registry",
    }
    with tempfile.TemporaryFile() as context:
        write_context(context)
        context.seek(0)
        try:
            client.images.build(
                fileobj=context, custom_context=True, tag=tag, labels=labels,
                rm=True, forcerm=True, pull=False,
            )
        except docker.errors.BuildError as exc:
            log = "".join(str(entry.get("stream", entry.get("error", "")))
                          for entry in exc.build_log)
            raise DatabaseError(f"building the PostgreSQL image {tag} failed: {exc}\n{log}") \
                from exc
        except docker.errors.APIError as exc:
            raise DatabaseError(f"building the PostgreSQL image {tag} failed: {exc}") from exc


__all__ = ["DEFAULT_TAG", "build_image", "ensure_image", "recipe_hash", "write_context"]
