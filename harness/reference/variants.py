"""Benign variants: differences from the reference that the contract allows.

The mirror of the mutants: a mutant must fail the suite, a variant must pass
it. Each one answers as another correct backend might (extra fields, other
key order, other error texts, other framing, other timing), so a scenario
that fails on a variant is a false alarm of the harness, not a backend bug.

A variant is chosen with `Settings.variants` (env `CHAT_HARNESS_VARIANT`,
comma-separated). Most are a `Layer` of the answer middleware
(answer_layer.py); the rest swap a strategy, as the mutants do. Handlers never
branch on a variant. Each description ends with the contract's words that
allow it (CONTRACT.md; "top" is its opening paragraph on what is free).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware

from harness.reference import items
from harness.reference.answer_layer import Answer, AnswerLayer, HeaderChange, Layer
from harness.reference.mutants import Strategies

_FREE = "top: 'an answer MAY carry JSON fields and headers beyond those a clause lists'"
_TEXTS = "top: 'Error texts (error, details) are free-form unless a clause quotes them'"
_UNFIXED = "top: 'What a clause does not fix is free'"

VARIANTS: dict[str, str] = {
    "extra-fields": (
        "every JSON object of every answer, the stream's final line too, has extra fields "
        f"({_FREE})"
    ),
    "owner-fields": (
        "session objects carry the owner's user_id, message items a session_id and created_at "
        f"(the contract's own examples; {_FREE})"
    ),
    "both-model-fields": (
        "every message item carries both `model` and `originalModel` (C-MSG-9 names one per "
        f"role; the other is an extra field: {_FREE})"
    ),
    "up-to-date-always": (
        "GET /api/chat/messages says `up_to_date` also without since_ts (C-MSG-9 asks for it "
        f"with since_ts; without, it is an extra field: {_FREE})"
    ),
    "reversed-keys": "every JSON object's keys in reverse order (top: 'in any key order')",
    "other-error-texts": (
        "every `error` text reworded; a bad input's still names the field "
        f"({_TEXTS}; C-ERR-3 'a message that names the field')"
    ),
    "other-details": f"every error body carries a `details` text of its own ({_TEXTS})",
    "no-details": f"no error body carries `details` (C-ERR-1 '\"details\"?: str'; {_TEXTS})",
    "suggestions-everywhere": (
        "every error body carries `suggestions` (C-ERR-1 '\"suggestions\"?: [str]')"
    ),
    "extra-headers": (
        f"extra response headers: X-Powered-By, CORS, caching, security headers ({_FREE})"
    ),
    "title-case-headers": f"header names sent as Title-Case, e.g. X-Request-Id ({_UNFIXED})",
    "server-header": f"a `Server: nginx/1.27.0` header (top: 'a Server header'; {_FREE})",
    "connection-close": (
        "`Connection: close` on every response, the request body read to its end first "
        f"(a lingering close, RFC 9112 9.6) ({_UNFIXED})"
    ),
    "chunked-json": (
        f"JSON bodies sent chunked (Transfer-Encoding: chunked, no Content-Length) ({_UNFIXED})"
    ),
    "pretty-json": (
        "JSON bodies indented, with newlines (not the stream's final line, which C-STREAM "
        f"fixes as 'one final line') ({_UNFIXED})"
    ),
    "escaped-json": (
        "JSON in ASCII only: \\u escapes for non-ASCII, \\/ for / (the same JSON values) "
        f"({_UNFIXED})"
    ),
    "json-charset": f"JSON bodies as `application/json; charset=utf-8` ({_UNFIXED})",
    "gzip": (
        "answers gzip-compressed when the request sends Accept-Encoding: gzip "
        f"(HTTP content coding; {_UNFIXED})"
    ),
    "ulid-request-id": (
        "a request without x-request-id gets a ULID (C-ERR-1 'every response carries an "
        "x-request-id header (echoed from the request if given)')"
    ),
    "long-request-id": (
        "a request without x-request-id gets req_ + 64 hex digits (C-ERR-1 'every response "
        "carries an x-request-id header (echoed from the request if given)')"
    ),
    "offset-timestamps": (
        "envelope timestamps (error bodies, chat answers' timestamp and data.timestamp, the final "
        "line's) end in +00:00, not Z (C-ERR-1 '\"timestamp\": ISO-8601'; C-CHAT-4 gives no "
        "format; message timestamps stay ...Z, C-MSG-4 fixes them)"
    ),
    "offset-session-times": (
        "session objects' created_at, updated_at, last_message_timestamp end in +00:00, not Z "
        "(C-SES-1 lists the fields without a format; C-MSG-4's ...Z is for message items)"
    ),
    "text-content-type": (
        "chat answers say contentType \"text\" (C-CHAT-4 'contentType is informative (either "
        "value is conformant)')"
    ),
    "coarse-elapsed-ms": (
        "elapsed_ms counted in whole seconds (mostly 0) (C-CHAT-4 '\"elapsed_ms\": int')"
    ),
    "slow-provider": (
        "the backend waits 200 ms before and after each provider call, outside the provider "
        f"timeout ({_UNFIXED})"
    ),
    "retry-backoff": (
        "the backend waits 100 ms, then 200 ms before its retries (C-CHAT-3 'up to 2 retries' "
        "fixes how many, not when)"
    ),
    "provider-extras": (
        "provider calls carry `usage: {include: true}`, an explicit `stream`, a User-Agent and "
        "Accept, and no HTTP-Referer / X-Title (C-CHAT-3 fixes the messages and the model; "
        "C-RUN-1 the Authorization header)"
    ),
    "stream-small-chunks": (
        "the stream is flushed in 3-byte pieces, splitting characters and the final line "
        "(C-STREAM-1 'The text before the final line, concatenated, equals ...response')"
    ),
}

FINAL, STREAM_ERROR = "__FINAL_METADATA__", "__STREAM_ERROR__"
BAD_INPUT = ("bad_request", "payload_too_large", "unprocessable_entity")


COMPOSE = "+"  # "gzip+slow-provider": one backend with both variants on


def variant_parts(name: str) -> list[str]:
    """The variants of a name: ``gzip+slow-provider`` is one backend with both on."""
    return name.split(COMPOSE)


# variants that set the same thing: composed, one would undo the other
APART = (frozenset({"no-details", "other-details"}),
         frozenset({"long-request-id", "ulid-request-id"}))


def compositions(names: Iterable[str]) -> list[str]:
    """``names`` composed into as few backends as can hold them: each variant joins the
    first composition holding none it must stay apart from (:data:`APART`)."""
    groups: list[list[str]] = []
    for name in sorted(names):
        for group in groups:
            if not any(frozenset({name, other}) in APART for other in group):
                group.append(name)
                break
        else:
            groups.append([name])
    return [COMPOSE.join(group) for group in groups]


def describe_variant(name: str) -> str:
    """What the backend of ``name`` (a variant, or variants joined by ``+``) does."""
    return "; and ".join(VARIANTS[part] for part in variant_parts(name))


def folder_name(name: str) -> str:
    """A folder for the runs of ``name``: itself, or for a long composition its first
    variant, how many more, and a digest (a file name has at most 255 bytes)."""
    parts = variant_parts(name)
    if len(name) <= 80:
        return name
    import hashlib

    return f"{parts[0]}+{len(parts) - 1}-more-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def check_variant_names(names: Iterable[str]) -> None:
    unknown = sorted({part for name in names for part in variant_parts(name)} - VARIANTS.keys())
    if unknown:
        raise ValueError(
            f"Unknown variant(s) {', '.join(map(repr, unknown))}. "
            f"Hint: choose from {', '.join(sorted(VARIANTS))}"
        )


# -- JSON changes ------------------------------------------------------------------


def _objects(doc: Any, change: Any) -> Any:
    """`doc` with `change` applied to every object in it, innermost first."""
    if isinstance(doc, dict):
        return change({k: _objects(v, change) for k, v in doc.items()})
    if isinstance(doc, list):
        return [_objects(v, change) for v in doc]
    return doc


def _extra_fields(doc: Any, answer: Answer) -> Any:
    doc = _objects(doc, lambda obj: {**obj, "x_variant": "extra-fields"})
    if isinstance(doc, dict):
        doc["meta"] = {"api_version": "1.1", "deprecated": None, "tags": ["benign"]}
    return doc


def _reversed_keys(doc: Any, answer: Answer) -> Any:
    return _objects(doc, lambda obj: dict(reversed(obj.items())))


def _error_bodies(doc: Any, answer: Answer, *, stream_line: bool = True
                  ) -> list[dict[str, Any]]:
    """The error objects of an answer: an error body, or a __STREAM_ERROR__ line's
    (C-STREAM-3: `{"code", "error", "retryAfter"?}`, so no `details` there)."""
    if not isinstance(doc, dict):
        return []
    if answer.final_line:
        inner = doc.get(STREAM_ERROR)
        return [inner] if stream_line and isinstance(inner, dict) else []
    return [doc] if answer.error and isinstance(doc.get("code"), str) else []


def _chat_data(doc: Any, answer: Answer) -> list[dict[str, Any]]:
    """The C-CHAT-4 objects of an answer: a chat answer and its data, or a final line's."""
    if not isinstance(doc, dict):
        return []
    if answer.final_line:
        inner = doc.get(FINAL)
        return [inner] if isinstance(inner, dict) else []
    if answer.method == "POST" and answer.path == "/api/chat" and not answer.error:
        data = doc.get("data")
        return [doc, data] if isinstance(data, dict) else [doc]
    return []


