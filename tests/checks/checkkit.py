"""A hand-built backend for the checks' own tests: in memory, no PostgreSQL, not the reference.

Each check is proven both ways over runs of this backend: a test gives it the
wrong answer a rule forbids (the check must flag it, with its message and
clause) or a correct answer that differs from the reference's (extra fields,
other key order, other ids and texts: the check must let it pass).

:class:`Backend` answers the contract's routes from dictionaries, correctly
for what the checks read (stores are upserts, reads are in conversation
order). A test replaces one route's answer with a hook. The scripted provider
engine plays the provider; a chat hook reaches it with ``call(body)``, which
makes one provider call and returns what the provider sent.

Imported by name from the tests next to it (pytest puts this folder on
``sys.path``; the folder is not a package).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness.contract import oracle
from harness.provider.engine import Outgoing, ScriptedProvider
from harness.result import Exchange, Failure, ScenarioResult
from harness.runner.run import RunContext, ScenarioRun
from harness.scenario.load import Scenario, load_file

NOW = "2025-08-12T14:34:08.861Z"
SECRET = "checkkit-secret-checkkit-secret-32b"
TIMEOUT_MS = 1000
JSON_HEADERS = {"content-type": "application/json"}

# A chat hook: (request body, streaming?, call) -> the answer. ``call(body)``
# makes one provider call with the context C-CHAT-3 asks for; keywords send
# something else: ``model=``, ``messages=`` or extra fields of the request.
Call = Callable[..., "Sent"]
ChatHook = Callable[[dict[str, Any], bool, Call], httpx.Response]


@dataclass
class Sent:
    """What the provider sent for one call."""

    status: int
    headers: dict[str, str]
    body: bytes  # a plain answer's body
    delay_ms: float  # before the headers
    events: list[tuple[float, Any]]  # a stream's events: (ms waited before it, data or "[DONE]")
    cut: bool  # the connection dropped at the end


def _events(chunks: tuple[tuple[float, bytes], ...]) -> list[tuple[float, Any]]:
    out: list[tuple[float, Any]] = []
    for wait, data in chunks:
        for line in data.decode().splitlines():
            if line.startswith("data: "):
                payload = line[6:]
                out.append((wait * 1000, payload if payload == "[DONE]" else json.loads(payload)))
    return out


def scenario(tmp_path: Path, text: str, name: str = "case") -> Scenario:
    """A scenario from YAML text (dedented), loaded as a file would be."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    (loaded,) = load_file(path)
    return loaded


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers={**JSON_HEADERS, **(headers or {})},
                          content=json.dumps(body).encode())


def error(status: int, code: str, text: str = "It failed", **extra: Any) -> httpx.Response:
    """An error answer in the C-ERR-1 envelope; ``retryAfter`` also goes in the header."""
    headers = {"retry-after": str(extra["retryAfter"])} if "retryAfter" in extra else {}
    return response(status, {"error": text, "code": code, "timestamp": NOW, **extra}, headers)


def chat_data(body: dict[str, Any], text: str, **extra: Any) -> dict[str, Any]:
    """C-CHAT-4's ``data`` for ``body``: request_id as the oracle names it."""
    return {
        "response": text,
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "request_id": oracle.expected_request_id(body), "timestamp": NOW, "elapsed_ms": 5,
        "contentType": "text", "id": None, "model": body.get("model"), **extra,
    }


def success(body: dict[str, Any], text: str, **extra: Any) -> httpx.Response:
    return response(200, {"data": chat_data(body, text, **extra), "timestamp": NOW})


def stream(text: str, last: dict[str, Any]) -> httpx.Response:
    """A 200 stream: the text, a newline, then the final line (C-STREAM-1)."""
    return httpx.Response(200, headers={"content-type": "text/plain; charset=utf-8"},
                          content=(text + "\n" + json.dumps(last)).encode())


def stream_ok(body: dict[str, Any], text: str, **extra: Any) -> httpx.Response:
    return stream(text, {"__FINAL_METADATA__": chat_data(body, text, **extra)})


