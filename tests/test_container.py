"""``--db container`` for real: the image built here without a registry, the
container provisioned, used, and removed on every way out.

Tests that need a Docker engine skip themselves when none answers
(``.ci/docker-up`` starts one on Debian). Times are printed (run with ``-s``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs import poll_until, unavailable

from harness.db import container as container_db
from harness.db import image as image_db
from harness.db import provision, resolve_kind
from harness.errors import DatabaseError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "fixtures" / "schema.sql"



@pytest.fixture(scope="module")
def docker_engine() -> None:
    if not container_db.docker_available():
        unavailable("docker", "no Docker engine answers (run .ci/docker-up to start one)")


needs_docker = pytest.mark.usefixtures("docker_engine")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    import docker

    c = docker.from_env()
    yield c
    c.close()


def _left(client: Any, **labels: str) -> list[str]:
    return [c.short_id for c in container_db.our_containers(client, **labels)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CHAT_HARNESS_DATABASE_URL", None)
    env.pop("CHAT_HARNESS_DB", None)
    return env


# -- without Docker -----------------------------------------------------------------


def test_without_docker_container_mode_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(container_db, "docker_available", lambda timeout_s=2.0: False)
    with pytest.raises(DatabaseError) as err:
        provision("container")
    assert "Docker engine" in err.value.message
    assert ".ci/docker-up" in (err.value.hint or "")
    assert "--db embedded" in (err.value.hint or "")


def test_without_docker_auto_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container_db, "docker_available", lambda timeout_s=2.0: False)
    assert resolve_kind("auto", None) == "embedded"


def test_docker_available_never_raises_on_a_dead_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    assert container_db.docker_available(timeout_s=0.5) is False


# -- the image --------------------------------------------------------------------


@needs_docker
def test_the_image_builds_and_a_second_build_is_a_no_op(client: Any) -> None:
    tag = f"chat-harness/postgres:test-{os.getpid()}"
    try:
        assert image_db.ensure_image(tag, force=True) is True
        first = client.images.get(tag)
        assert image_db.ensure_image(tag) is False
        assert client.images.get(tag).id == first.id
        assert first.labels[image_db.RECIPE_LABEL] == image_db.recipe_hash()
        assert first.labels["chat-harness.postgres-version"].startswith("16.")
        assert first.attrs["Config"]["User"].split(":")[0] != "0"
    finally:
        import docker.errors

        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag)


def test_the_default_image_is_the_local_one() -> None:
    assert container_db.DEFAULT_IMAGE == image_db.DEFAULT_TAG == "chat-harness/postgres:16-local"


# -- the container ----------------------------------------------------------------


@needs_docker
def test_a_container_database_provisions_and_is_removed_on_close(client: Any) -> None:
    db = provision("container")  # its time to ready: chat-harness bench --only pg
    try:
        assert db.kind == "container"
        assert db.tcp_url == db.url
        assert db.url.startswith("postgresql://postgres:")
        assert "@127.0.0.1:" in db.url
        assert len(_left(client, pid=str(os.getpid()))) == 1
        db.apply_schema(SCHEMA)
        db.apply_schema(SCHEMA)  # idempotent
        db.query(
            "INSERT INTO chat_sessions (id, user_id, title) VALUES (%s, %s, %s)",
            ("s1", "00000000-0000-0000-0000-000000000001", "héllo ✓"),
        )
        rows = db.query("SELECT id, title, message_count FROM chat_sessions")
        assert rows == [{"id": "s1", "title": "héllo ✓", "message_count": 0}]
        db.reset()
        assert db.query("SELECT count(*) AS n FROM chat_sessions") == [{"n": 0}]
        version = db.query("SHOW server_version")[0]["server_version"]
        assert version.startswith("16.")
    finally:
        db.close()
    assert _left(client, pid=str(os.getpid())) == []


@needs_docker
def test_an_exception_inside_the_block_still_removes_the_container(client: Any) -> None:
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), provision("container") as db:
        seen = _left(client, pid=str(os.getpid()))
        db.query("SELECT 1")
        raise RuntimeError("boom")
    assert len(seen) == 1
    assert _left(client, pid=str(os.getpid())) == []


@needs_docker
def test_ctrl_c_while_starting_removes_the_container(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def interrupted(*args: Any, **kwargs: Any) -> None:
        seen.extend(_left(client, pid=str(os.getpid())))
        raise KeyboardInterrupt

    monkeypatch.setattr(container_db, "wait_until_accepting", interrupted)
    with pytest.raises(KeyboardInterrupt):
        provision("container")
    assert len(seen) == 1
    assert _left(client, pid=str(os.getpid())) == []


@needs_docker
def test_a_container_that_dies_while_starting_fails_fast_with_its_log(client: Any) -> None:
    # the image's entrypoint refuses to start without a password
    def no_password(image: str, password: str, run: str) -> Any:
        c = original(image, password, run)
        c.password = ""
        return c

    original = container_db._postgres_container
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(container_db, "_postgres_container", no_password)
        with pytest.raises(DatabaseError) as err:
            provision("container")
    # seen dead (exited, or gone before its port was mapped), not waited for until
    # the readiness deadline; with its complaint
    assert "did not accept connections within" not in err.value.message
    assert "POSTGRES_PASSWORD" in err.value.message
    assert _left(client, pid=str(os.getpid())) == []


_KEEP = """
import sys
from harness.db import provision
db = provision("container")
print("ready", flush=True)
if sys.argv[1] == "wait":
    sys.stdin.read()
"""


@needs_docker
def test_an_unclosed_database_is_removed_at_exit(client: Any) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KEEP, "exit"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "ready" in out
    assert _left(client, pid=str(proc.pid)) == []


@needs_docker
def test_a_killed_run_leaves_a_container_the_next_start_reaps(client: Any) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KEEP, "wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        assert len(_left(client, pid=str(proc.pid))) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(_left(client, pid=str(proc.pid))) == 1  # SIGKILL: nobody cleaned up
    assert container_db.reap_orphans(client) >= 1
    assert _left(client, pid=str(proc.pid)) == []


@needs_docker
def test_the_seed_scenarios_pass_with_db_container(client: Any, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "chat-harness"), "run", "scenarios/seed",
         "--db", "container", "--reports", str(tmp_path / "reports")],  # not the shared ./reports
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=ROOT,
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "passed" in out
    assert _left(client, pid=str(proc.pid)) == []


@needs_docker
def test_ctrl_c_during_a_run_removes_the_container(client: Any, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "chat-harness"), "run", "scenarios/seed",
         "--db", "container", "--reports", str(tmp_path / "reports")],  # not the shared ./reports
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=ROOT,
    )
    try:
        poll_until(lambda: proc.poll() is not None or _left(client, pid=str(proc.pid)),
                   lambda: "no container showed within 60 s", deadline_s=60)
        assert proc.poll() is None, "the run ended before its container showed"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            container_db.reap_orphans(client)
    assert proc.returncode in (2, 130), out  # pytest's "interrupted", or ours
    assert _left(client, pid=str(proc.pid)) == []