def _reword(text: str, code: str) -> str:
    if code in BAD_INPUT:  # C-ERR-3: the field stays named
        return f"The request was refused, because: {text}"
    return f"Sorry, that did not work ({code.replace('_', ' ')})."


def _other_error_texts(doc: Any, answer: Answer) -> Any:
    for body in _error_bodies(doc, answer):
        if isinstance(body.get("error"), str):
            body["error"] = _reword(body["error"], str(body.get("code")))
    return doc


def _other_details(doc: Any, answer: Answer) -> Any:
    for body in _error_bodies(doc, answer, stream_line=False):
        body["details"] = f"See https://docs.example.invalid/errors#{body.get('code')}"
    return doc


def _no_details(doc: Any, answer: Answer) -> Any:
    for body in _error_bodies(doc, answer):
        body.pop("details", None)
    return doc


def _suggestions(doc: Any, answer: Answer) -> Any:
    for body in _error_bodies(doc, answer, stream_line=False):
        body.setdefault("suggestions", ["Check the request.", "Try again later."])
    return doc


def _offset(value: Any) -> Any:
    return value[:-1] + "+00:00" if isinstance(value, str) and value.endswith("Z") else value


def _offset_timestamps(doc: Any, answer: Answer) -> Any:
    for obj in _error_bodies(doc, answer) + _chat_data(doc, answer):
        if "timestamp" in obj:
            obj["timestamp"] = _offset(obj["timestamp"])
    return doc


