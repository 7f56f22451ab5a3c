"""The contract as functions: what a correct backend answers, computed independently.

Checks compare what a backend did with what these functions say; the
reference backend does not import them (two implementations, one contract).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from harness.errors import NotApplicable
from harness.provider import Answer, ErrorAnswer, RawAnswer, Reply

MAX_RETRIES = 2  # C-CHAT-3: connection errors and 5xx other than 503, twice at most


def parse_ts(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime at millisecond precision."""
    ts = _exact(value) if isinstance(value, str) else None
    return None if ts is None else ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def _exact(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (or a datetime) as an aware UTC datetime, every digit kept."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    # C-MSG-4: no offset means UTC
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)


def same_instant(sent: Any, stored: Any) -> bool:
    """C-MSG-4: ``stored`` is the instant ``sent``: to the millisecond, or with the finer
    digits ``sent`` had, cut or rounded to milliseconds."""
    want, got = _exact(sent), _exact(stored)
    if want is None or got is None:
        return False
    cut = want.replace(microsecond=want.microsecond // 1000 * 1000)
    rounded = cut + timedelta(milliseconds=1) if want.microsecond % 1000 >= 500 else cut
    return got in (want, cut, rounded)


def format_ts(ts: datetime) -> str:
    """C-MSG-4's wire form: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    ts = ts.astimezone(UTC)
    # by hand: strftime("%Y") does not zero-pad years below 1000 on glibc
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:"
            f"{ts.second:02d}.{ts.microsecond // 1000:03d}Z")


PREVIEW_CHARS = 100  # C-MSG-7: last_message_preview is the first 100 characters

# C-MSG-9: the fields of a message item (an answer may carry more: C-MSG-9 fixes these)
ITEM_FIELDS = ("id", "role", "content", "model", "originalModel", "input_tokens",
               "output_tokens", "total_tokens", "user_message_id", "contentType", "elapsed_ms",
               "completion_id", "timestamp", "error", "error_message")


def item_fields(item: Any) -> Any:
    """A message item cut to the fields C-MSG-9 fixes (others are free)."""
    if not isinstance(item, dict):
        return item
    return {k: item[k] for k in ITEM_FIELDS if k in item}


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
    if text.isascii() and text.isdigit():  # "²" is a digit to isdigit(), not to int()
        return int(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return 60
    if when.tzinfo is None:  # "-0000": RFC 5322's "UTC, no local zone known"
        when = when.replace(tzinfo=UTC)
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


def _retried(status: int) -> bool:
    """C-CHAT-3: 5xx other than 503 are retried (and connection errors)."""
    return status >= 500 and status != 503


@dataclass(frozen=True)
class Outcome:
    """What a correct backend answers to a script of provider answers.

    ``status`` and ``code`` are the HTTP answer; for a stream that started,
    ``stream_error`` is the ``__STREAM_ERROR__`` code (None: it completes).
    ``clause`` is the clause that fixes it and ``why`` says, in words, what the
    provider did, for messages: "the provider answered 429 (Retry-After 30)".
    """

    status: int
    code: str | None = None
    stream_error: str | None = None
    clause: str = "C-CHAT-5"
    why: str = ""

    @property
    def failed(self) -> bool:
        """The client sees a failure (an error status, or a stream that ends in error)."""
        return self.status != 200 or self.stream_error is not None

    def describe(self) -> str:
        """``429 too_many_requests``, ``200 ending with __STREAM_ERROR__ bad_gateway``."""
        if self.stream_error is not None:
            return f"a 200 stream ending with __STREAM_ERROR__ {self.stream_error}"
        if self.status == 200:
            return "200 with the provider's answer"
        return f"{self.status} {self.code}"


def describe_answer(answer: Answer, *, stream: bool = False) -> str:
    """One provider answer in words: ``429 (Retry-After 30)``, ``a reply cut after 2 chunks``."""
    if isinstance(answer, ErrorAnswer):
        after = f" (Retry-After {answer.retry_after})" if answer.retry_after is not None else ""
        return f"{answer.status}{after}"
    if isinstance(answer, RawAnswer):
        if answer.cut:
            return "a dropped connection"
        return f"a raw {answer.status} body" if answer.status != 200 else "a raw 200 body"
    parts = ["a reply"]
    if stream and answer.error_after is not None:
        parts.append(f"with an error chunk (code {answer.error_code}) after "
                     f"{answer.error_after} chunk(s)")
    if stream and answer.cut_after is not None:
        parts.append(f"cut after {answer.cut_after} chunk(s)")
    if answer.omit_usage:
        parts.append("without usage")
    return " ".join(parts)


def expected_outcome(answers: list[Answer], *, timeout_ms: int, stream: bool = False
                     ) -> Outcome | None:
    """C-CHAT-3/5, C-STREAM-2/3: the answer to a scripted run of provider answers.

    ``None`` where the answers alone do not decide it: no answers, a raw body
    on a stream, or what the contract leaves open (whether an error chunk or
    a cut before the first token is retried like a 5xx).
    """
    if not answers:
        return None
    why = "the provider answered " + ", then ".join(
        describe_answer(a, stream=stream) for a in answers)
    retries = 0
    for answer in answers:
        if answer.delay_ms >= timeout_ms:
            return Outcome(504, "gateway_timeout",
                           clause="C-STREAM-2" if stream else "C-CHAT-5",
                           why=why + f", after PROVIDER_TIMEOUT_MS ({timeout_ms} ms)")
        result = _one_answer(answer, timeout_ms=timeout_ms, stream=stream, why=why)
        if isinstance(result, str):  # retried (C-CHAT-3)
            if retries < MAX_RETRIES:
                retries += 1
                continue
            return Outcome(502, "bad_gateway", clause="C-CHAT-3", why=why)
        if result is not None and retries and not result.failed:
            # a failure followed by success MUST end in 200 (C-CHAT-3)
            return dataclasses.replace(result, clause="C-CHAT-3")
        return result
    # Answers ran out while retrying: the next calls are unscripted (5xx), and the
    # harness's provider_script check names them; the answer is a 502 either way.
    return Outcome(502, "bad_gateway", clause="C-CHAT-3", why=why)


def _one_answer(answer: Answer, *, timeout_ms: int, stream: bool, why: str
                ) -> Outcome | str | None:
    """One call's answer: an Outcome, ``"retry"`` (C-CHAT-3), or None (undecided)."""
    pre = "C-STREAM-2" if stream else "C-CHAT-5"
    if isinstance(answer, ErrorAnswer):
        if _retried(answer.status):
            return "retry"
        status, code = map_provider_status(answer.status)
        return Outcome(status, code, clause=pre, why=why)
    if isinstance(answer, RawAnswer):
        if answer.cut:
            return "retry"  # a connection error
        if answer.status != 200:
            if _retried(answer.status):
                return "retry"
            return Outcome(*map_provider_status(answer.status), clause=pre, why=why)
        if stream:
            return None  # a 200 that is no event stream: the contract does not say
        if raw_completion_text(answer.body) is None:
            return Outcome(502, "bad_gateway", clause="C-CHAT-5", why=why)
        return Outcome(200, clause="C-CHAT-4", why=why)
    return _reply_outcome(answer, timeout_ms=timeout_ms, stream=stream, why=why)


def raw_completion_text(body: str) -> str | None:
    """The answer text of a raw 200 body, if it is a usable completion (C-CHAT-5).

    None for what C-CHAT-5 makes a 502: not JSON, an ``error`` in the body,
    no choices, or empty or whitespace-only content.
    """
    import json

    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "error" in doc:
        return None
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        return None
    return content


def _reply_outcome(answer: Reply, *, timeout_ms: int, stream: bool, why: str
                   ) -> Outcome | None:
    if not answer.content.strip():
        return Outcome(502, "bad_gateway", clause="C-CHAT-5", why=why)
    if not stream:
        return Outcome(200, clause="C-CHAT-4", why=why)
    chunks = max(1, math.ceil(len(answer.content) / max(1, answer.chunk_chars)))
    first_gap = answer.first_gap_ms if answer.first_gap_ms is not None else answer.gap_ms
    if answer.cut_after == 0:
        return None  # cut before the first token (and before any wait): maybe retried
    if first_gap >= timeout_ms:
        return Outcome(504, "gateway_timeout", clause="C-STREAM-2",
                       why=why + f", its first token after PROVIDER_TIMEOUT_MS ({timeout_ms} ms)")
    if answer.error_after == 0:
        status, code = map_provider_status(answer.error_code)
        if _retried(answer.error_code):
            return None  # a 5xx chunk first: whether it is retried the contract leaves open
        return Outcome(status, code, clause="C-STREAM-2", why=why)
    # (chunk index at which it happens, then which comes first there, the stream error
    # code): before chunk N a cut comes at once, the gap is waited, an error chunk
    # is sent only after that wait
    events = []
    if answer.error_after is not None and answer.error_after < chunks:
        events.append((answer.error_after, 2, map_provider_status(answer.error_code)[1]))
    if answer.cut_after is not None and answer.cut_after < chunks:
        events.append((answer.cut_after, 0, "bad_gateway"))
    if answer.gap_ms >= timeout_ms and chunks > 1:
        events.append((1, 1, "gateway_timeout"))
    if events:
        return Outcome(200, None, min(events)[2], clause="C-STREAM-3", why=why)
    if answer.cut_after is not None:
        # every text chunk went out, then the cut: complete only if a
        # finish_reason was seen, and it comes after the text: a cut.
        return Outcome(200, None, "bad_gateway", clause="C-STREAM-3", why=why)
    return Outcome(200, clause="C-STREAM-1", why=why)
