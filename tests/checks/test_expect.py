"""A step's ``expect:``: what it asserts, and only that (C-ERR-3's field names, instants)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import Backend, Call, error, failures, run, scenario

BAD_MODEL = """\
name: case
steps:
  - http: POST /api/chat
    body: {message: hello}
    expect: {status: 400, body: {code: bad_request}, names_field: model}
"""


def refusing(doc: dict[str, Any]) -> Backend:
    def chat(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        return httpx.Response(400, json={"code": "bad_request",
                                         "timestamp": "2025-08-12T14:34:08Z", **doc})
    return Backend(chat=chat)


@pytest.mark.parametrize("doc", [
    {"error": "Bad input", "details": "'model' is required"},
    {"error": "Model must be a non-empty string"},
    {"error": "invalid body", "details": "body.MODEL: missing", "field": "model"},
], ids=["in details", "in error, another case", "with extra fields"])
def test_names_field_passes_when_error_or_details_names_it(tmp_path: Path,
                                                           doc: dict[str, Any]) -> None:
    result = run(scenario(tmp_path, BAD_MODEL), refusing(doc))
    assert result.failures == []


def test_names_field_fails_when_neither_names_it(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, BAD_MODEL),
                 refusing({"error": "Bad input", "details": "a field is missing"}))
    (failure,) = failures(result, "expect")
    assert failure.clause == "C-ERR-3"
    assert failure.message == ("the error should name the field 'model' (in 'error' or "
                               "'details'); it said 'Bad input / a field is missing'")


def test_a_capture_the_answer_lacks_stops_the_scenario_as_the_backend_s_fault(
        tmp_path: Path) -> None:
    text = """\
    name: case
    model: m/x
    steps:
      - chat: hi
        provider: {reply: Hello.}
        capture: {gen: data.id}
      - chat: again ${gen}
        provider: {reply: Again.}
    """
    result = run(scenario(tmp_path, text))  # its data.id is null: present, captured
    assert result.failures == []

    def no_data_id(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        call(body)
        data = {"response": "Hello.", "usage": {"prompt_tokens": 0, "completion_tokens": 0,
                                                "total_tokens": 0},
                "request_id": body.get("current_message_id"), "timestamp": "2025-08-12T14:34Z",
                "elapsed_ms": 1, "contentType": "text", "model": "m/x"}
        return httpx.Response(200, json={"data": data, "timestamp": "2025-08-12T14:34Z"})

    result = run(scenario(tmp_path, text), Backend(chat=no_data_id))
    (failure,) = failures(result, "expect")
    assert failure.step == 0 and failure.clause == "C-CHAT-4"
    assert failure.message.startswith("the backend's answer has nothing at 'data.id' to "
                                      "capture as 'gen'")
    assert failure.message.endswith("later steps use it: the 1 step(s) after this one were "
                                    "not run")
    assert [s.index for s in result.steps] == [0]  # step 2 needs ${gen}: not run


def test_an_error_envelope_with_extras_and_other_texts_passes_expect(tmp_path: Path) -> None:
    text = """\
    name: case
    steps:
      - http: GET /api/chat/nope
        expect: {status: 404, body: {code: not_found}}
    """
    result = run(scenario(tmp_path, text))
    assert result.failures == []
    assert error(404, "not_found").status_code == 404
