"""Faults around the backend: its database goes away, its provider drops, it hangs.

What a CI gate must never do in those cases is hang, or fail with a traceback
nobody can read. Each test makes the fault for real (PostgreSQL stopped with
``pg_ctl``, a provider process killed, a backend that never answers) and checks
what the backend answers and what the harness reports.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from runs import REFERENCE, ROOT, poll_until, ports_of, processes_of, run_env

from harness.config import RunConfig
from harness.errors import DatabaseError
from harness.runner.session import Harness
from harness.scenario.load import Scenario, load_file

STATS = ROOT / "scenarios" / "messages" / "session-stats.yaml"
USER = "0d7b6a1e-3f0c-4c9a-9a51-2d6c0f1e7b21"


def _stopped_cleanly(proc: subprocess.Popen[bytes], out: Path, tmp: Path,
                     *phrases: str) -> None:
    """The run stopped with exit code 3 and says why (each of ``phrases``), with no
    traceback, and nothing it started is left: processes or files in its TMPDIR."""
    text = out.read_text()
    assert proc.returncode == 3, text
    for phrase in phrases:
        assert phrase in text, text
    assert "Traceback" not in text
    poll_until(lambda: not processes_of(tmp), lambda: "processes left", deadline_s=30)
    assert list(tmp.iterdir()) == []


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


# -- PostgreSQL, stopped and started under the harness's feet ------------------------


@dataclass
class Postgres:
    """A running embedded server, found by its process; stopped and started with pg_ctl."""

    data: Path
    options: str  # the server's command line after -D DIR (from postmaster.opts)
    pg_ctl: Path
    uid: int

    @classmethod
    def serving(cls, pids: list[int] | None = None, *, port: str | None = None) -> Postgres:
        """The postgres among ``pids`` (or listening on ``port``)."""
        candidates = pids if pids is not None else [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
        for pid in candidates:
            args = _cmdline(pid)
            if not args or not args[0].endswith("/postgres") or "-D" not in args:
                continue
            if port is not None and ("-p" not in args or args[args.index("-p") + 1] != port):
                continue
            data = Path(args[args.index("-D") + 1])
            opts = shlex.split((data / "postmaster.opts").read_text())
            rest = opts[1:]
            at = rest.index("-D")
            del rest[at:at + 2]
            return cls(data, shlex.join(rest), Path(os.readlink(f"/proc/{pid}/exe")).parent
                       / "pg_ctl", Path(f"/proc/{pid}").stat().st_uid)
        raise AssertionError("no running postgres found")

    def _ctl(self, *args: str) -> None:
        # pg_ctl refuses root: run it as the server's own user
        proc = subprocess.run([str(self.pg_ctl), "-D", str(self.data), *args], user=self.uid,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast", "-w")

    def start(self) -> None:
        self._ctl("start", "-w", "-o", self.options, "-l", str(self.data / "restarted.log"))

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


def _port_of(url: str) -> str:
    query = url.split("?", 1)[1] if "?" in url else ""
    return next(p.split("=", 1)[1] for p in query.split("&") if p.startswith("port="))


def _call(harness: Harness, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    """One request to the in-process backend, on the harness's own event loop."""
    token = jwt.encode({"sub": USER, "exp": int(time.time()) + 600},
                       harness.config.jwt_secret, algorithm="HS256")
    assert harness.target is not None
    client = harness.target.client

    async def send() -> tuple[int, Any]:
        response = await client.request(method, path, headers={
            "authorization": f"Bearer {token}"}, **kw)
        return response.status_code, response.json()

    # on the session's loop: the app's connection pool lives there
    return harness.call(asyncio.wait_for(send(), 60))


@pytest.fixture
def harness() -> Any:
    with Harness(RunConfig(db="embedded", fixtures=ROOT / "fixtures")) as h:
        h.start()
        yield h


def _scenario() -> Scenario:
    return load_file(STATS)[0]


