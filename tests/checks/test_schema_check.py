"""The ``schema`` check: every answer has the shape ``harness/contract/openapi.yaml`` gives it.

``answers.check_schema`` validates every answer of the run (the checks' own
reads and replays too) not yet reported by another check; each failure names
the clause of the broken part (the document's nearest ``x-contract-clause``),
one failure per answer and clause. Each case below breaks a part no other
check looks at; answers are open, so extra fields, other key order, finer
timestamp digits and extra headers pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    Backend,
    Call,
    FakeDb,
    clean,
    contract_chat,
    failures,
    flagged,
    loose,
    loose_read,
    loose_store,
    response,
    run,
    scenario,
    success,
    with_items,
)

HEAD = "name: case\nmodel: m/x\n"
CHAT_AND_STREAM = HEAD + """\
steps:
  - chat: hello
    provider: {reply: Hi there.}
  - stream: tell me more
    provider: {reply: Some more words., chunk_chars: 4}
"""
CUT_STREAM = HEAD + """\
steps:
  - stream: tell me a story
    provider: {reply: Once upon a time there was, chunk_chars: 5, cut_after: 2}
"""


def chat_with(**data: Any) -> Callable[[], Backend]:
    """A backend whose chat answers carry ``data`` fields of another shape."""
    def chat(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        return contract_chat(body, streaming, call, **data)
    return lambda: Backend(chat=chat)


def chat_without_top_timestamp() -> Backend:
    def chat(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        answer = contract_chat(body, streaming, call)
        if streaming:
            return answer
        return httpx.Response(200, json={"data": answer.json()["data"]})
    return Backend(chat=chat)


def items_with(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[], Backend]:
    return lambda: Backend(read=with_items(lambda items: [change(dict(i)) for i in items]))


def _drop(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda item: {k: v for k, v in item.items() if k != key}


def store_with(change: Callable[[dict[str, Any]], dict[str, Any]], status: int = 201
               ) -> Callable[[], Backend]:
    def store(body: dict[str, Any], backend: Backend) -> httpx.Response:
        return response(status, change(backend.stored(body).json()))
    return lambda: Backend(store=store)


def empty_request_id() -> Backend:
    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        if request.method == "GET":
            answer.headers["x-request-id"] = ""
        return answer
    return Backend(finish=finish)


def stream_as_json() -> Backend:
    def chat(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        answer = contract_chat(body, streaming, call)
        if not streaming:
            return answer
        return httpx.Response(200, headers={"content-type": "application/json"},
                              content=answer.content)
    return Backend(chat=chat)


@dataclass
class Wrong:
    rule: str
    text: str
    backend: Callable[[], Backend]
    clause: str
    step: int | None
    says: str


ON_CHAT = "POST /api/chat (chat) -> 200 does not match the contract's OpenAPI description: "
ON_READ = ("GET /api/chat/messages (read) -> 200 does not match the contract's OpenAPI "
           "description: ")
WRONG = [
    Wrong("data.elapsed_ms is an integer", CHAT_AND_STREAM, chat_with(elapsed_ms="5"),
          "C-CHAT-4", 0, ON_CHAT + "body.data.elapsed_ms: '5' is not of type 'integer'"),
    Wrong("data.contentType is markdown or text", CHAT_AND_STREAM, chat_with(contentType="html"),
          "C-CHAT-4", 0, "body.data.contentType: 'html' is not one of ['markdown', 'text']"),
    Wrong("data.timestamp is an ISO-8601 instant", CHAT_AND_STREAM,
          chat_with(timestamp="yesterday"), "C-CHAT-4", 0,
          "body.data.timestamp: 'yesterday' is not a 'iso-8601'"),
    Wrong("the answer has its own timestamp", CHAT_AND_STREAM, chat_without_top_timestamp,
          "C-CHAT-4", 0, "'timestamp' is a required property"),
    Wrong("the final metadata of a stream is C-CHAT-4's data", CHAT_AND_STREAM,
          chat_with(elapsed_ms=5.5), "C-CHAT-4", 1,
          "body[last line].__FINAL_METADATA__.elapsed_ms: 5.5 is not of type 'integer'"),
    Wrong("a stream is text/plain", CHAT_AND_STREAM, stream_as_json, "C-STREAM-1", 1,
          "POST /api/chat/stream (chat) -> 200 does not match"),
    Wrong("a message's timestamp reads back as YYYY-MM-DDTHH:MM:SS.mmmZ", CHAT_AND_STREAM,
          items_with(lambda i: {**i, "timestamp": i["timestamp"].replace("T", " ")[:-1]}),
          "C-MSG-4", None, ON_READ + "body.messages[0].timestamp: '2025-08-12 14:34:10.361' "
          "is not a 'date-time'"),
    Wrong("an item has every field of C-MSG-9", CHAT_AND_STREAM, items_with(_drop("contentType")),
          "C-MSG-9", None, "body.messages[0]: 'contentType' is a required property"),
    Wrong("a user item has originalModel", CHAT_AND_STREAM, items_with(_drop("originalModel")),
          "C-MSG-9", None, "body.messages[0]: 'originalModel' is a required property"),
    Wrong("token counts are integers", CHAT_AND_STREAM,
          items_with(lambda i: {**i, "input_tokens": str(i["input_tokens"])}), "C-MSG-9", None,
          "body.messages[0].input_tokens: '2' is not of type 'integer'"),
    Wrong("a store answers success: true", CHAT_AND_STREAM,
          store_with(lambda doc: {**doc, "success": "yes"}), "C-MSG-8", 0,
          "POST /api/chat/messages (sync) -> 201 does not match"),
    Wrong("a store answers 201", CHAT_AND_STREAM, store_with(lambda doc: doc, status=200),
          "C-MSG-8", 0, "status 200: not documented for POST /api/chat/messages"),
    Wrong("x-request-id is not empty", CHAT_AND_STREAM, empty_request_id, "C-ERR-1", None,
          "header x-request-id: '' should be non-empty"),
    Wrong("a __STREAM_ERROR__ code is one of C-STREAM-3's", CUT_STREAM,
          lambda: Backend(chat=lambda b, s, call: _cut_with_code(b, call, "oops")),
          "C-STREAM-3", 0, "__STREAM_ERROR__.code: 'oops' is not one of"),
]


def _cut_with_code(body: dict[str, Any], call: Call, code: str) -> httpx.Response:
    call(body)
    return httpx.Response(200, headers={"content-type": "text/plain; charset=utf-8"},
                          content=b'Once upon \n{"__STREAM_ERROR__": {"code": "'
                          + code.encode() + b'", "error": "cut"}}')


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_an_answer_of_another_shape_fails_under_the_clause_of_the_part(tmp_path: Path,
                                                                       wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), wrong.backend())
    flagged(result, "schema", wrong.clause, wrong.says, step=wrong.step)


def test_one_failure_per_answer_and_clause(tmp_path: Path) -> None:
    backend = Backend(read=with_items(lambda items: [
        {**_drop("contentType")(i), "timestamp": i["timestamp"][:-1]} for i in items]))
    result = run(scenario(tmp_path, CHAT_AND_STREAM), backend)
    first_read = {f.clause: f for f in failures(result, "schema") if f.step is None}
    assert sorted(first_read) == ["C-MSG-4", "C-MSG-9"]
    assert first_read["C-MSG-9"].message.count("'contentType' is a required property") == 4
    assert first_read["C-MSG-4"].message.endswith("; and 3 more")  # 8 problems: five shown


def test_an_answer_another_check_reported_is_not_judged_again(tmp_path: Path) -> None:
    # a 200 where the provider's 429 makes a 429: the outcome check reports it; its
    # shape (a success's data, fine) is not looked at for the 429 it should have been
    def success_anyway(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        call(body)
        return success(body, "Hi.", elapsed_ms="slow")  # a shape problem too

    text = HEAD + "steps:\n  - chat: hi\n    provider: {status: 429}\n"
    result = run(scenario(tmp_path, text), Backend(chat=success_anyway))
    flagged(result, "outcome", "C-CHAT-5", "(a success)", step=0)
    assert failures(result, "schema") == []


def _finer_timestamps(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**i, "timestamp": i["timestamp"][:-1] + "000Z"} for i in items]


def _extra_headers() -> Backend:
    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        answer.headers["x-powered-by"] = "checkkit"
        answer.headers["cache-control"] = "no-store"
        return answer
    return Backend(store=loose_store, read=loose_read, finish=finish)


def _loose_chat(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
    answer = contract_chat(body, streaming, call, contentType="markdown", cost=0.0001)
    return answer if streaming else loose(answer)


RIGHT: dict[str, tuple[str, Callable[[], Backend]]] = {
    "as the contract writes it": (CHAT_AND_STREAM, Backend),
    "extra fields, other key order, extra headers": (CHAT_AND_STREAM, _extra_headers),
    "chat answers written otherwise": (CHAT_AND_STREAM, lambda: Backend(chat=_loose_chat)),
    "timestamps with finer digits": (CHAT_AND_STREAM, lambda: Backend(
        read=with_items(_finer_timestamps))),
    "a stream that ends in __STREAM_ERROR__": (CUT_STREAM, Backend),
}


@pytest.mark.parametrize(("text", "make"), RIGHT.values(), ids=RIGHT.keys())
def test_an_answer_of_the_contract_s_shape_passes_every_check(
        tmp_path: Path, text: str, make: Callable[[], Backend]) -> None:
    backend = make()
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


def test_strict_fields_notes_the_extras_and_fails_nothing(tmp_path: Path) -> None:
    backend = _extra_headers()
    result = run(scenario(tmp_path, CHAT_AND_STREAM), backend, FakeDb(backend),
                 strict_fields=True)
    clean(result)  # notes, never failures
    assert result.notes, "the loose answers carry extra fields"
    assert all(" carries " in n and " beyond what C-" in n for n in result.notes)
    assert any(n.startswith("GET /api/chat/messages -> 200: body.messages[] carries ")
               for n in result.notes), result.notes
    plain = run(scenario(tmp_path, CHAT_AND_STREAM), _extra_headers(), FakeDb(backend))
    assert plain.notes == []  # without --strict-fields: nothing noted


def test_strict_fields_names_every_extra_of_an_unrouted_answer(tmp_path: Path) -> None:
    text = HEAD + "steps:\n  - http: GET /api/chat/nope\n    expect: {status: 404}\n"

    def chatty(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        doc = {**answer.json(), "path": request.url.path, "hint": "see /api/chat"}
        return httpx.Response(404, headers=answer.headers, json=doc)

    result = run(scenario(tmp_path, text), Backend(finish=chatty), strict_fields=True)
    clean(result)
    assert result.notes == ["GET /api/chat/nope -> 404: body carries hint, path beyond what "
                            "C-ERR-1 lists"]