def stream_failed(text: str, code: str, message: str = "the provider failed"
                  ) -> httpx.Response:
    return stream(text, {"__STREAM_ERROR__": {"code": code, "error": message}})


@dataclass
class Backend:
    """An in-memory backend: correct for what the checks read, one hook per route."""

    engine: ScriptedProvider = field(default_factory=ScriptedProvider)
    chat: ChatHook | None = None
    store: Callable[[dict[str, Any], Backend], httpx.Response | None] | None = None
    read: Callable[[str, Backend], httpx.Response | None] | None = None
    # every answer, last: it may change or replace it (drop a header, ...)
    finish: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> stored item
    owners: dict[str, str] = field(default_factory=dict)  # session -> its user (the JWT sub)
    requests: list[httpx.Request] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- the provider, for hooks ------------------------------------------------
    def call(self, body: dict[str, Any], *, stream: bool = False, model: Any = None,
             messages: Any = None, **fields: Any) -> Sent:
        """One provider call for ``body``: what C-CHAT-3 asks, unless told otherwise."""
        request = {"model": body.get("model") if model is None else model,
                   "messages": oracle.expected_context(body) if messages is None else messages,
                   **fields}
        if stream:
            request["stream"] = True
        out: Outgoing = self.engine.handle(
            "POST", "/api/v1/chat/completions", {"authorization": "Bearer k"},
            json.dumps(request).encode())
        chunks = out.chunks or ()
        return Sent(out.status, out.headers, out.body, out.delay_s * 1000,
                    _events(chunks) if stream else [], out.cut)

    def models(self) -> int:
        """``GET /models`` of the provider (a backend may look before it chats): the status."""
        return self.engine.handle("GET", "/api/v1/models", {"authorization": "Bearer k"},
                                  b"").status

    # -- the routes ---------------------------------------------------------------
    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self._route(request)
        rid = request.headers.get("x-request-id") or f"req-{next(self._ids)}"
        answer.headers["x-request-id"] = rid
        return self.finish(request, answer) if self.finish else answer

    def _route(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        body: Any = json.loads(request.content) if request.content else {}
        user = _user_of(request)
        if path in ("/api/chat", "/api/chat/stream") and method == "POST":
            streaming = path.endswith("stream")
            hook = self.chat or contract_chat
            return hook(body, streaming,
                        lambda b, **kw: self.call(b, stream=streaming, **kw))
        if path == "/api/chat/messages" and method == "POST":
            custom = self.store(body, self) if self.store else None
            if self.owners.setdefault(body.get("sessionId"), user) != user:
                return error(404, "not_found", "no such session")  # another user's (C-AUTH-2)
            return custom if custom is not None else self.stored(body)
        if path == "/api/chat/messages" and method == "GET":
            session = request.url.params.get("session_id", "")
            if self.owners.get(session, user) != user:
                return error(404, "not_found", "no such session")  # another user's (C-AUTH-2)
            custom = self.read(session, self) if self.read else None
            return custom if custom is not None else self.conversation(session)
        return error(404, "not_found", "no such route")

    def stored(self, body: dict[str, Any]) -> httpx.Response:
        """Upsert the batch (C-MSG-2), answer 201 with the items (C-MSG-8)."""
        batch = body.get("messages") or [body.get("message")]
        if not all(isinstance(m, dict) for m in batch):
            return error(400, "bad_request", "send 'message' or 1 to 100 'messages'")
        items = []
        for m in batch:
            row = self.rows.get(m["id"])
            seq = row["_seq"] if row else next(self._seq)
            self.rows[m["id"]] = {**item_of(m), "_session": body["sessionId"], "_seq": seq}
            items.append(item_of(m))
        return response(201, {"messages": items, "count": len(items), "success": True})

    def conversation(self, session: str) -> httpx.Response:
        """The session's items by timestamp, then first storage (C-MSG-9)."""
        mine = [r for r in self.rows.values() if r["_session"] == session]
        if not mine:
            return error(404, "not_found", "no such session")
        mine.sort(key=lambda r: (oracle.parse_ts(r["timestamp"]), r["_seq"]))
        items = [{k: v for k, v in r.items() if not k.startswith("_")} for r in mine]
        return response(200, {"messages": items, "count": len(items)})


def _user_of(request: httpx.Request) -> str | None:
    """The ``sub`` of the request's token, if it is one of ours (C-AUTH-1, leniently)."""
    import jwt

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return str(claims.get("sub")) if scheme == "Bearer" else None


def item_of(m: dict[str, Any]) -> dict[str, Any]:
    """A message as C-MSG-9 reads it back: defaults for what was not sent."""
    stamp = oracle.parse_ts(m.get("timestamp")) or datetime.now(UTC)
    item = {
        "id": m["id"], "role": m["role"], "content": m["content"],
        "input_tokens": m.get("input_tokens") or 0,
        "output_tokens": m.get("output_tokens") or 0,
        "total_tokens": m.get("total_tokens") or 0,
        "user_message_id": m.get("user_message_id"),
        "contentType": m.get("contentType") or "text", "elapsed_ms": m.get("elapsed_ms") or 0,
        "completion_id": m.get("completion_id"), "timestamp": oracle.format_ts(stamp),
        "error": bool(m.get("error")),
        "error_message": (m.get("error_message") or "Message failed") if m.get("error")
        else None,
    }
    item["originalModel" if m["role"] == "user" else "model"] = (
        m.get("originalModel") if m["role"] == "user" else m.get("model"))
    return item


COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def contract_chat(body: dict[str, Any], streaming: bool, call: Call, **extra: Any
                  ) -> httpx.Response:
    """The provider's answers as the contract maps them (C-CHAT-3/4/5, C-STREAM-1..3).

    Written from the contract for these tests, not from the reference; ``extra``
    fields go into every success's data (benign differences).
    """
    for _ in range(1 + oracle.MAX_RETRIES):
        sent = call(body)
        if sent.delay_ms >= TIMEOUT_MS:
            return error(504, "gateway_timeout", "the model took too long")
        if sent.status != 200:
            if sent.status >= 500 and sent.status != 503:
                continue
            return provider_error(sent.status, sent.headers.get("retry-after"))
        if sent.cut and not sent.events:
            continue  # the connection dropped: retried
        answer = (_streamed(body, sent, extra) if streaming
                  else _plain(body, sent, extra))
        if answer is not None:
            return answer
    return error(502, "bad_gateway", "the provider kept failing")


def provider_error(status: int, retry_after: str | None = None) -> httpx.Response:
    code_status, code = oracle.map_provider_status(status)
    if code_status in (429, 503):
        seconds = oracle.retry_after_seconds(retry_after)
        tips = {"suggestions": ["Try another model"]} if code_status == 429 else {}
        return error(code_status, code, "upstream says wait", retryAfter=seconds, **tips)
    return error(code_status, code, f"upstream answered {status}")


def _plain(body: dict[str, Any], sent: Sent, extra: dict[str, Any]) -> httpx.Response:
    text = oracle.raw_completion_text(sent.body.decode("utf-8", "replace"))
    if text is None:
        return error(502, "bad_gateway", "the provider's answer is unusable")
    doc = json.loads(sent.body)
    usage = {k: (doc.get("usage") or {}).get(k, 0) for k in COUNTS}
    return success(body, text, **{"usage": usage, "id": doc.get("id"),
                                  "model": doc.get("model") or body.get("model"), **extra})


def _streamed(body: dict[str, Any], sent: Sent, extra: dict[str, Any]
              ) -> httpx.Response | None:
    """None: cut before the first token (retried like a dropped connection)."""
    text, started, finished = "", False, False
    data: dict[str, Any] = {"usage": dict.fromkeys(COUNTS, 0), "model": body.get("model")}
    for wait, event in sent.events:
        if wait >= TIMEOUT_MS:
            return (stream_failed(text, "gateway_timeout") if started
                    else error(504, "gateway_timeout", "no first token in time"))
        if event == "[DONE]":
            break
        if isinstance(event.get("error"), dict):
            if not started:
                return provider_error(int(event["error"].get("code", 502)))
            return stream_failed(text, oracle.map_provider_status(
                int(event["error"].get("code", 502)))[1])
        for choice in event.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content") or ""
            started, text = started or bool(piece), text + piece
            finished = finished or choice.get("finish_reason") not in (None, "error")
        if isinstance(event.get("usage"), dict):
            data["usage"] = {k: event["usage"].get(k, 0) for k in COUNTS}
        data["model"] = event.get("model") or data["model"]
        data["id"] = event.get("id")
    if not finished:
        return stream_failed(text, "bad_gateway") if started else None
    if not text.strip():
        return error(502, "bad_gateway", "an empty answer")
    return stream_ok(body, text, **{**data, **extra})


# -- what the contract leaves free, for the "correct but not the reference's" cases --


def loosened(doc: Any) -> Any:
    """``doc`` as another correct backend may write it: keys in reverse order and,
    in every object, a field no clause lists."""
    if isinstance(doc, list):
        return [loosened(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    out = {k: loosened(v) for k, v in reversed(list(doc.items()))}
    return {"x_extra": "free", **out}


def loose(answer: httpx.Response) -> httpx.Response:
    """A JSON answer loosened (see :func:`loosened`), with an extra header."""
    return httpx.Response(answer.status_code,
                          headers={**JSON_HEADERS, "server": "checkkit/1",
                                   **{k: v for k, v in answer.headers.items()
                                      if k.lower() == "retry-after"}},
                          content=json.dumps(loosened(answer.json())).encode())


def loose_store(body: dict[str, Any], backend: Backend) -> httpx.Response:
    """A store hook: the contract's 201, loosened."""
    return loose(backend.stored(body))


def loose_read(session: str, backend: Backend) -> httpx.Response:
    """A read hook: the contract's conversation, loosened."""
    return loose(backend.conversation(session))


def with_items(change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
               ) -> Callable[[str, Backend], httpx.Response]:
    """A read hook that answers the stored items after ``change`` (reorder, drop, alter)."""
    def read(session: str, backend: Backend) -> httpx.Response:
        answer = backend.conversation(session)
        if answer.status_code != 200:
            return answer
        items = change([dict(i) for i in answer.json()["messages"]])
        return response(200, {"messages": items, "count": len(items)})
    return read


# -- a database for the DB-reading checks, without PostgreSQL -----------------------

Rows = list[dict[str, Any]]


@dataclass
class FakeDb:
    """The ``query(sql, params)`` the checks call, over the backend's rows.

    ``chat_messages`` holds one row per stored item, as the contract's schema
    would (``seq`` the order of first storage); ``change`` alters that table
    before each query answers (a hidden row, another content, another seq).
    Only the two queries the checks make are understood; the columns answered
    are those the query selects.
    """

    backend: Backend
    change: Callable[[Rows], Rows] | None = None
    queries: list[tuple[str, Any]] = field(default_factory=list)

    def table(self) -> Rows:
        rows = [{
            "id": mid, "session_id": r["_session"], "seq": r["_seq"], "role": r["role"],
            "content": r["content"], "user_message_id": r["user_message_id"],
            "message_timestamp": oracle.parse_ts(r["timestamp"]),
            "error_message": r["error_message"],
        } for mid, r in self.backend.rows.items()]
        return self.change([dict(r) for r in rows]) if self.change else rows

    def query(self, sql: str, params: Any = None) -> Rows:
        self.queries.append((sql, params))
        columns = [c.strip() for c in sql.split("SELECT ", 1)[1].split(" FROM", 1)[0].split(",")]
        table = self.table()
        if "WHERE id = ANY(%s)" in sql:
            found = [r for r in table if r["id"] in params[0]]
        elif "WHERE session_id = %s ORDER BY message_timestamp, seq" in sql:
            found = sorted((r for r in table if r["session_id"] == params[0]),
                           key=lambda r: (r["message_timestamp"], r["seq"]))
        else:
            raise AssertionError(f"FakeDb does not know this query: {sql}")
        return [{c: r[c] for c in columns} for r in found]


def run(scenario: Scenario, backend: Backend | None = None, db: Any = None, *,
        strict_fields: bool = False) -> ScenarioResult:
    """Run ``scenario`` against ``backend`` (a correct one if None); its result.

    ``db`` is what the checks query below the API (a :class:`FakeDb`); None: no
    database, as with ``--target-url`` alone.
    """
    backend = backend or Backend()

    async def go() -> ScenarioResult:
        transport = httpx.MockTransport(backend.handle)
        async with httpx.AsyncClient(transport=transport, base_url="http://backend.test") as c:
            ctx = RunContext(client=c, provider=backend.engine, db=db, jwt_secret=SECRET,
                             target="checkkit", provider_timeout_ms=TIMEOUT_MS,
                             strict_fields=strict_fields)
            return await ScenarioRun(scenario, ctx).execute()

    return _recorded(asyncio.run(go()))


# the results of the test running now (tests/checks/conftest.py pins their failures)
RECORDED: list[ScenarioResult] | None = None


def _recorded(result: ScenarioResult) -> ScenarioResult:
    if RECORDED is not None:
        RECORDED.append(result)
    return result


def judge(check: Callable[[ScenarioRun, Any], Any], scenario: Scenario,
          exchanges: list[Exchange], earlier: list[Failure] | None = None) -> ScenarioResult:
    """One check function alone over hand-made answers: for a rule no step can reach
    without another check reporting first. ``earlier``: failures already recorded."""
    from harness.checks.conversation import Snapshot

    async def go() -> ScenarioResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(Backend().handle)) as c:
            ctx = RunContext(client=c, provider=ScriptedProvider(), db=None, jwt_secret=SECRET,
                             target="checkkit", provider_timeout_ms=TIMEOUT_MS)
            one = ScenarioRun(scenario, ctx)
            one.result.exchanges.extend(exchanges)
            one.result.failures.extend(earlier or [])
            await check(one, Snapshot())
            return one.result

    return _recorded(asyncio.run(go()))


def exchange(status: int, body: Any, *, step: int | None = 0, method: str = "POST",
             path: str = "/api/chat/messages", purpose: str = "sync",
             expected: int | str | list[int] | None = None) -> Exchange:
    """A hand-made answer, as the runner records it."""
    return Exchange(step=step, purpose=purpose, actor="alice", method=method, path=path,
                    request_body=None, status=status, response_body=body,
                    headers={"x-request-id": "r-1", "content-type": "application/json"},
                    elapsed_ms=1.0, expected=expected)


def failures(result: ScenarioResult, check: str) -> list[Failure]:
    """The failures of one check."""
    return [f for f in result.failures if f.check == check]


def listed(result: ScenarioResult) -> list[tuple[str, str | None, int | None, str]]:
    """Every failure as (check, clause, step, message), for assertion messages."""
    return [(f.check, f.clause, f.step, f.message) for f in result.failures]


ANY_STEP = -1


def flagged(result: ScenarioResult, check: str, clause: str, says: str,
            step: int | None = ANY_STEP) -> Failure:
    """The failure of ``check`` under ``clause`` whose message holds ``says``, at
    ``step`` (0-based; None: after the steps; ANY_STEP: wherever)."""
    for f in failures(result, check):
        if f.clause == clause and says in f.message and (step == ANY_STEP or f.step == step):
            return f
    where = "" if step == ANY_STEP else f" at step {step}"
    raise AssertionError(f"no {check!r} failure under {clause} saying {says!r}{where}; "
                         f"the failures: {listed(result)}")


def clean(result: ScenarioResult) -> None:
    """No check failed (and the scenario ran to its end)."""
    assert result.failures == [], listed(result)
    assert result.skipped is None, result.skipped
