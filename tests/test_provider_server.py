"""The scripted provider as a real server: wire forms, HTTP behaviour, process life cycle.

One provider process serves the module (``server``); each test starts from a
reset engine. Only the life-cycle tests start their own processes.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs import gone

from harness.errors import InternalError, TargetError
from harness.provider import (
    Answer,
    ErrorAnswer,
    ProviderCall,
    RawAnswer,
    Reply,
    ScriptedProvider,
    wire,
)
from harness.provider.remote import ProviderServer, RemoteProvider

CHAT = "/chat/completions"
ASK = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi there"}]}

# -- wire forms -------------------------------------------------------------------

ANSWERS = [
    Reply("Hello"),
    Reply("Ünïcode ✓", model="m/x", id="gen-1", usage={"prompt_tokens": 3, "total_tokens": 9},
          omit_usage=True, delay_ms=5, chunk_chars=3, gap_ms=7, first_gap_ms=11, processing=0,
          cut_after=2, error_after=1, error_code=503, error_message="down", done=False),
    ErrorAnswer(429, retry_after=7),
    ErrorAnswer(503, "busy", retry_after="Wed, 21 Oct 2015 07:28:00 GMT",
                metadata={"provider_name": "x", "raw": {"a": [1, 2.5, None]}}, delay_ms=3),
    RawAnswer(),
    RawAnswer(502, "<html>bad gateway</html>", {"content-type": "text/html"}, delay_ms=1),
    RawAnswer(body=b"caf\xc3\xa9"),  # type: ignore[arg-type]  # bytes: utf-8 text on the wire
    RawAnswer(body=b"\xff\x00\xfe"),  # type: ignore[arg-type]  # bytes: base64 on the wire
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: f"{type(a).__name__}")
def test_answers_round_trip_exactly(answer: Any) -> None:
    data = json.loads(json.dumps(wire.answer_to_json(answer)))
    assert data["kind"] in wire.KINDS
    back = wire.answer_from_json(data)
    assert type(back) is type(answer)
    assert back == answer


def test_bytes_bodies_say_how_they_are_encoded() -> None:
    assert wire.encode_body(b"caf\xc3\xa9") == {"body": "café", "body_encoding": "utf-8"}
    assert wire.encode_body(b"\xff") == {"body": "/w==", "body_encoding": "base64"}
    assert wire.encode_body("café") == {"body": "café"}
    assert wire.decode_body({"body": "café"}) == "café"


@pytest.mark.parametrize("body", [
    {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True},
    "not json {", None, [1, "two"], b"raw \xc3\xa9", b"\x00\xff",
], ids=["json", "text", "none", "list", "utf8-bytes", "binary-bytes"])
def test_calls_round_trip_exactly(body: Any) -> None:
    call = ProviderCall(index=3, step=None if body is None else 2, method="POST",
                        path="/api/v1/chat/completions", headers={"authorization": "Bearer k"},
                        body=body, answer="200 reply 'x'", scripted=False, at=1234.000001)
    back = wire.call_from_json(json.loads(json.dumps(wire.call_to_json(call))))
    assert back == call
    assert type(back.body) is type(body)


@pytest.mark.parametrize("data", [
    {"kind": "nope"}, {"content": "no kind"}, {"kind": "reply"},
    {"kind": "reply", "content": "x", "colour": "red"}, ["kind", "reply"],
    {"kind": "raw", "body": "!!", "body_encoding": "base64"},
])
def test_malformed_answers_are_refused(data: Any) -> None:
    with pytest.raises(wire.WireError):
        wire.answer_from_json(data)


# -- one server for the module ----------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as ps:
        yield ps


@pytest.fixture(params=["journal", "http"])
def provider(server: ProviderServer, request: pytest.FixtureRequest) -> Iterator[RemoteProvider]:
    """The server's control both ways: through the journal files (what ProviderServer's
    own client does: no round trip) and over the control API (a client given the URL)."""
    if request.param == "journal":
        server.provider.reset()
        yield server.provider
        return
    with RemoteProvider(server.control_url) as client:
        client.reset()
        yield client


@pytest.fixture
def http(server: ProviderServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10, trust_env=False) as client:
        yield client


def test_the_server_answers_as_openrouter_and_records_the_call(
    server: ProviderServer, provider: RemoteProvider, http: httpx.Client
) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/api/v1"
    provider.step = 4
    assert provider.step == 4
    provider.plan(Reply("Hello back", usage={"prompt_tokens": 2, "completion_tokens": 3,
                                              "total_tokens": 5}))
    r = http.post(CHAT, json=ASK, headers={"Authorization": "Bearer sk-or-test",
                                            "X-Title": "chat"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello back"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}

    (call,) = provider.calls_in_step(4)
    assert isinstance(call, ProviderCall)
    assert (call.index, call.step, call.method, call.path) == (0, 4, "POST", "/api/v1" + CHAT)
    assert call.model == "openai/gpt-4o-mini"
    assert call.messages == ASK["messages"]
    assert call.headers["authorization"] == "Bearer sk-or-test"
    assert call.headers["x-title"] == "chat"
    assert call.scripted and call.answer == "200 reply 'Hello back'"
    assert provider.calls_in_step(3) == []
    assert provider.calls == [call]
    assert provider.pending() == []


def test_an_error_answer_has_its_status_and_retry_after(
    provider: RemoteProvider, http: httpx.Client
) -> None:
    provider.plan(ErrorAnswer(429, "Rate limited", retry_after=7))
    r = http.post(CHAT, json=ASK)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json() == {"error": {"code": 429, "message": "Rate limited"}}


def _events(raw: bytes) -> list[str]:
    return [e for e in raw.decode().split("\n\n") if e]


def test_a_streamed_reply_arrives_in_chunks_ending_in_done(
    provider: RemoteProvider, http: httpx.Client
) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    provider.plan(Reply(text, chunk_chars=10, gap_ms=20))
    reads: list[bytes] = []
    with http.stream("POST", CHAT, json={**ASK, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["transfer-encoding"] == "chunked"
        reads.extend(r.iter_raw())
    assert len(reads) >= 3  # the gaps keep the chunks apart on the wire
    events = _events(b"".join(reads))
    assert events[0] == ": OPENROUTER PROCESSING"
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[1:-1]]
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in payloads) == text
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" in payloads[-1]


def test_a_first_token_gap_is_really_waited_for(
    provider: RemoteProvider, http: httpx.Client
) -> None:
    """What a backend's per-token timeout meets: the headers and the comment come,
    then nothing until the first token (a client reading with a shorter timeout
    than the gap gives up before any content)."""
    provider.plan(Reply("late words", first_gap_ms=2000))
    before_timeout = b""
    with (
        pytest.raises(httpx.ReadTimeout),
        http.stream("POST", CHAT, json={**ASK, "stream": True},
                    timeout=httpx.Timeout(10, read=0.2)) as r,
    ):
        assert r.status_code == 200
        for data in r.iter_raw():
            before_timeout += data
    assert before_timeout.startswith(b": OPENROUTER PROCESSING")
    assert b'"content"' not in before_timeout


@pytest.mark.parametrize(("answer", "stream", "events"), [
    (Reply("one two three four five six", chunk_chars=5, cut_after=2), True, 3),
    (RawAnswer(200, '{"choices": [', cut=True), False, 0),
], ids=["stream", "raw"])
def test_a_scripted_cut_breaks_the_connection_mid_body(
    provider: RemoteProvider, http: httpx.Client, answer: Any, stream: bool, events: int
) -> None:
    provider.plan(answer)
    got = b""
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        http.stream("POST", CHAT, json={**ASK, "stream": stream}) as r,
    ):
        assert r.status_code == 200
        for data in r.iter_raw():
            got += data
    if events:  # the comment and two text chunks, then nothing
        assert len(_events(got)) == events
        assert b"[DONE]" not in got
    else:
        assert got == b'{"choices": ['
    # the server is fine afterwards
    provider.plan(Reply("after the cut"))
    assert http.post(CHAT, json=ASK).json()["choices"][0]["message"]["content"] == "after the cut"


def test_a_delay_is_real(provider: RemoteProvider, http: httpx.Client) -> None:
    """A scripted delay holds the answer back: a client with a shorter read timeout
    than the delay gets none (as a backend's PROVIDER_TIMEOUT_MS would); one that
    waits gets the answer."""
    provider.plan(Reply("late", delay_ms=2000))
    with pytest.raises(httpx.ReadTimeout):
        http.post(CHAT, json=ASK, timeout=httpx.Timeout(10, read=0.2))
    provider.plan(Reply("late again", delay_ms=50))
    r = http.post(CHAT, json=ASK)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "late again"


def test_an_unscripted_call_gets_599_and_is_recorded(
    provider: RemoteProvider, http: httpx.Client
) -> None:
    provider.step = 0
    r = http.post(CHAT, json=ASK)
    assert r.status_code == 599
    assert "planned no answer" in r.json()["error"]["message"]
    (call,) = provider.calls_in_step(0)
    assert call.scripted is False
    assert call.answer.startswith("599")


def test_pending_answers_can_be_listed_and_discarded(
    provider: RemoteProvider, http: httpx.Client
) -> None:
    planned: list[tuple[str | None, Answer]] = [  # shared answers first, as the engine lists
        (None, Reply("shared")), (None, RawAnswer(200, "{}", cut=True)),
        ("b/model", ErrorAnswer(502, retry_after="3")),
    ]
    for model, answer in planned:
        provider.plan(answer, for_model=model)
    assert provider.pending() == planned
    provider.discard_pending()
    assert provider.pending() == []
    assert http.post(CHAT, json=ASK).status_code == 599


def test_remote_and_in_process_engines_record_the_same(
    provider: RemoteProvider, http: httpx.Client
) -> None:
    local = ScriptedProvider()
    asks = [ASK, {**ASK, "model": "b/model"}, {**ASK, "stream": True}, ASK]
    for engine in (local, provider):
        engine.step = 1
        engine.plan(Reply("for b"), for_model="b/model")
        engine.plan(ErrorAnswer(500))
        engine.plan(Reply("streamed", chunk_chars=4))
    for ask in asks:
        body = json.dumps(ask).encode()
        local.handle("POST", "/api/v1" + CHAT, {"content-type": "application/json"}, body)
        http.post(CHAT, content=body, headers={"content-type": "application/json"})

    def same(c: ProviderCall) -> tuple[Any, ...]:
        return c.index, c.step, c.method, c.path, c.body, c.answer, c.scripted

    assert [same(c) for c in provider.calls] == [same(c) for c in local.calls]
    assert provider.pending() == local.pending() == []


def test_a_step_begins_and_ends_in_one_round_trip_each_as_in_process(
    provider: RemoteProvider, http: httpx.Client
) -> None:
    """begin_step/end_step: the runner's two control moves per step, both engines alike."""
    local = ScriptedProvider()
    plans: list[tuple[Answer, str | None]] = [
        (Reply("for b"), "b/model"), (ErrorAnswer(429, retry_after="2"), None),
        (Reply("never asked"), None)]
    ends = []
    for engine in (local, provider):
        engine.begin_step(2, plans)
        body = json.dumps({**ASK, "model": "b/model"}).encode()
        if engine is local:
            local.handle("POST", "/api/v1" + CHAT, {}, body)
        else:
            assert http.post(CHAT, content=body).status_code == 200
        ends.append(engine.end_step(2))
        assert engine.pending() == []  # what was left is handed back, then discarded

    def same(c: ProviderCall) -> tuple[Any, ...]:
        return c.index, c.step, c.model, c.answer, c.scripted

    (local_end, remote_end) = ends
    assert [same(c) for c in remote_end.calls] == [same(c) for c in local_end.calls]
    assert [c.answer for c in remote_end.calls] == ["200 reply 'for b'"]
    left = [(model, answer) for answer, model in plans[1:]]
    assert remote_end.pending == local_end.pending == left
    # a call after the step's end belongs to no step: the step's record stays whole
    assert http.post(CHAT, json=ASK).status_code == 599
    assert provider.calls[-1].step is None and len(provider.calls_in_step(2)) == 1


def test_the_control_api_refuses_nonsense(server: ProviderServer, provider: RemoteProvider) -> None:
    with httpx.Client(base_url=server.control_url, trust_env=False) as control:
        assert control.post("/plan", json={"answer": {"kind": "nope"}}).status_code == 400
        assert control.put("/step", json={"step": "two"}).status_code == 400
        assert control.get("/calls", params={"step": "x"}).status_code == 400
        assert control.post("/begin-step", json={"step": None}).status_code == 400
        assert control.post("/begin-step", json={"step": 1, "plans": [{}]}).status_code == 400
        assert control.post("/end-step", json={}).status_code == 400
    with pytest.raises(InternalError, match="unknown answer kind"):
        provider._call("POST", "/plan", json={"answer": {"kind": "nope"}})


# -- the process --------------------------------------------------------------------


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("ending", [None, RuntimeError, KeyboardInterrupt])
def test_the_process_is_stopped_whatever_ends_the_block(ending: type[BaseException] | None) -> None:
    ps = ProviderServer()
    with pytest.raises(ending) if ending else contextlib.nullcontext(), ps:
        pid, port, log = ps.pid, ps.port, ps.log_path
        assert ps.provider.health()["pid"] == pid
        assert log is not None and log.exists()
        if ending:
            raise ending("the body failed")
    assert ps.returncode == 0  # stopped by SIGTERM, cleanly (not killed)
    assert gone(pid)
    assert _refused(port)
    assert log is not None and not log.parent.exists()


def test_a_fixed_port_is_served_and_a_taken_one_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(TargetError, match="exited during start-up") as info:
            ProviderServer(port=port).__enter__()
        assert "cannot listen" in str(info.value)
    # the same port, now free, is served
    with ProviderServer(port=port) as ps:
        assert ps.port == port
        assert ps.base_url == f"http://127.0.0.1:{port}/api/v1"
        ps.provider.plan(Reply("fixed"))
        r = httpx.post(ps.base_url + CHAT, json=ASK, trust_env=False)
        assert r.json()["choices"][0]["message"]["content"] == "fixed"
    assert _refused(port)


def test_the_journal_replays_what_the_server_holds(tmp_path: Path) -> None:
    """Commands and calls interleaved: the harness's side works out the server's planned
    answers and a step's calls from the two files alone; a half-written line waits."""
    from harness.provider import journal

    journal.create(tmp_path)
    engine, server, client = (ScriptedProvider(), journal.ServerJournal(tmp_path),
                              journal.ClientJournal(tmp_path))
    body = json.dumps({**ASK, "model": "b/model"}).encode()

    def call() -> None:  # what the provider endpoint does with a call
        server.apply(engine)
        engine.handle("POST", "/api/v1" + CHAT, {}, body)
        server.record(engine.calls[-1])

    try:
        client.write({"op": "reset"})
        client.write({"op": "begin", "step": 0, "plans": [
            wire.plan_to_json(Reply("first"), None), wire.plan_to_json(Reply("for b"), "b/model")]})
        call()  # takes "for b": its model's queue comes first
        client.write({"op": "plan", "plan": wire.plan_to_json(ErrorAnswer(500), None)})
        assert client.pending() == [(None, Reply("first")), (None, ErrorAnswer(500))]
        calls, left = client.end(0)
        assert [c.answer for c in calls] == ["200 reply 'for b'"] and calls[0].step == 0
        assert left == [(None, Reply("first")), (None, ErrorAnswer(500))]
        assert client.pending() == [] and client.step is None
        with (tmp_path / journal.COMMANDS).open("ab") as raw:  # a line half written ...
            raw.write(b'{"op": "step", ')
            server.apply(engine)
            assert engine.step is None and engine.pending() == []  # ... is not applied
            raw.write(b'"step": 7}\n')
        server.apply(engine)
        assert engine.step == 7
        call()
        assert [c.step for c in client.calls()] == [0, 7] == [c.step for c in engine.calls]
        client.write({"op": "reset"})
        assert client.calls() == [] and client.calls_in_step(7) == []
    finally:
        server.close()
        client.close()
