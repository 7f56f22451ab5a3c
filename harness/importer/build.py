"""Recorded requests → scenario steps: raw ``http`` steps, a provider script, expectations.

What the recording says is kept as it was sent (the bodies, byte for byte as
JSON); what it can only hint at is inferred from the contract:

* the provider script, from the chat answers: a recorded 429 was the
  provider's 429 (``retryAfter`` and ``Retry-After`` give ``retry_after``),
  a 200 was its reply (the answer's text, model, completion id and usage);
* expectations, from the recorded statuses; a recorded 5xx other than the
  provider's 502/503/504 is the bug being reported, so that step expects
  ``2xx`` (a correct backend passes, the buggy one fails as recorded);
* captures, for values the backend made up (not sent by the client before)
  that a later request sends back: a server-made session id, a completion
  id, a timestamp. Those later requests say ``${name}``, so the scenario
  works against a backend that makes different ones. Ids the client made
  itself stay literal: capturing the seed's ``request_id`` into the next
  sync's ``user_message_id`` would make a *correct* backend answer 422, since
  the old client never stored the message the right ``request_id`` names.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from harness.importer.recorded import Recorded
from harness.scenario import template

CHAT, STREAM, MESSAGES = "/api/chat", "/api/chat/stream", "/api/chat/messages"
SESSIONS, SESSION = "/api/chat/sessions", "/api/chat/session"
FINAL, STREAM_ERROR = "__FINAL_METADATA__", "__STREAM_ERROR__"
_PROVIDER_STATUS = {"too_many_requests": 429, "payment_required": 402,
                    "service_unavailable": 503, "bad_request": 400}
_RETRIES = 2  # C-CHAT-3: a 5xx other than 503 is retried twice
_ID_LIKE = re.compile(r"^(?=.*\d)[^\s]{6,200}$")
_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_.]*\}")
_PLACEHOLDER = "(imported: the recording holds no provider answer for this request)"


@dataclass
class Step:
    """One scenario step as plain data, and the comments that go above it."""

    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class Built:
    steps: list[Step]
    ignored: list[str]  # "GET /favicon.ico (not a chat path)"
    session: str | None = None  # the one session the requests name, as ${session_id}


def chat_path(path: str) -> str | None:
    """The contract route of ``path`` (a prefix such as ``/app`` is dropped), or None."""
    at = path.find("/api/chat")
    if at < 0:
        return None
    route = path[at:].rstrip("/") or path[at:]
    if route in (CHAT, STREAM, MESSAGES, SESSION) or route == SESSIONS \
            or route.startswith(SESSIONS + "/"):
        return route
    return None


def _stream_parts(text: Any) -> tuple[str, dict[str, Any]]:
    """(streamed text, final line object) of a recorded ``/api/chat/stream`` body."""
    if isinstance(text, dict):
        return "", text
    if not isinstance(text, str):
        return "", {}
    body, _, last = text.rpartition("\n")
    try:
        final = json.loads(last)
    except ValueError:
        return text, {}
    return body, final if isinstance(final, dict) else {}


def _data(rec: Recorded, route: str) -> dict[str, Any]:
    if route == STREAM:
        final = _stream_parts(rec.response)[1].get(FINAL)
        return final if isinstance(final, dict) else {}
    data = rec.response.get("data") if isinstance(rec.response, dict) else None
    return data if isinstance(data, dict) else {}


def _retry_after(rec: Recorded) -> int | str | None:
    body = rec.response if isinstance(rec.response, dict) else {}
    value = body.get("retryAfter", rec.headers.get("retry-after"))
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _error_text(rec: Recorded) -> str:
    body = rec.response if isinstance(rec.response, dict) else {}
    for key in ("details", "error", "message"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return f"recorded {rec.status}"


def _reply(rec: Recorded, route: str) -> dict[str, Any]:
    data = _data(rec, route)
    text = data.get("response")
    if not isinstance(text, str) and route == STREAM:
        text = _stream_parts(rec.response)[0]
    answer: dict[str, Any] = {"reply": text if isinstance(text, str) else _PLACEHOLDER}
    model = data.get("model") or (rec.body.get("model") if isinstance(rec.body, dict) else None)
    if isinstance(model, str):
        answer["model"] = model
    if isinstance(data.get("id"), str):
        answer["id"] = data["id"]
    usage = data.get("usage")
    if isinstance(usage, dict) and usage and all(
            isinstance(v, int) and not isinstance(v, bool) for v in usage.values()):
        answer["usage"] = usage
    return answer


def provider_script(rec: Recorded, route: str) -> tuple[Any, list[str]]:
    """The provider answer(s) that explain a recorded chat answer, and notes."""
    code = rec.response.get("code") if isinstance(rec.response, dict) else None
    if rec.status == 200 and route == STREAM:
        final = _stream_parts(rec.response)[1]
        error = final.get(STREAM_ERROR)
        reply = _reply(rec, route)
        if isinstance(error, dict):
            status = _PROVIDER_STATUS.get(str(error.get("code")), 502)
            text = str(reply["reply"])
            reply["stream_error"] = {"after": max(1, math.ceil(len(text) / 12)), "code": status,
                                     "message": str(error.get("error") or "Provider error")}
            return reply, [f"the stream ended with {STREAM_ERROR} {error.get('code')}"]
        return reply, []
    if 200 <= rec.status < 300:
        return _reply(rec, route), []
    if rec.status in (429, 402) or (rec.status == 503 and code == "service_unavailable"):
        answer: dict[str, Any] = {"status": rec.status, "error": _error_text(rec)}
        if rec.status == 429 and _retry_after(rec) is not None:
            answer["retry_after"] = _retry_after(rec)
        return answer, [f"the recorded {rec.status} came from the provider"]
    if rec.status == 502:
        failing = {"status": 500, "error": _error_text(rec)}
        return [dict(failing) for _ in range(_RETRIES + 1)], [
            "a 502 means the provider kept failing: the first call and its two retries (C-CHAT-3)"]
    if rec.status == 504:
        return {"reply": _PLACEHOLDER, "timeout": True}, [
            "a 504 means the provider did not answer in time"]
    if 400 <= rec.status < 500:
        return None, [f"no provider answer: a {rec.status} is refused before the provider is "
                      "called (add 'provider:' if this backend calls it first)"]
    return {"reply": _PLACEHOLDER}, [
        f"the recording has no provider answer for this {rec.status}; a reply is scripted so "
        "the request can succeed"]


def _expect(rec: Recorded, route: str | None, scripted: Any) -> tuple[Any, list[str]]:
    if rec.status >= 500 and not (route in (CHAT, STREAM) and rec.status in (502, 503, 504)
                                  and scripted is not None):
        code = rec.response.get("code") if isinstance(rec.response, dict) else None
        what = f"{rec.status} {code}" if isinstance(code, str) else str(rec.status)
        return "2xx", [f"recorded {what}: the failure this scenario reproduces; "
                       "a correct backend answers 2xx"]
    return rec.status, []


# -- values the backend made up, sent back later -------------------------------------


def _leaves(value: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """(dotted path, last key, value) of every scalar inside a JSON value."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += _leaves(v, f"{path}.{k}" if path else str(k))
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out += _leaves(v, f"{path}[{i}]")
        return out
    key = re.split(r"[.\[]", path)[-1] if path else ""
    return [(path, key, value)]


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    name = re.sub(r"[^a-z0-9_]+", "_", name).strip("_")
    return name if name and not name[0].isdigit() else f"v_{name}"


