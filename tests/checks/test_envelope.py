"""The ``envelope`` check (C-ERR-1, C-ERR-2): every error answer, every request id.

``answers.check_envelopes`` reads every answer of the run, the checks' own
reads and replays too: each carries ``x-request-id``; each error body is
``{"error": str, "code": str, "timestamp": ISO-8601, "details"?: str,
"retryAfter"?: int, "suggestions"?: [str]}`` with a code of C-ERR-2 that goes
with the status. Each break fails under its clause at its step; an envelope
written otherwise (extra fields, key order, other texts, offsets) passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    NOW,
    Backend,
    FakeDb,
    clean,
    contract_chat,
    failures,
    flagged,
    loose,
    run,
    scenario,
)

HEAD = "name: case\nmodel: m/x\n"
UNKNOWN_ROUTE = HEAD + """\
steps:
  - chat: hello
    provider: {reply: Hi.}
  - http: GET /api/chat/nope
    expect: {status: 404}
"""
RATE_LIMITED = HEAD + """\
steps:
  - chat: hello
    provider: {status: 429, retry_after: 12}
"""
Finish = Callable[[httpx.Request, httpx.Response], httpx.Response]


def answering(path: str, status: int, body: Any) -> Finish:
    """A finish hook: ``path`` is answered ``status`` with ``body`` (JSON, or text)."""
    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        if request.url.path != path:
            return answer
        headers = {"x-request-id": answer.headers["x-request-id"]}
        if isinstance(body, str):
            return httpx.Response(status, headers=headers, text=body)
        return httpx.Response(status, headers=headers, json=body)
    return finish


def without_request_id(method: str, path: str) -> Finish:
    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        if (request.method, request.url.path) == (method, path):
            del answer.headers["x-request-id"]
        return answer
    return finish


def envelope(**fields: Any) -> dict[str, Any]:
    """The contract's 404 envelope with ``fields`` changed (None: left out)."""
    doc = {"error": "No such route", "code": "not_found", "timestamp": NOW, **fields}
    return {k: v for k, v in doc.items() if v is not None}


@dataclass
class Wrong:
    rule: str
    body: Any
    clause: str
    says: str


