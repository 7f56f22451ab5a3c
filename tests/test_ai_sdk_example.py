"""examples/ai-sdk as a real subprocess (next start) against the embedded PostgreSQL and
the mock provider over HTTP: one turn end to end, a failed turn resent, one switchable bug.

Needs the example built (``npm --prefix examples/ai-sdk ci && npm --prefix examples/ai-sdk
run build``); skipped without the build, failed instead where CHAT_HARNESS_REQUIRE names
``node`` (CI builds it).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs import ROOT, unavailable

from harness.db import Database
from harness.processes import Child, free_port
from harness.provider import ErrorAnswer, Reply
from harness.provider.remote import ProviderServer

APP = ROOT / "examples" / "ai-sdk"
MESSAGES_SQL = ('SELECT id, role, parts, "createdAt" FROM "Message_v2" '
                'WHERE "chatId" = %(chat_id)s ORDER BY "createdAt", id')
CHAT_MODEL, TITLE_MODEL = "chat-model", "title-model"


def _built() -> None:
    if shutil.which("node") is None:
        unavailable("node", "no node on PATH")
    if not (APP / ".next" / "BUILD_ID").is_file():
        unavailable("node", "examples/ai-sdk is not built (npm --prefix examples/ai-sdk ci "
                    "&& npm --prefix examples/ai-sdk run build)")


class App:
    """One started examples/ai-sdk, its provider, and a client that logs in as a guest."""

    def __init__(self, base: str, provider: ProviderServer, db: Database) -> None:
        self.base = base
        self.provider = provider
        self.db = db
        self.step = 0

    def guest(self) -> httpx.Client:
        client = httpx.Client(base_url=self.base, timeout=30, trust_env=False)
        answer = client.get("/api/auth/guest")
        assert answer.status_code == 307, answer.text
        assert "chat_session" in client.cookies
        return client

    def turn(self, client: httpx.Client, chat_id: str, message_id: str, text: str,
             *plans: tuple[Any, str | None]) -> tuple[httpx.Response, list[Any], list[Any]]:
        """POST one turn with ``plans`` for the provider: the answer, its SSE parts
        (``"[DONE]"`` as is) and the provider calls it made."""
        self.step += 1
        self.provider.provider.begin_step(self.step, plans)
        body = {"id": chat_id, "selectedChatModel": CHAT_MODEL,
                "selectedVisibilityType": "private",
                "message": {"id": message_id, "role": "user",
                            "parts": [{"type": "text", "text": text}]}}
        answer = client.post("/api/chat", json=body)
        calls = self.provider.provider.end_step(self.step).calls
        parts = [line[len("data: "):] for line in answer.text.splitlines()
                 if line.startswith("data: ")]
        return answer, [p if p == "[DONE]" else json.loads(p) for p in parts], calls

    def stored(self, chat_id: str) -> list[tuple[str, str, str]]:
        """(id, role, text) of the chat's stored messages, as a profile reads them."""
        rows = self.db.query(MESSAGES_SQL, {"chat_id": chat_id})
        return [(str(r["id"]), r["role"],
                 "".join(p.get("text", "") for p in r["parts"] if p.get("type") == "text"))
                for r in rows]


@pytest.fixture
def start_app(database: Database, tmp_path: Path) -> Iterator[Any]:
    _built()
    started: list[Child] = []
    with ProviderServer() as provider:

        def start(mutant: str = "") -> App:
            port = free_port()
            env = {**os.environ, "PORT": str(port), "DATABASE_URL": database.tcp_url or "",
                   "OPENROUTER_BASE_URL": provider.base_url, "OPENROUTER_API_KEY": "test-key",
                   "JWT_SECRET": "test-secret", "PROVIDER_TIMEOUT_MS": "5000",
                   "CHAT_MUTANT": mutant, "NEXT_TELEMETRY_DISABLED": "1"}
            child = Child(["node", "node_modules/next/dist/bin/next", "start", "-p", str(port)],
                          log=tmp_path / f"app-{len(started)}.log", what="examples/ai-sdk",
                          env=env, cwd=APP)
            started.append(child)
            base = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                try:
                    return httpx.get(base + "/api/health", timeout=2,
                                     trust_env=False).status_code == 200
                except httpx.HTTPError:
                    return False

            child.wait_ready(ready, timeout_s=60)
            return App(base, provider, database)

        try:
            yield start
        finally:
            for child in started:
                child.stop()


