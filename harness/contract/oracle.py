"""The contract as functions: what a correct backend answers, computed independently.

Checks compare what a backend did with what these functions say; the
reference backend does not import them (two implementations, one contract).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from harness.provider import Answer, ErrorAnswer, RawAnswer, Reply

MAX_RETRIES = 2  # C-CHAT-3: connection errors and 5xx other than 503, twice at most


class NotApplicable(Exception):
    """The request is not one the oracle can judge (the backend must refuse it)."""


def parse_ts(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime at millisecond precision."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)  # C-MSG-4: no offset means UTC
    ts = ts.astimezone(UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def format_ts(ts: datetime) -> str:
    """C-MSG-4's wire form: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    ts = ts.astimezone(UTC)
    # by hand: strftime("%Y") does not zero-pad years below 1000 on glibc
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:"
            f"{ts.second:02d}.{ts.microsecond // 1000:03d}Z")


PREVIEW_CHARS = 100  # C-MSG-7: last_message_preview is the first 100 characters


def expected_stats(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """C-MSG-7: a session's stats from its stored messages, in conversation order.

    Failed messages (``error`` set) count for nothing; ``total_tokens`` sums
    the assistants'; ``last_model`` is the model (or ``originalModel``) of the
    latest message that names one.
    """
    ok = [m for m in messages if not m.get("error")]
    latest = ok[-1] if ok else None
    models = [m.get("model") or m.get("originalModel") for m in ok]
    models = [m for m in models if isinstance(m, str) and m]
    return {
        "message_count": len(ok),
        "total_tokens": sum(_count(m.get("total_tokens")) for m in ok
                            if m.get("role") == "assistant"),
        "last_message_preview": str(latest.get("content"))[:PREVIEW_CHARS] if latest else None,
        "last_model": models[-1] if models else None,
    }


def _count(value: Any) -> int:
    """A token count as stored; anything but an integer (a broken answer) counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _chronological(messages: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """(position, message) by timestamp, then position (C-CHAT-2/3)."""
    items = [(i, m) for i, m in enumerate(messages) if isinstance(m, dict)]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda im: (parse_ts(im[1].get("timestamp")) or far, im[0]))


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def expected_request_id(body: dict[str, Any]) -> str | None:
    """C-CHAT-2: the id of the user message that triggered this completion."""
    messages = body.get("messages") or []
    current = body.get("current_message_id")
    if current is not None:
        if messages and not any(
            isinstance(m, dict) and m.get("role") == "user" and m.get("id") == current
            for m in messages
        ):
            raise NotApplicable("current_message_id names no user message (422)")
        return str(current)
    if not messages:
        return None
    wanted = _text(body.get("message"))
    matches = [
        m for _, m in _chronological(messages)
        if m.get("role") == "user" and _text(m.get("content")) == wanted
    ]
    if not matches:
        raise NotApplicable("no user message matches 'message' (422)")
    return str(matches[-1].get("id"))


def expected_context(body: dict[str, Any]) -> list[dict[str, str]]:
    """C-CHAT-3: the messages a correct backend sends to the provider."""
    messages = body.get("messages") or []
    if not messages:
        return [{"role": "user", "content": str(body.get("message", ""))}]
    trigger = expected_request_id(body)
    out: list[dict[str, str]] = []
    for _, m in _chronological(messages):
        is_trigger = m.get("id") == trigger and m.get("role") == "user"
        if m.get("error") is True and not is_trigger:
            continue
        out.append({"role": str(m.get("role")), "content": str(m.get("content"))})
        if is_trigger:
            break
    return out


def retry_after_seconds(value: int | str | None, *, now: datetime | None = None) -> int:
    """C-CHAT-5: seconds, or an HTTP date turned into seconds rounded up; else 60."""
    if value is None:
        return 60
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return 60
    now = now or datetime.now(UTC)
    return max(0, math.ceil((when - now).total_seconds()))


_STATUS_CODES = {
    402: (402, "payment_required"),
    400: (400, "bad_request"),
    429: (429, "too_many_requests"),
    503: (503, "service_unavailable"),
}


def map_provider_status(status: int) -> tuple[int, str]:
    """C-CHAT-5: a provider status (or an error chunk's code) as the backend answers it."""
    return _STATUS_CODES.get(status, (502, "bad_gateway"))


@dataclass(frozen=True)
class Outcome:
    """What a correct backend answers: the HTTP status and code, and for a
    stream that started, the ``__STREAM_ERROR__`` code (None: completed)."""

    status: int
    code: str | None = None
    stream_error: str | None = None


def expected_outcome(answers: list[Answer], *, timeout_ms: int, stream: bool = False
                     ) -> Outcome | None:
    """C-CHAT-3/5, C-STREAM-2/3: the answer to a scripted run of provider answers.

    ``None`` where the answers alone do not decide it (raw bodies, or cases the
    contract leaves open, such as an error chunk with a retryable code).
    """
    retries = 0
    for answer in answers:
        if answer.delay_ms >= timeout_ms:
            return Outcome(504, "gateway_timeout")
        if isinstance(answer, Reply):
            return _reply_outcome(answer, timeout_ms=timeout_ms, stream=stream)
        if isinstance(answer, RawAnswer):
            return None
        assert isinstance(answer, ErrorAnswer)
        if answer.status in _STATUS_CODES:
            return Outcome(*_STATUS_CODES[answer.status])
        if answer.status >= 500 and retries < MAX_RETRIES:
            retries += 1
            continue
        return Outcome(502, "bad_gateway")
    if not answers:
        return None
    # Answers ran out while retrying: the next calls are unscripted (5xx).
    return Outcome(502, "bad_gateway")


def _reply_outcome(answer: Reply, *, timeout_ms: int, stream: bool) -> Outcome | None:
    if not answer.content.strip():
        return Outcome(502, "bad_gateway")
    if not stream:
        return Outcome(200)
    chunks = max(1, math.ceil(len(answer.content) / max(1, answer.chunk_chars)))
    first_gap = answer.first_gap_ms if answer.first_gap_ms is not None else answer.gap_ms
    if first_gap >= timeout_ms:
        return Outcome(504, "gateway_timeout")
    if answer.error_after == 0 or answer.cut_after == 0:
        return None  # before the first token: mapped and maybe retried; say it in expect
    events = []  # (chunk index at which it happens, stream error code)
    if answer.error_after is not None and answer.error_after < chunks:
        events.append((answer.error_after, map_provider_status(answer.error_code)[1]))
    if answer.cut_after is not None and answer.cut_after < chunks:
        events.append((answer.cut_after, "bad_gateway"))
    if answer.gap_ms >= timeout_ms and chunks > 1:
        events.append((1, "gateway_timeout"))
    if events:
        return Outcome(200, None, min(events)[1])
    if answer.cut_after is not None:
        # every text chunk went out, then the cut: complete only if a
        # finish_reason was seen, and it comes after the text: a cut.
        return Outcome(200, None, "bad_gateway")
    return Outcome(200)
