"""A hand-built AI SDK backend for the protocol's own tests: in memory, no Next.js, no Postgres.

It answers ``POST /api/chat`` with the AI SDK 5 UI message stream and keeps its
chats in dictionaries, like an AI SDK app (vercel/ai-chatbot, examples/ai-sdk)
does: the user message stored before the provider call, the assistant message
when the stream ends, a concurrent title request for a new chat. ``bugs``
switches on the wrong behaviours the invariants must catch; ``variant`` the
correct ones that differ from the example app (another stored part layout, an
error status instead of an error part, a system prompt, content as parts).

Imported by name from the tests next to it (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from harness.profile import Profile
from harness.provider.engine import ScriptedProvider
from harness.result import ScenarioResult
from harness.runner.run import RunContext, ScenarioRun
from harness.scenario.load import Scenario, load_file

SECRET = "aisdkkit-secret-aisdkkit-secret-32b"
SQL = ('SELECT id, role, parts, "createdAt" FROM "Message_v2" WHERE "chatId" = %(chat_id)s '
       'ORDER BY "createdAt", id')
BUGS = ("duplicate-key-resend", "empty-assistant-row", "title-in-context", "lost-user-message",
        "other-user-chat", "cut-stream-stored-as-done", "duplicate-context", "wrong-answer-id",
        "answer-of-other-turn", "unfinished-stream")
VARIANTS = ("step-start-parts", "error-status", "system-and-parts", "cookie-login",
            "title-first")


def scenario(tmp_path: Path, text: str, name: str = "case") -> Scenario:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    (loaded,) = load_file(path)
    return loaded


def sse(parts: list[dict[str, Any]]) -> bytes:
    return "".join(f"data: {json.dumps(p)}\n\n" for p in parts).encode() + b"data: [DONE]\n\n"


@dataclass
class AiSdkBackend:
    bugs: frozenset[str] = frozenset()
    variant: frozenset[str] = frozenset()
    engine: ScriptedProvider = field(default_factory=ScriptedProvider)
    chats: dict[str, str] = field(default_factory=dict)  # chat id -> owner
    rows: list[dict[str, Any]] = field(default_factory=list)  # "Message_v2"
    sessions: dict[str, str] = field(default_factory=dict)  # cookie -> user
    _clock: itertools.count[int] = field(default_factory=itertools.count)

    # -- the database, as the profile's SQL reads it ---------------------------------
    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        assert sql == SQL, sql
        mine = [r for r in self.rows if r["chatId"] == params["chat_id"]]
        return [{"id": r["id"], "role": r["role"], "parts": json.dumps(r["parts"]),
                 "createdAt": r["createdAt"]} for r in sorted(
                     mine, key=lambda r: (r["createdAt"], r["id"]))]

    def _store(self, chat: str, mid: str, role: str, parts: list[dict[str, Any]]) -> bool:
        if any(r["id"] == mid for r in self.rows):
            # the same message again: kept as it is (ON CONFLICT DO NOTHING), unless the
            # bug's plain INSERT fails on the primary key
            return "duplicate-key-resend" not in self.bugs
        self.rows.append({"id": mid, "chatId": chat, "role": role, "parts": parts,
                          "createdAt": next(self._clock)})
        return True

    # -- the routes ---------------------------------------------------------------------
    async def handle(self, request: httpx.Request) -> httpx.Response:
        user = self._user(request)
        path = request.url.path
        if path == "/api/auth/guest":
            cookie = f"guest-{len(self.sessions)}"
            self.sessions[cookie] = str(uuid.uuid4())
            return httpx.Response(307, headers={
                "set-cookie": f"session={cookie}; Path=/; HttpOnly; "
                "Expires=Thu, 01 Jan 2099 00:00:00 GMT", "location": "/"})
        if user is None:
            return httpx.Response(401, json={"code": "unauthorized:auth"})
        if path == "/api/history":
            return httpx.Response(200, json={"chats": [c for c, o in self.chats.items()
                                                       if o == user]})
        if path == "/api/chat" and request.method == "POST":
            return self._chat(json.loads(request.content), user)
        return httpx.Response(404, json={"code": "not_found"})

    def _user(self, request: httpx.Request) -> str | None:
        if "cookie-login" in self.variant:
            cookie = request.headers.get("cookie", "")
            name = cookie.split("session=", 1)[1].split(";")[0] if "session=" in cookie else ""
            return self.sessions.get(name)
        _, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            return str(jwt.decode(token, SECRET, algorithms=["HS256"])["sub"])
        except jwt.PyJWTError:
            return None

    def _chat(self, body: dict[str, Any], user: str) -> httpx.Response:
        chat, message = body.get("id"), body.get("message") or {}
        if not isinstance(chat, str) or not isinstance(message.get("id"), str):
            return httpx.Response(400, json={"code": "bad_request:api"})
        text = "".join(p.get("text", "") for p in message.get("parts") or [])
        new = chat not in self.chats
        if new:
            self.chats[chat] = user
        elif self.chats[chat] != user and "other-user-chat" not in self.bugs:
            return httpx.Response(403, json={"code": "forbidden:chat"})
        if new:  # the title request, beside the chat call
            self.engine.handle("POST", "/api/v1/chat/completions", {}, json.dumps({
                "model": "title-model", "messages": [
                    {"role": "system", "content": "Write a title"},
                    {"role": "user", "content": text}]}).encode())
        history = self._context(chat, message["id"])
        user_parts = [{"type": "text", "text": text}]
        if "lost-user-message" not in self.bugs and not self._store(
                chat, message["id"], "user", user_parts):
            return httpx.Response(400, json={"code": "bad_request:api",
                                             "message": "Something went wrong"})
        model = body.get("selectedChatModel")
        messages = [*history, self._provider_message("user", text)]
        if "system-and-parts" in self.variant:
            messages.insert(0, {"role": "system", "content": "You are a test assistant."})
        answer, failed, cut = self._call_provider(model, messages)
        if "lost-user-message" in self.bugs and not failed:
            self._store(chat, message["id"], "user", user_parts)
        if "answer-of-other-turn" in self.bugs and not failed and history:
            answer = history[-1]["content"] if isinstance(history[-1]["content"], str) \
                else answer
        mid = str(uuid.uuid4())
        parts: list[dict[str, Any]] = [{"type": "start", "messageId": mid},
                                       {"type": "start-step"}]
        title = [{"type": "data-chat-title", "data": "A chat title"}] if new else []
        if failed and not (cut and "cut-stream-stored-as-done" in self.bugs):
            if "empty-assistant-row" in self.bugs:
                self._store(chat, mid, "assistant", [])
            if "error-status" in self.variant:
                return httpx.Response(502, json={"code": "bad_gateway:chat",
                                                 "message": "the provider failed"})
            return self._stream([*parts, {"type": "error", "errorText": "provider failed"}])
        stored: list[dict[str, Any]] = [{"type": "text", "text": answer}]
        if "step-start-parts" in self.variant:
            stored.insert(0, {"type": "step-start"})
        if "title-in-context" in self.bugs:
            stored += title
        stored_id = str(uuid.uuid4()) if "wrong-answer-id" in self.bugs else mid
        self._store(chat, stored_id, "assistant", stored)
        first = title if "title-first" in self.variant else []  # before start (ai-chatbot)
        out = [*first, *parts, *(title if "step-start-parts" in self.variant else []),
               {"type": "text-start", "id": "t1"}]
        out += [{"type": "text-delta", "id": "t1", "delta": answer[i:i + 5]}
                for i in range(0, len(answer), 5)]
        if "unfinished-stream" in self.bugs:  # the connection ends after the text
            return self._stream(out, done=False)
        out += [{"type": "text-end", "id": "t1"}, {"type": "finish-step"},
                {"type": "finish", "finishReason": "stop"}]
        if not self.variant & {"step-start-parts", "title-first"}:
            out += title
        return self._stream(out)

    def _stream(self, parts: list[dict[str, Any]], *, done: bool = True) -> httpx.Response:
        body = sse(parts) if done else sse(parts)[:-len(b"data: [DONE]\n\n")]
        return httpx.Response(200, content=body, headers={
            "content-type": "text/event-stream", "x-vercel-ai-ui-message-stream": "v1"})

    def _provider_message(self, role: str, text: str) -> dict[str, Any]:
        if "system-and-parts" in self.variant and role == "user":
            return {"role": role, "content": [{"type": "text", "text": text}]}
        return {"role": role, "content": text}

    def _context(self, chat: str, current: str) -> list[dict[str, Any]]:
        out = []
        for row in sorted((r for r in self.rows if r["chatId"] == chat),
                          key=lambda r: r["createdAt"]):
            if row["id"] == current and "duplicate-context" not in self.bugs:
                continue
            text = "".join(p.get("text", "") for p in row["parts"] if p["type"] == "text")
            if row["role"] == "assistant" and not text and "empty-assistant-row" not in self.bugs:
                continue
            out.append(self._provider_message(row["role"], text))
            if any(p["type"].startswith("data-") for p in row["parts"]):
                out.append({"role": "assistant", "content": ""})  # the title part, as a turn
        return out

    def _call_provider(self, model: Any, messages: list[dict[str, Any]]
                       ) -> tuple[str, bool, bool]:
        """(text, failed, cut) after up to 3 attempts, as the AI SDK retries."""
        for _ in range(3):
            out = self.engine.handle("POST", "/api/v1/chat/completions", {}, json.dumps({
                "model": model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True},
                "tools": [{"type": "function", "function": {"name": "getWeather"}}],
                "tool_choice": "auto"}).encode())
            if out.status != 200:
                if out.status == 400:
                    return "", True, False
                continue
            text, error = "", False
            for _, data in out.chunks or ():
                for line in data.decode().splitlines():
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        error = error or "error" in chunk
                        for choice in chunk.get("choices") or []:
                            text += (choice.get("delta") or {}).get("content") or ""
            if out.cut or error:
                return text, True, bool(out.cut and text)
            return text, False, False
        return "", True, False


def run(scenario: Scenario, backend: AiSdkBackend | None = None, *,
        model: str | None = None) -> ScenarioResult:
    backend = backend or AiSdkBackend()
    login = "cookie" if "cookie-login" in backend.variant else "bearer"
    from harness.profile import Login

    profile = Profile(protocol="ai-sdk", login=Login(kind=login), messages_sql=SQL, model=model)

    async def go() -> ScenarioResult:
        transport = httpx.MockTransport(backend.handle)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as c:
            ctx = RunContext(client=c, provider=backend.engine, db=backend,  # type: ignore[arg-type]
                             jwt_secret=SECRET, target="aisdkkit", provider_timeout_ms=1000,
                             protocol="ai-sdk", profile=profile)
            return await ScenarioRun(scenario, ctx).execute()

    return asyncio.run(go())


def listed(result: ScenarioResult) -> list[tuple[str, str | None, int | None, str]]:
    return [(f.check, f.clause, f.step, f.message) for f in result.failures]


def clean(result: ScenarioResult) -> None:
    assert result.failures == [], listed(result)
    assert result.skipped is None, result.skipped


def flagged(result: ScenarioResult, check: str, says: str = "") -> None:
    assert any(f.check == check and says in f.message for f in result.failures), (
        f"no {check} failure saying {says!r}: {listed(result)}")