def test_one_turn_streams_the_ui_message_stream_and_stores_the_conversation(start_app):
    app = start_app()
    client = app.guest()
    chat_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    answer, parts, calls = app.turn(client, chat_id, message_id, "Hello there",
                                    (Reply(content="Hi! How can I help?"), CHAT_MODEL),
                                    (Reply(content="Greeting"), TITLE_MODEL))
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert answer.headers["content-type"].startswith("text/event-stream")
    kinds = [p["type"] for p in parts if p != "[DONE]"]
    assert parts[-1] == "[DONE]"
    assert [k for k in kinds if k not in ("text-delta", "data-chat-title")] == [
        "start", "start-step", "text-start", "text-end", "finish-step", "finish"]
    assert {"type": "data-chat-title", "data": "Greeting", "transient": True} in parts
    assert "".join(p["delta"] for p in parts if p != "[DONE]" and p["type"] == "text-delta") \
        == "Hi! How can I help?"
    assistant_id = parts[0]["messageId"]
    assert app.stored(chat_id) == [(message_id, "user", "Hello there"),
                                   (assistant_id, "assistant", "Hi! How can I help?")]
    by_model = {c.body["model"]: c.body for c in calls}
    assert by_model[CHAT_MODEL]["stream"] is True
    assert by_model[CHAT_MODEL]["stream_options"] == {"include_usage": True}
    assert not by_model[TITLE_MODEL].get("stream")
    history = client.get("/api/history").json()
    assert [(c["id"], c["title"]) for c in history["chats"]] == [(chat_id, "Greeting")]
    # without a login: 401; another user: 403 and nothing stored
    assert httpx.post(app.base + "/api/chat", json={}, trust_env=False).status_code == 401
    other, _, other_calls = app.turn(app.guest(), chat_id, str(uuid.uuid4()), "mine?",
                                     (Reply(content="leak"), CHAT_MODEL))
    assert (other.status_code, other.json()["code"]) == (403, "forbidden:chat")
    assert other_calls == [] and len(app.stored(chat_id)) == 2


@pytest.mark.parametrize("mutant", ["", "duplicate-key-resend"])
def test_a_failed_turn_resent_is_answered_once(start_app, mutant):
    app = start_app(mutant)
    client = app.guest()
    chat_id, first, again = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    app.turn(client, chat_id, first, "one", (Reply(content="A1"), CHAT_MODEL),
             (Reply(content="T"), TITLE_MODEL))
    failed, parts, _ = app.turn(client, chat_id, again, "two", (ErrorAnswer(500), CHAT_MODEL))
    assert failed.status_code == 200
    assert [p["type"] for p in parts if p != "[DONE]"] == ["start", "error"]
    assert [row[1:] for row in app.stored(chat_id)] == [
        ("user", "one"), ("assistant", "A1"), ("user", "two")]  # no empty assistant row
    resent, parts, calls = app.turn(client, chat_id, again, "two",
                                    (Reply(content="A2"), CHAT_MODEL))
    if mutant == "duplicate-key-resend":  # the bug: the primary key refuses the resend
        assert resent.status_code == 400 and calls == []
        return
    assert resent.status_code == 200, resent.text
    assert [row[1:] for row in app.stored(chat_id)] == [
        ("user", "one"), ("assistant", "A1"), ("user", "two"), ("assistant", "A2")]
    sent = [(m["role"], m["content"]) for m in calls[0].body["messages"]]
    assert sent == [("system", sent[0][1]), ("user", "one"), ("assistant", "A1"), ("user", "two")]


def test_the_black_box_client_keeps_no_cookie_between_requests():
    """A cookie login per actor needs requests without the cookies earlier answers set:
    vercel/ai-chatbot's guest route answers a request that has a session with no new one."""
    from harness.targets.blackbox import no_cookies

    client = httpx.Client(cookies=no_cookies())
    client.cookies.extract_cookies(httpx.Response(
        307, headers={"set-cookie": "authjs.session-token=abc; Path=/; HttpOnly"},
        request=httpx.Request("GET", "http://127.0.0.1:3000/api/auth/guest")))
    assert dict(client.cookies) == {}
    sent = client.build_request("POST", "http://127.0.0.1:3000/api/chat",
                                headers={"cookie": "authjs.session-token=mine"})
    assert sent.headers["cookie"] == "authjs.session-token=mine"
