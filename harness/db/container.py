"""PostgreSQL in a Docker container through testcontainers.

No image registry may be reachable (CI here has none), so the default image is
built on this machine from pgserver's binaries (:mod:`harness.db.image`) on
first use. testcontainers' Ryuk reaper image cannot be pulled either, so Ryuk
is disabled and this module does its job: the container is removed by
``close``, on an exception or Ctrl-C while starting, at interpreter exit if
nobody closed it, and, for a run that was killed outright, by the next start,
which removes labelled containers whose owning process on this host is gone.

Readiness is a real connection from the harness's side of the port mapping,
polled with a deadline: a TCP accept alone proves nothing, because Docker's
port proxy accepts before PostgreSQL listens.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import socket
import time
import uuid
from typing import Any

from harness.db._base import Database, wait_until_accepting
from harness.db.image import DEFAULT_TAG
from harness.errors import DatabaseError
from harness.processes import pid_alive

DEFAULT_IMAGE = DEFAULT_TAG

# Every container we start carries these labels, so tests and the orphan
# reaper can find them (testcontainers adds its own org.testcontainers.* ones).
LABEL = "chat-harness"
LABEL_PID = "chat-harness.pid"
LABEL_HOST = "chat-harness.host"
LABEL_RUN = "chat-harness.run"

DB_NAME = "chat"
SUPERUSER = "postgres"

# A throw-away test server: durability buys nothing (same as --db embedded).
_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)

_NO_DOCKER_HINT = (
    "start a Docker engine (on Debian, .ci/docker-up installs docker.io and starts "
    "dockerd), or use --db embedded"
)


def docker_available(timeout_s: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (quickly; never raises)."""
    try:
        import docker

        client = docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def labels_for(run: str) -> dict[str, str]:
    """The labels of a container started by this process for run ``run``."""
    return {
        LABEL: "1",
        LABEL_PID: str(os.getpid()),
        LABEL_HOST: socket.gethostname(),
        LABEL_RUN: run,
    }


def our_containers(client: Any, **labels: str) -> list[Any]:
    """Containers (running or not) with our label and all of ``labels`` (keys as in labels_for).

    Keyword names use ``_`` for ``.``: ``our_containers(c, pid="123")`` matches
    ``chat-harness.pid=123``.
    """
    wanted = [LABEL] + [f"{LABEL}.{key}={value}" for key, value in labels.items()]
    # ignore_removed: one may go between the listing and its inspection
    return list(client.containers.list(all=True, filters={"label": wanted}, ignore_removed=True))


def reap_orphans(client: Any) -> int:
    """Remove our containers whose process on this host no longer exists.

    Ryuk's job for runs killed with SIGKILL (or a crash) before they could clean
    up. Containers of other hosts sharing the engine are never touched.
    """
    removed = 0
    for container in our_containers(client, host=socket.gethostname()):
        pid = container.labels.get(LABEL_PID, "")
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
                removed += 1
    return removed


def _remove_run(client: Any, run: str) -> None:
    """Remove every container of ``run``, also one created but never handed to us."""
    for container in our_containers(client, run=run):
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)


def _postgres_container(image: str, password: str, run: str) -> Any:
    """A testcontainers PostgresContainer that leaves readiness to us."""
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.config import testcontainers_config

    # Ryuk's image cannot be pulled here; this module removes containers itself.
    testcontainers_config.ryuk_disabled = True

    class _Postgres(PostgresContainer):
        def _connect(self) -> None:
            """No-op: ``start`` polls a real connection from the host instead
            (testcontainers' own check runs psql inside the container)."""

    command = ["postgres"]
    for setting in _SETTINGS:
        command += ["-c", setting]
    return _Postgres(
        image, username=SUPERUSER, password=password, dbname=DB_NAME, driver=None,
        command=command, labels=labels_for(run),
    )


def _host_and_port(container: Any) -> tuple[str, int]:
    client = container.get_docker_client()
    host = client.host()
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return host, int(client.port(container.get_container_id(), 5432))


def _logs(container: Any) -> str:
    with contextlib.suppress(Exception):
        return str(container.get_wrapped_container().logs(tail=40).decode(errors="replace"))
    return ""


def start(image: str = DEFAULT_IMAGE, *, startup_deadline_s: float = 60.0) -> Database:
    """Start PostgreSQL in a container from ``image`` and return its :class:`Database`.

    Images named ``chat-harness/…`` are built here when missing or stale;
    any other image must exist locally or be pullable.
    """
    if not docker_available():
        raise DatabaseError("--db container needs a Docker engine, and none answers",
                            hint=_NO_DOCKER_HINT)
    if image.startswith("chat-harness/"):
        from harness.db.image import ensure_image

        ensure_image(image)
    import docker

    client = docker.from_env(timeout=60)
    reap_orphans(client)
    run = uuid.uuid4().hex
    password = secrets.token_hex(12)
    container: Any = None

    def remove() -> None:
        try:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop(force=True, delete_volume=True)
            _remove_run(client, run)
        finally:
            client.close()  # the client still works after close, should atexit retry
        atexit.unregister(remove)  # only once done: a Ctrl-C in here leaves it registered

    atexit.register(remove)  # nobody closed the Database: still leave nothing behind
    started_at = time.monotonic()
    try:
        container = _postgres_container(image, password, run)
        try:
            container.start()
            host, port = _host_and_port(container)
        except Exception as exc:
            log = _logs(container)
            raise DatabaseError(
                f"could not start a PostgreSQL container from {image!r}: {exc}"
                + (f"\n--- container log ---\n{log}" if log else ""),
                hint="no registry may be reachable: use the local image "
                f"(chat-harness db build-image, the default {DEFAULT_IMAGE}), "
                "or --db embedded",
            ) from exc
        url = f"postgresql://{SUPERUSER}:{password}@{host}:{port}/{DB_NAME}"
        wrapped = container.get_wrapped_container()

        def running() -> bool:
            wrapped.reload()
            return wrapped.status in ("created", "running")

        try:
            wait_until_accepting(url, deadline_s=startup_deadline_s, alive=running,
                                 what=f"container {image} ({wrapped.short_id})")
        except DatabaseError as exc:
            raise DatabaseError(f"{exc.message}\n--- container log ---\n{_logs(container)}") \
                from None
    except BaseException:
        remove()
        raise
    ready_s = time.monotonic() - started_at
    return Database(
        kind="container",
        url=url,
        tcp_url=url,
        description=f"container {wrapped.short_id} from {image}, ready in {ready_s:.1f} s",
        _stop=remove,
    )


__all__ = ["DEFAULT_IMAGE", "docker_available", "our_containers", "reap_orphans", "start"]