class Captures:
    """Tracks what the client has sent and what the backend made up."""

    def __init__(self) -> None:
        self.sent: set[str] = set()
        self.minted: dict[str, tuple[int, str, str]] = {}  # value -> (step, path, key)
        self.names: dict[str, str] = {}  # value -> variable name
        self.by_step: dict[int, dict[str, str]] = {}

    def _name_for(self, value: str, use_key: str) -> str:
        if value in self.names:
            return self.names[value]
        step, path, key = self.minted[value]
        generic = ("id", "value", "")
        # the answer's key names it best (timestamp), unless it is just "id": then
        # the request's (completion_id), else the whole path (data_id)
        base = _snake(key if key not in generic else use_key if use_key not in generic else
                      "_".join(p for p in re.split(r"[.\[\]]+", path) if p and not p.isdigit()))
        name, n = base, 2
        while name in self.names.values() or name in ("session_id", "user_id"):
            name, n = f"{base}_{n}", n + 1
        self.names[value] = name
        self.by_step.setdefault(step, {})[name] = path
        return name

    def substitute(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.substitute(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, key) for v in value]
        if isinstance(value, str) and value in self.minted:
            return "${" + self._name_for(value, key) + "}"
        return value

    def substitute_path(self, path: str) -> str:
        return "/".join("${" + self._name_for(p, "id") + "}" if p in self.minted else p
                        for p in path.split("/"))

    def saw_request(self, rec: Recorded) -> None:
        for _, _, v in _leaves(rec.body) + _leaves(rec.query):
            if isinstance(v, str):
                self.sent.add(v)
        self.sent.update(rec.path.split("/"))

    def saw_response(self, step: int, rec: Recorded) -> None:
        if not isinstance(rec.response, dict | list):
            return  # a stream or text: nothing a capture could point into
        for path, key, v in _leaves(rec.response):
            if (isinstance(v, str) and _ID_LIKE.match(v) and v not in self.sent
                    and v not in self.minted and template.dig(rec.response, path) == v):
                # "request"/"response" first would read the request: say which side
                where = f"response.{path}" if path.split(".")[0] in ("request", "response") \
                    else path
                self.minted[v] = (step, where, key)


