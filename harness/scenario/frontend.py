"""The simulated chat front end: a correct client, as the seed's app works.

It keeps the conversation as the user sees it (failed messages included),
makes ids ``msg_<ms>_<rand>`` and timestamps from a deterministic clock, pairs
an answer with the ``request_id`` the backend returned, and records every
sync it made so that checks can replay them.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from harness.contract.oracle import format_ts


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): ``copy.deepcopy`` without its
    memo, several times faster on the history a chat step sends."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value

_ALPHABET = string.ascii_lowercase + string.digits


class Clock:
    """Deterministic scenario time: starts at ``start``, moves ``tick`` per event."""

    def __init__(self, start: datetime, tick: timedelta = timedelta(milliseconds=1500)) -> None:
        self.now = start
        self.tick = tick

    def next(self) -> datetime:
        self.now = self.now + self.tick
        return self.now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (a step's ``at:``); later events tick on from there."""
        self.now = when


@dataclass
class Sync:
    """One ``POST /api/chat/messages`` the client made."""

    step: int | None
    actor: str
    body: dict[str, Any]
    status: int

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body.get("messages"), list):
            return [m for m in self.body["messages"] if isinstance(m, dict)]
        if isinstance(self.body.get("message"), dict):
            return [self.body["message"]]
        return []


@dataclass
class Chat:
    """One ``POST /api/chat`` (or stream) and what came of it."""

    step: int
    actor: str
    body: dict[str, Any]
    data: dict[str, Any] | None  # the answer's data (or final metadata); None: it failed
    sent_id: str | None  # the user message the client sent (None for raw steps)
    assistant_id: str | None = None


@dataclass
class Turn:
    """One user turn as the client lived it, whatever the protocol (for the invariants)."""

    step: int
    actor: str
    message_id: str  # the user message's id (the same again when resent)
    text: str
    model: str
    status: int  # the HTTP status (0: no answer)
    ok: bool  # the client got a complete answer (no error part, no error status)
    answer: str = ""  # the answer's text as the client received it
    answer_id: str | None = None  # the assistant message's id, as the backend announced it
    error: str = ""  # why it failed, as the client saw it
    resent: bool = False  # the same message id was sent before (a retry)
    owner: str = ""  # the actor who owns the chat (the first to send into it)
    part_types: tuple[str, ...] = ()  # the kinds of stream parts received, in order


@dataclass
class ChatClient:
    session_id: str
    clock: Clock
    rng: random.Random
    send_current_message_id: bool = True
    history: list[dict[str, Any]] = field(default_factory=list)
    step_of: dict[str, int] = field(default_factory=dict)
    syncs: list[Sync] = field(default_factory=list)
    chats: list[Chat] = field(default_factory=list)
    # the last batch the client stored, or held back (a chat step's ``sync: false``,
    # status 0): what a ``resync`` posts
    last_batch: Sync | None = None
    turns: list[Turn] = field(default_factory=list)  # every user turn (ai-sdk and others)
    reported: set[str] = field(default_factory=set)  # invariant failures said once already

    def new_id(self, ts: datetime) -> str:
        ms = int(ts.timestamp() * 1000)
        return f"msg_{ms}_{''.join(self.rng.choice(_ALPHABET) for _ in range(9))}"

    def user_message(self, text: str, model: str, step: int, *, tick: bool = True
                     ) -> dict[str, Any]:
        ts = self.clock.next() if tick else self.clock.now
        msg = {
            "id": self.new_id(ts),
            "content": text,
            "role": "user",
            "timestamp": format_ts(ts),
            "originalModel": model,
        }
        self.history.append(msg)
        self.step_of[msg["id"]] = step
        return msg

    def chat_body(self, msg: dict[str, Any], model: str, *, current_id: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": msg["content"],
            "messages": _copy(self.history),
            "model": model,
            "sessionId": self.session_id,
        }
        if current_id:
            body["current_message_id"] = msg["id"]
        return body

    def find_user(self, message_id: Any) -> dict[str, Any] | None:
        for m in self.history:
            if m["role"] == "user" and m["id"] == message_id:
                return m
        return None

    def on_success(self, data: dict[str, Any], step: int, *, clear_error: bool = False
                   ) -> tuple[dict[str, Any], list[Any]]:
        """Pair the answer with ``request_id`` as the seed's client does.

        Returns the assistant message and the batch to sync: the user message
        that ``request_id`` names (with its prompt tokens) and the answer.
        """
        raw_usage = data.get("usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        request_id = data.get("request_id")
        ts = self.clock.next()
        assistant = {
            "id": self.new_id(ts),
            "content": data.get("response", ""),
            "role": "assistant",
            "timestamp": format_ts(ts),
            "elapsed_ms": _int(data.get("elapsed_ms")),
            "total_tokens": _int(usage.get("total_tokens")),
            "input_tokens": _int(usage.get("prompt_tokens")),
            "output_tokens": _int(usage.get("completion_tokens")),
            "user_message_id": request_id,
            "model": data.get("model"),
            "contentType": data.get("contentType")
            if data.get("contentType") in ("text", "markdown") else "markdown",
            "completion_id": data.get("id"),
        }
        self.history.append(assistant)
        self.step_of[assistant["id"]] = step
        paired = self.find_user(request_id)
        batch: list[Any] = []
        if paired is not None:
            paired["input_tokens"] = _int(usage.get("prompt_tokens"))
            if clear_error:  # a successful retry under the same id (C-MSG-5)
                paired["error"] = False
                paired.pop("error_message", None)
            batch.append(_copy(paired))
        batch.append(_copy(assistant))
        return assistant, batch

    def on_failure(self, msg: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Flag the sent message as failed, as the user sees it."""
        msg["error"] = True
        msg["input_tokens"] = 0
        error = body.get("error")
        msg["error_message"] = error if isinstance(error, str) and error else "Message failed"
        return _copy(msg)

    def describe(self, message_id: Any) -> str:
        """How a message id reads in a report: step, role, text, failed or not."""
        for m in self.history:
            if m["id"] == message_id:
                text = m["content"] if len(m["content"]) <= 40 else m["content"][:37] + "..."
                failed = "failed " if m.get("error") else ""
                step = self.step_of.get(m["id"])
                where = f" of step {step + 1}" if step is not None else ""
                return f"the {failed}{m['role']} message{where} {text!r}"
        return "no message the client holds"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