def _session_objects(doc: Any, answer: Answer) -> list[dict[str, Any]]:
    if answer.error or not isinstance(doc, dict) or not answer.path.startswith("/api/chat/session"):
        return []
    listed = doc.get("sessions")
    found: list[Any] = listed if isinstance(listed, list) else [doc.get("session")]
    return [s for s in found if isinstance(s, dict)]


def _offset_session_times(doc: Any, answer: Answer) -> Any:
    for session in _session_objects(doc, answer):
        for key in ("created_at", "updated_at", "last_message_timestamp"):
            if key in session:
                session[key] = _offset(session[key])
    return doc


def _up_to_date_always(doc: Any, answer: Answer) -> Any:
    if (answer.method == "GET" and answer.path == "/api/chat/messages" and not answer.error
            and isinstance(doc, dict) and isinstance(doc.get("messages"), list)):
        doc.setdefault("up_to_date", not doc["messages"])
    return doc


def _text_content_type(doc: Any, answer: Answer) -> Any:
    for obj in _chat_data(doc, answer):
        if "contentType" in obj:
            obj["contentType"] = "text"
    return doc


def _coarse_elapsed(doc: Any, answer: Answer) -> Any:
    for obj in _chat_data(doc, answer):
        if isinstance(obj.get("elapsed_ms"), int):
            obj["elapsed_ms"] = obj["elapsed_ms"] // 1000 * 1000
    return doc


# -- header changes -------------------------------------------------------------------

_EXTRA_HEADERS = {
    "x-powered-by": "benign-variant/1.0",
    "access-control-allow-origin": "*",
    "vary": "Origin",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "strict-transport-security": "max-age=31536000",
    "referrer-policy": "no-referrer",
    "x-ratelimit-limit": "1000",
    "cache-control": "no-store",
}


def _extra_headers(headers: MutableHeaders, answer: Answer) -> None:
    for name, value in _EXTRA_HEADERS.items():
        if name not in headers:
            headers[name] = value
    headers.append("x-served-by", "variant-a")
    headers.append("x-served-by", "variant-b")  # a repeated header


def _header(name: str, value: str) -> HeaderChange:
    def change(headers: MutableHeaders, answer: Answer) -> None:
        headers[name] = value

    return change