def test_database_down_answers_503_and_the_backend_recovers_after_a_restart(
    harness: Harness,
) -> None:
    assert harness.run(_scenario()).passed
    pg = Postgres.serving(port=_port_of(harness.db.url))
    pg.stop()
    try:
        status, body = _call(harness, "GET", "/api/chat/sessions")
        assert (status, body.get("code")) == (503, "service_unavailable"), body
        assert body.get("error") and body.get("timestamp"), body  # the error envelope (C-ERR-1)
        status, body = _call(harness, "GET", "/api/health")
        assert status == 503, body
        pg.start()
        poll_until(lambda: _call(harness, "GET", "/api/health")[0] == 200,
                   lambda: "the backend never recovered after the restart", deadline_s=60)
        batch = {"sessionId": "conv_1755009248860_restarted", "messages": [{
            "id": "msg_1755009248860_restart01", "role": "user", "content": "still here?",
            "timestamp": "2025-08-12T14:34:08.860Z"}]}
        status, body = _call(harness, "POST", "/api/chat/messages", json=batch)
        assert status == 201, body
        status, body = _call(harness, "GET", "/api/chat/messages",
                             params={"session_id": "conv_1755009248860_restarted"})
        assert [m["id"] for m in body["messages"]] == ["msg_1755009248860_restart01"]
    finally:
        if pg.running():  # ours now: the harness's handle is the server it started
            pg.stop()


def test_a_scenario_while_the_database_is_down_names_the_database(harness: Harness) -> None:
    assert harness.run(_scenario()).passed
    pg = Postgres.serving(port=_port_of(harness.db.url))
    pg.stop()
    try:
        with pytest.raises(DatabaseError, match="database"):
            harness.run(_scenario())
    finally:
        if pg.running():
            pg.stop()


def test_the_first_scenario_after_a_database_restart_passes(harness: Harness) -> None:
    assert harness.run(_scenario()).passed
    pg = Postgres.serving(port=_port_of(harness.db.url))
    pg.stop()
    try:
        pg.start()
        assert harness.run(_scenario()).passed
    finally:
        if pg.running():
            pg.stop()


def test_a_run_whose_database_stops_ends_with_a_clear_message(tmp_path: Path,
                                                              run_tmp: Path) -> None:
    """No hang, exit code 3, the database named; nothing left running."""
    tmp = run_tmp
    out = tmp_path / "out.txt"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", "scenarios", "--db", "embedded",
             "--reports", str(tmp_path / "reports"), "-q", "-p", "no:cacheprovider"],
            cwd=ROOT, env=run_env(tmp), stdout=sink, stderr=subprocess.STDOUT)
    try:
        def running_postgres() -> Postgres | None:
            assert proc.poll() is None, out.read_text()
            try:
                return Postgres.serving(processes_of(tmp))
            except (AssertionError, OSError, ValueError):
                return None

        pg = poll_until(running_postgres, lambda: "the run never started its database",
                        deadline_s=120)
        # once a few scenarios have passed, the database goes away for good
        poll_until(lambda: out.read_text().count(".") >= 3,
                   lambda: f"no scenario passed\n{out.read_text()}", deadline_s=120)
        pg.stop()
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _stopped_cleanly(proc, out, tmp, "chat-harness cannot go on: cannot connect to the "
                     "embedded database", "Hint: ")


# -- the provider drops connections -----------------------------------------------------

DROPS = """\
name: provider-drops
model: m/free
steps:
  - chat: the connection drops once, the backend's retry gets the answer
    provider: [{disconnect: true}, {reply: "Back again."}]
    expect: {status: 200, body: {data: {response: Back again.}}, provider: {calls: 2}}
  - chat: half a body, then the connection drops, three times
    provider:
      - {raw: '{"id": "gen-1", "choi', disconnect: true}
      - {raw: '{"id": "gen-2", "choi', disconnect: true}
      - {raw: '{"id": "gen-3", "choi', disconnect: true}
    expect: {status: 502, body: {code: bad_gateway}, provider: {calls: 3}}
  - chat: and the next message is answered as usual
    provider: {reply: "All good."}
"""


