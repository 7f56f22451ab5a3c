"""The pytest fixtures (harness/fixtures.py): a Python test drives the backend, the
scripted provider and the database with the machinery of the scenarios."""

from __future__ import annotations

from harness.fixtures import ChatBackend, ChatDatabase, ChatProvider

MODEL = "google/gemini-2.0-flash-exp:free"


def test_a_429_then_a_success_through_the_fixtures(
        chat_backend: ChatBackend, chat_provider: ChatProvider, chat_db: ChatDatabase) -> None:
    chat_provider.error(429, retry_after=60, message="rate-limited upstream")
    limited = chat_backend.chat("what is amazon bedrock?", model=MODEL)
    # C-CHAT-5: the provider's 429 with its Retry-After, passed on
    assert limited.status == 429
    body = limited.json()
    assert body["code"] == "too_many_requests"
    assert body["retryAfter"] == 60
    assert limited.answer.headers["retry-after"] == "60"
    assert isinstance(body["error"], str) and body["timestamp"]
    assert limited.sync.status_code == 201  # the failed message, flagged and synced alone

    chat_provider.reply("Amazon Bedrock is a managed service.")
    ok = chat_backend.chat("what is amazon bedrock?", model=MODEL)
    assert ok.status == 200
    data = ok.json()["data"]
    assert data["response"] == "Amazon Bedrock is a managed service."
    assert data["request_id"] == ok.message["id"]  # the resend, not the failed one
    assert ok.sync.status_code == 201
    # one provider call per attempt, 429s never retried (C-CHAT-3)
    assert len(chat_provider.calls) == 2 and not chat_provider.pending
    assert chat_provider.calls[1].messages[-1] == {"role": "user",
                                                   "content": "what is amazon bedrock?"}

    rows = chat_db.query(
        "SELECT id, role, error_message IS NOT NULL AS failed, user_message_id "
        "FROM chat_messages WHERE session_id = %s ORDER BY message_timestamp, seq",
        [ok.session_id])
    assert [(r["id"], r["role"], r["failed"]) for r in rows] == [
        (limited.message["id"], "user", True),
        (ok.message["id"], "user", False),
        (rows[2]["id"], "assistant", False)]
    assert rows[2]["user_message_id"] == ok.message["id"]
    (session,) = chat_db.query(
        "SELECT user_id, message_count FROM chat_sessions WHERE id = %s", [ok.session_id])
    assert str(session["user_id"]) == chat_backend.user_id("alice")
    assert session["message_count"] == 2  # stats over messages without error (C-MSG-7)


def test_each_test_starts_from_empty_tables_and_script(
        chat_backend: ChatBackend, chat_provider: ChatProvider, chat_db: ChatDatabase) -> None:
    assert chat_db.query("SELECT count(*) AS n FROM chat_messages") == [{"n": 0}]
    assert chat_provider.calls == [] and chat_provider.pending == []


def test_requests_carry_the_actors_token(chat_backend: ChatBackend) -> None:
    assert chat_backend.get("/api/chat/sessions", actor=None).status_code == 401
    mine = chat_backend.get("/api/chat/sessions")
    assert mine.status_code == 200
    assert chat_backend.user_id("alice") != chat_backend.user_id("bob")