NOPE = "GET /api/chat/nope (raw) -> 404"
WRONG = [
    Wrong("an error body is a JSON object", "Not Found", "C-ERR-1",
          f"{NOPE}: the body is not a JSON object: 'Not Found'"),
    Wrong("'error' is a string", envelope(error=None), "C-ERR-1",
          "'error' is not a string: None"),
    Wrong("'error' is a string, not an object", envelope(error={"message": "x"}), "C-ERR-1",
          "'error' is not a string: {'message': 'x'}"),
    Wrong("'code' is a string", envelope(code=404), "C-ERR-1", "'code' is not a string: 404"),
    Wrong("'timestamp' is there", envelope(timestamp=None), "C-ERR-1",
          "'timestamp' is not an ISO-8601 time: None"),
    Wrong("'timestamp' is ISO-8601", envelope(timestamp="yesterday"), "C-ERR-1",
          "'timestamp' is not an ISO-8601 time: 'yesterday'"),
    Wrong("'timestamp' is ISO-8601, not epoch", envelope(timestamp=1755009248), "C-ERR-1",
          "'timestamp' is not an ISO-8601 time: 1755009248"),
    Wrong("'details' is a string", envelope(details={"field": "id"}), "C-ERR-1",
          "'details' is not a string: {'field': 'id'}"),
    Wrong("'retryAfter' is an integer", envelope(retryAfter="30"), "C-ERR-1",
          "'retryAfter' is not an integer: '30'"),
    Wrong("'retryAfter' is an integer, not a boolean", envelope(retryAfter=True), "C-ERR-1",
          "'retryAfter' is not an integer: True"),
    Wrong("'suggestions' is a list", envelope(suggestions="try later"), "C-ERR-1",
          "'suggestions' is not a list of strings: 'try later'"),
    Wrong("'suggestions' holds strings", envelope(suggestions=[{"model": "x"}]), "C-ERR-1",
          "'suggestions' is not a list of strings"),
    Wrong("the code is one of C-ERR-2's", envelope(code="NOT_FOUND"), "C-ERR-2",
          "code 'NOT_FOUND' is not one of the contract's codes"),
    Wrong("the code goes with the status", envelope(code="bad_request"), "C-ERR-2",
          f"{NOPE}: code 'bad_request' goes with status 400, not 404"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_broken_envelope_fails_at_its_step(tmp_path: Path, wrong: Wrong) -> None:
    backend = Backend(finish=answering("/api/chat/nope", 404, wrong.body))
    result = run(scenario(tmp_path, UNKNOWN_ROUTE), backend)
    flagged(result, "envelope", wrong.clause, wrong.says, step=1)


def test_every_problem_of_a_body_is_in_its_one_failure(tmp_path: Path) -> None:
    body = {"code": "nope", "timestamp": "now", "retryAfter": 1.5}
    result = run(scenario(tmp_path, UNKNOWN_ROUTE),
                 Backend(finish=answering("/api/chat/nope", 404, body)))
    (failure,) = failures(result, "envelope")
    assert failure.clause == "C-ERR-2"  # one of the problems is about the code
    assert failure.message == (
        f"{NOPE}: 'error' is not a string: None; 'timestamp' is not an ISO-8601 time: 'now'; "
        "'retryAfter' is not an integer: 1.5; code 'nope' is not one of the contract's codes")
    assert failures(result, "schema") == []  # reported once, by the envelope check


@pytest.mark.parametrize(("method", "path", "purpose", "step"), [
    ("POST", "/api/chat", "chat", 0),
    ("POST", "/api/chat/messages", "sync", 0),
    ("GET", "/api/chat/nope", "raw", 1),
    ("GET", "/api/chat/messages", "read", None),
], ids=["a chat answer", "a sync", "an error", "the checks' own read"])
def test_every_answer_carries_x_request_id(tmp_path: Path, method: str, path: str,
                                           purpose: str, step: int | None) -> None:
    result = run(scenario(tmp_path, UNKNOWN_ROUTE),
                 Backend(finish=without_request_id(method, path)))
    failure = flagged(result, "envelope", "C-ERR-1",
                      f"{method} {path} ({purpose}) -> ", step=step)
    assert failure.message.endswith("has no x-request-id header")


def test_a_replay_carries_x_request_id_too(tmp_path: Path) -> None:
    posts = 0

    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        nonlocal posts
        if request.method == "POST" and request.url.path == "/api/chat/messages":
            posts += 1
            if posts > 1:  # the step's sync is the first; then the two replays
                del answer.headers["x-request-id"]
        return answer

    result = run(scenario(tmp_path, UNKNOWN_ROUTE), Backend(finish=finish))
    found = failures(result, "envelope")
    assert [f.message for f in found] == [
        "POST /api/chat/messages (replay) -> 201 has no x-request-id header"] * 2


RIGHT = {
    "extra fields, keys in another order": {
        "path": "/api/chat/nope", "timestamp": NOW, "code": "not_found",
        "error": "Route not found", "status": 404},
    "details, suggestions, retryAfter 0": envelope(details="GET /api/chat/nope",
                                                   suggestions=[], retryAfter=0),
    "a timestamp with an offset": envelope(timestamp="2025-08-12T16:34:08+02:00"),
    "a timestamp without milliseconds, in another language": envelope(
        timestamp="2025-08-12T14:34:08Z", error="Ruta no encontrada"),
}


@pytest.mark.parametrize("body", RIGHT.values(), ids=RIGHT.keys())
def test_an_envelope_written_otherwise_passes_every_check(tmp_path: Path,
                                                          body: dict[str, Any]) -> None:
    backend = Backend(finish=answering("/api/chat/nope", 404, body))
    clean(run(scenario(tmp_path, UNKNOWN_ROUTE), backend, FakeDb(backend)))


def test_a_provider_error_written_otherwise_passes_every_check(tmp_path: Path) -> None:
    def chat(body: dict[str, Any], streaming: bool, call: Any) -> httpx.Response:
        return loose(contract_chat(body, streaming, call))

    clean(run(scenario(tmp_path, RATE_LIMITED), Backend(chat=chat)))


def test_an_echoed_or_made_up_request_id_passes(tmp_path: Path) -> None:
    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        answer.headers["x-request-id"] = "5f0c" * 8
        return answer

    clean(run(scenario(tmp_path, UNKNOWN_ROUTE), Backend(finish=finish)))


def test_a_request_id_header_spelled_in_another_case_passes(tmp_path: Path) -> None:
    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        headers = [("X-Request-ID", answer.headers["x-request-id"]),
                   ("Content-Type", answer.headers["content-type"])]
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    clean(run(scenario(tmp_path, UNKNOWN_ROUTE), Backend(finish=finish)))