@pytest.mark.parametrize("target", ["in-process", "target-cmd"])
def test_dropped_provider_connections_become_retries_or_a_502(tmp_path: Path, run_tmp: Path,
                                                             target: str) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "drops.yaml").write_text(DROPS)
    args = ["--target-cmd", REFERENCE] if target == "target-cmd" else []
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(scenarios), *args, "--db", "embedded",
         "--fixtures-dir", str(ROOT / "fixtures"), "--reports", str(tmp_path / "reports"),
         "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=run_env(run_tmp), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout


# each answer takes most of the backend's PROVIDER_TIMEOUT_MS (--provider-timeout 1000): a
# call is in flight
SLOW = "name: slow\nmodel: m\nsteps:\n" + "".join(
    f"  - chat: hello {i}\n    provider: {{reply: hi, delay_ms: 800}}\n" for i in range(20))


def test_a_provider_killed_mid_run_gives_502_and_a_clear_stop(tmp_path: Path,
                                                              run_tmp: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "slow.yaml").write_text(SLOW)
    tmp, reports = run_tmp, tmp_path / "reports"
    out = tmp_path / "out.txt"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", str(scenarios), "--target-cmd", REFERENCE,
             "--provider-timeout", "1000", "--db", "embedded",
             "--fixtures-dir", str(ROOT / "fixtures"),
             "--reports", str(reports), "-q", "-p", "no:cacheprovider"],
            cwd=ROOT, env=run_env(tmp), stdout=sink, stderr=subprocess.STDOUT)
    log = reports / "target.log"

    def answered() -> int:  # chat requests the backend has answered (uvicorn's access log)
        return log.read_bytes().count(b"POST /api/chat ") if log.exists() else 0

    try:
        poll_until(lambda: proc.poll() is not None or answered() >= 2,
                   lambda: "the run never got going", deadline_s=120)
        assert proc.poll() is None, out.read_text()
        (provider,) = [pid for pid in processes_of(tmp)
                       if "harness.provider" in _cmdline(pid)]
        (port,) = ports_of([provider])

        def in_flight() -> bool:  # the provider holds a call the backend still waits on
            calls = httpx.get(f"http://127.0.0.1:{port}/_chat-harness/calls").json()["calls"]
            return len(calls) > answered()

        poll_until(in_flight, lambda: "no provider call was ever in flight", deadline_s=60)
        os.kill(provider, signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _stopped_cleanly(proc, out, tmp, "chat-harness cannot go on: the scripted provider",
                     "did the provider process stop?")
    # the call in flight: the backend answered 502 (C-CHAT-5), it did not hang or 500
    assert b'"POST /api/chat HTTP/1.1" 502' in log.read_bytes()


# -- the backend hangs -----------------------------------------------------------------------

HANGING_BACKEND = """\
import http.server, json, os, threading

class Handler(http.server.BaseHTTPRequestHandler):
    def _hang(self):
        if self.path == "/api/health":
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        threading.Event().wait()  # every other request: never an answer

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _hang

http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

ONE_CHAT = """\
name: against-a-hanging-backend
model: m/free
checks: {idempotent: false}
steps:
  - chat: hello?
    provider: {reply: never asked for}
"""


def test_a_hanging_backend_times_out_per_step_with_the_step_named(tmp_path: Path,
                                                                 run_tmp: Path) -> None:
    (tmp_path / "hang.py").write_text(HANGING_BACKEND)
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "one-chat.yaml").write_text(ONE_CHAT)
    tmp = run_tmp
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(scenarios), "--target-cmd",
         f"{sys.executable} {tmp_path / 'hang.py'}", "--step-timeout", "1",
         "--db", "embedded", "--fixtures-dir", str(ROOT / "fixtures"),
         "--reports", str(tmp_path / "reports"), "-p", "no:cacheprovider"],
        cwd=tmp_path, env=run_env(tmp), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed" in out
    # the step, where it is in the file, the request, and what went wrong
    assert "step 1 (scenarios/one-chat.yaml:5) chat 'hello?'" in out, out
    assert "POST /api/chat got no answer: the backend did not answer within 1 s " \
           "(--step-timeout)" in out, out
    assert "Traceback" not in out
    poll_until(lambda: not processes_of(tmp), lambda: "processes left", deadline_s=30)