def _json_charset(headers: MutableHeaders, answer: Answer) -> None:
    if headers.get("content-type") == "application/json":
        headers["content-type"] = "application/json; charset=utf-8"


_LAYERS: dict[str, Layer] = {
    "extra-fields": Layer(json=_extra_fields),
    "reversed-keys": Layer(json=_reversed_keys, last=True),
    "other-error-texts": Layer(json=_other_error_texts),
    "other-details": Layer(json=_other_details),
    "no-details": Layer(json=_no_details),
    "suggestions-everywhere": Layer(json=_suggestions),
    "extra-headers": Layer(headers=_extra_headers),
    "title-case-headers": Layer(title_case=True),
    "server-header": Layer(headers=_header("server", "nginx/1.27.0")),
    "connection-close": Layer(headers=_header("connection", "close"), drain_request=True),
    "chunked-json": Layer(chunked=True),
    "pretty-json": Layer(indent=2),
    "escaped-json": Layer(ascii_only=True),
    "json-charset": Layer(headers=_json_charset),
    "offset-timestamps": Layer(json=_offset_timestamps),
    "offset-session-times": Layer(json=_offset_session_times),
    "up-to-date-always": Layer(json=_up_to_date_always),
    "text-content-type": Layer(json=_text_content_type),
    "coarse-elapsed-ms": Layer(json=_coarse_elapsed),
    "stream-small-chunks": Layer(stream_piece=3),
}

# -- strategy swaps ---------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid() -> str:
    """A ULID: 48 bits of milliseconds, 80 random bits, 26 Crockford base-32 digits."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def long_request_id() -> str:
    return "req_" + secrets.token_hex(32)


def session_with_owner(row: dict[str, Any]) -> dict[str, Any]:
    return {**items.session_item(row), "user_id": str(row["user_id"])}


def message_with_session(row: dict[str, Any]) -> dict[str, Any]:
    item = items.message_item(row)
    return {**item, "session_id": row["session_id"], "created_at": item["timestamp"]}


def message_with_both_models(row: dict[str, Any]) -> dict[str, Any]:
    return {**items.message_item(row), "model": row["model"], "originalModel": row["model"]}


def provider_extras(payload: dict[str, Any], headers: dict[str, str]
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    streaming = bool(payload.get("stream"))
    body = {**payload, "stream": streaming, "usage": {"include": True}}
    sent = {
        "Authorization": headers["Authorization"],
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if streaming else "application/json",
        "User-Agent": "benign-variant/1.0",
    }
    return body, sent


def _backoff(attempt: int) -> float:
    return 0.1 * 2 ** (attempt - 1)


_SWAPS: dict[str, dict[str, Any]] = {
    "owner-fields": {"session_item": session_with_owner, "message_item": message_with_session},
    "both-model-fields": {"message_item": message_with_both_models},
    "provider-extras": {"provider_request": provider_extras},
    "ulid-request-id": {"new_request_id": ulid},
    "long-request-id": {"new_request_id": long_request_id},
    "slow-provider": {"provider_pause_s": 0.2},
    "retry-backoff": {"retry_backoff_s": _backoff},
}

_GZIP = {"gzip"}

assert (_LAYERS.keys() | _SWAPS.keys() | _GZIP) == VARIANTS.keys(), "every variant needs a change"


def apply_strategies(strategies: Strategies, names: Iterable[str] = ()) -> Strategies:
    """`strategies` with each named variant's swaps; ValueError on unknown names."""
    chosen = sorted(set(names))
    check_variant_names(chosen)
    swaps: dict[str, Any] = {}
    for name in chosen:
        swaps.update(_SWAPS.get(name, {}))
    return dataclasses.replace(strategies, **swaps)


def install(app: FastAPI, names: Iterable[str] = ()) -> None:
    """Add the answer middleware of the named variants (outside every other middleware)."""
    chosen = sorted(set(names))
    check_variant_names(chosen)
    layers = [_LAYERS[name] for name in chosen if name in _LAYERS]
    if layers:
        app.add_middleware(AnswerLayer, layers=layers)
    if _GZIP & set(chosen):
        app.add_middleware(GZipMiddleware, minimum_size=0)


def server_options(names: Iterable[str] = ()) -> dict[str, Any]:
    """uvicorn options the named variants need (its own Server header would double ours)."""
    return {"server_header": False} if "server-header" in set(names) else {}
