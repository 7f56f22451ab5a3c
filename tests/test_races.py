"""The race language: ``parallel:`` with rounds, a barrier and ``before:``, and its checks.

A wrong answer to one of the concurrent requests fails at its round and request;
the loader takes every step kind into a group and refuses what cannot run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from runs import chat_harness

from harness.scenario.load import load_file
from harness.scenario.model import ChatStep, ParallelStep, ResyncStep
from harness.scenario.steps.parallel import fresh_names

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_group_takes_rounds_barrier_before_and_any_kind(tmp_path: Path) -> None:
    path = _write(tmp_path, "g.yaml", """name: g
model: m/free
steps:
  - parallel:
      - resync
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
      - db: SELECT 1 AS one
    before:
      - chat: "hi ${round}"
        provider: {reply: hi}
        sync: false
    rounds: 7
    barrier: true
""")
    (scenario,) = load_file(path)
    step = scenario.steps[0]
    assert isinstance(step, ParallelStep)
    assert (step.rounds, step.barrier) == (7, True)
    assert isinstance(step.before_parsed[0], ChatStep)
    assert isinstance(step.parsed[0], ResyncStep)
    assert step.lines == (5, 6, 8)
    assert fresh_names(step) == ["conv"]


def test_a_wrong_concurrent_answer_fails_at_its_round_and_request(tmp_path: Path) -> None:
    # two tabs create one new session at once: exactly one of them creates it (201),
    # the other finds it (200); expecting 201 of both must fail, in every round, at the
    # request that got the 200
    _write(tmp_path, "tabs.yaml", """name: tabs
covers: [C-SES-2]
steps:
  - parallel:
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
        expect: {status: 201}
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
        expect: {status: 201}
    rounds: 3
    barrier: true
""")
    done = chat_harness("run", str(tmp_path / "tabs.yaml"), "--reports", str(tmp_path / "r"),
                        tmp=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    messages = [f["message"] for s in results["scenarios"] for f in s["failures"]]
    assert len(messages) == 3, messages  # one per round
    for number in (1, 2, 3):
        assert any(m.startswith(f"round {number} of 3, request ") and "(line " in m
                   and "expected status 201" in m for m in messages), messages


def test_the_race_family_passes_on_the_reference(tmp_path: Path) -> None:
    done = chat_harness("run", str(ROOT / "scenarios" / "races"), "--reports",
                        str(tmp_path / "r"), tmp=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert len(results["scenarios"]) >= 10


# A backend that answers POST /api/chat/sessions only once two of them are in flight at
# the same time (else, after 20 s, 500): a harness that sent a group's requests one
# after another, or over one connection, cannot pass it.
_TWO_AT_ONCE = '''
import json, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

meet = threading.Barrier(2)
say = threading.Lock()  # one line at a time from the two threads

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/api/chat/messages"):
            self._send(200, {"messages": [], "count": 0})
        elif self.path.startswith("/api/chat/session"):
            self._send(200, {"session": {"message_count": 0, "total_tokens": 0,
                                         "last_message_preview": None, "last_model": None}})
        else:
            self._send(200, {"status": "ok"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            meet.wait(timeout=20)
        except threading.BrokenBarrierError:
            meet.reset()
            self._send(500, {"error": "alone", "code": "internal_server_error"})
            return
        with say:
            print("together", self.client_address[1], flush=True)
        self._send(201, {"session": {}, "success": True})

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


def test_a_group_reaches_a_black_box_over_concurrent_connections(tmp_path: Path) -> None:
    backend = _write(tmp_path, "two_at_once.py", _TWO_AT_ONCE)
    _write(tmp_path, "meet.yaml", """name: meet
checks: {envelope: false, schema: false, idempotent: false}
steps:
  - parallel:
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
        expect: {status: 201}
      - http: POST /api/chat/sessions
        as: bob
        body: {id: "${fresh.conv}"}
        expect: {status: 201}
    rounds: 3
    barrier: true
""")
    import sys

    done = chat_harness("run", str(tmp_path / "meet.yaml"), "--reports", str(tmp_path / "r"),
                        "--target-cmd", f"exec {sys.executable} {backend}", tmp=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    log = (tmp_path / "r" / "target.log").read_text()
    ports = re.findall(r"together (\d+)", log)
    assert len(ports) == 6, log  # every request met another one in flight
    for first, second in zip(ports[::2], ports[1::2], strict=True):
        assert first != second  # two connections, not one


def test_a_db_step_in_a_group_does_not_hold_the_other_requests(tmp_path: Path) -> None:
    # the db step waits (a deadline of 10 s, polling) for the session that the other
    # request of its group creates: run on the event loop, it would hold that request
    # back until its deadline and fail; in a thread, it sees the session arrive
    _write(tmp_path, "wait.yaml", """name: wait
checks: {envelope: false, schema: false, idempotent: false}
steps:
  - parallel:
      - db: |
          DO $$ BEGIN
            FOR i IN 1..1000 LOOP
              IF EXISTS (SELECT 1 FROM chat_sessions WHERE id = '${fresh.conv}') THEN
                RETURN;
              END IF;
              PERFORM pg_sleep(0.01);
            END LOOP;
            RAISE EXCEPTION 'the session never appeared';
          END $$
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
        expect: {status: 201}
    rounds: 2
""")
    done = chat_harness("run", str(tmp_path / "wait.yaml"), "--reports", str(tmp_path / "r"),
                        tmp=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