def _session(kept: list[tuple[Recorded, str]]) -> str | None:
    """The session id the client made and sent, if the requests name exactly one.

    One the backend handed out first is not the client's: it becomes a capture.
    """
    found: set[str] = set()
    answered: set[str] = set()
    for rec, _ in kept:
        for _, key, v in _leaves(rec.body) + _leaves(rec.query):
            if key in ("sessionId", "session_id") and isinstance(v, str) and v \
                    and v not in answered:
                found.add(v)
        answered.update(v for _, _, v in _leaves(rec.response) if isinstance(v, str))
    return found.pop() if len(found) == 1 else None


def build(recorded: list[Recorded]) -> Built:
    """The steps for the chat requests of a recording (the others are listed as ignored)."""
    ignored, kept = [], []
    for rec in recorded:
        route = chat_path(rec.path)
        if rec.method == "OPTIONS":
            ignored.append(f"{rec.method} {rec.path} (a CORS preflight)")
        elif route is None:
            ignored.append(f"{rec.method} {rec.path} (not a chat path)")
        elif rec.status == 0:
            ignored.append(f"{rec.method} {rec.path} (no answer was recorded)")
        else:
            kept.append((rec, route))
    session = _session(kept)
    captures = Captures()
    if session is not None:
        captures.sent.add(session)
    steps: list[Step] = []
    for index, (rec, route) in enumerate(kept):
        notes = [f"recorded: {rec.brief}"]
        data: dict[str, Any] = {"title": rec.title or f"{rec.method} {route}, recorded "
                                f"{rec.status}"}
        path = rec.path[rec.path.find("/api/chat"):]
        data["http"] = f"{rec.method} {captures.substitute_path(path)}"
        if rec.query:
            data["query"] = captures.substitute(template.escape(rec.query))
        body = captures.substitute(template.escape(rec.body))
        if session is not None:
            body = _replace(body, session, "${session_id}")
            if "query" in data:
                data["query"] = _replace(data["query"], session, "${session_id}")
        if isinstance(body, str):
            data["raw_body"] = body
        elif body is not None:
            data["body"] = body
        if any(isinstance(v, str) and _VAR.search(v) for _, _, v in _leaves(rec.body)):
            notes.append("the recorded body holds '${...}' text: written as '$${...}', "
                         "the escape for the text itself (not a variable)")
        scripted = None
        if rec.method == "POST" and route in (CHAT, STREAM):
            scripted, more = provider_script(rec, route)
            notes += more
            if scripted is not None:
                data["provider"] = scripted
        status, more = _expect(rec, route, scripted)
        notes += more
        data["expect"] = {"status": status}
        captures.saw_request(rec)
        captures.saw_response(index, rec)
        steps.append(Step(data=data, notes=notes))
    for index, wanted in captures.by_step.items():
        steps[index].data["capture"] = wanted
        steps[index].notes.append("captures what later requests send back: "
                                  + ", ".join(f"${{{n}}}" for n in wanted))
    return Built(steps=steps, ignored=ignored, session=session)


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return new if value == old else value
