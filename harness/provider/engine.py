"""The scripted provider: one engine, served by several adapters.

A scenario plans answers (a queue per model, and a shared one); every call
the backend makes is recorded and takes the next planned answer. Adapters turn
an :class:`Outgoing` into a transport's response: respx in-process
(``harness.provider.inprocess``), a real HTTP server for black-box backends.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

# -- what a scenario can plan ------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A successful completion (OpenRouter shape)."""

    content: str
    model: str | None = None  # the model that "answered"; default: the one asked for
    id: str | None = None  # generation id; default gen-<n>
    usage: Mapping[str, int] | None = None  # default: counted from the texts
    omit_usage: bool = False  # an answer without "usage" (C-CHAT-4)
    delay_ms: int = 0
    # -- how a streamed answer (``"stream": true``) is sent ---------------
    chunk_chars: int = 12  # text per chunk
    gap_ms: int = 0  # between chunks (slow drip; beyond the timeout: a gap)
    first_gap_ms: int | None = None  # before the first token, if not gap_ms
    processing: int = 1  # ": OPENROUTER PROCESSING" comment lines first
    cut_after: int | None = None  # drop the connection after N text chunks
    error_after: int | None = None  # an error chunk after N text chunks ...
    error_code: int = 502  # ... with this error.code
    error_message: str = "Provider error"
    done: bool = True  # end with "data: [DONE]"
    # tool calls the model makes ({name, arguments (an object or a JSON string), id?}):
    # message.tool_calls (delta.tool_calls when streamed), finish_reason "tool_calls"
    tool_calls: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ErrorAnswer:
    """An OpenRouter error: ``{"error": {"code", "message"}}`` with that status."""

    status: int
    message: str = "Provider error"
    retry_after: int | str | None = None  # seconds, or an HTTP date
    metadata: Mapping[str, Any] | None = None
    delay_ms: int = 0


@dataclass(frozen=True)
class RawAnswer:
    """Anything else: a status, headers and a body sent as given (malformed answers)."""

    status: int = 200
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_ms: int = 0
    cut: bool = False  # drop the connection after the body's bytes (a reset, C-CHAT-5)


Answer = Reply | ErrorAnswer | RawAnswer


@dataclass(frozen=True)
class Side:
    """A side rule: every call it matches gets ``answer`` (again and again), without
    taking the step's planned answers: a title request next to the chat call, say.

    A call matches when every criterion given holds: its ``model``, its ``stream``
    flag (absent counts as false), and ``contains`` found in its JSON body's text.
    """

    answer: Answer
    model: str | None = None
    stream: bool | None = None
    contains: str | None = None

    def matches(self, body: Any, raw: bytes) -> bool:
        doc = body if isinstance(body, dict) else {}
        if self.model is not None and doc.get("model") != self.model:
            return False
        if self.stream is not None and (doc.get("stream") is True) != self.stream:
            return False
        return self.contains is None or self.contains in raw.decode("utf-8", "replace")

    def describe(self) -> str:
        said = [f"{k}={v!r}" for k in ("model", "stream", "contains")
                if (v := getattr(self, k)) is not None]
        return "side rule " + (", ".join(said) or "(every call)")

# -- what the engine hands an adapter -----------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """A transport-neutral response: wait ``delay_s``, then answer.

    A streamed answer has ``chunks``: (seconds to wait, bytes to send) in
    order; ``cut`` drops the connection after the last one instead of ending
    the body cleanly.
    """

    status: int
    headers: dict[str, str]
    body: bytes
    delay_s: float = 0.0
    chunks: tuple[tuple[float, bytes], ...] | None = None
    cut: bool = False


@dataclass
class ProviderCall:
    """One request the backend made to the provider, as recorded."""

    index: int
    step: int | None
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or the raw text when it was not JSON
    answer: str = ""  # a one-line description of what the engine answered
    scripted: bool = True  # False: the scenario planned no answer for this call
    side: str = ""  # answered by a side rule (a title request, ...): the rule, else ""
    at: float = field(default_factory=time.monotonic)

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> Any:
        return self.body.get("messages") if isinstance(self.body, dict) else None


_SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}
UNSCRIPTED_STATUS = 599  # never a status a real provider sends: easy to spot in reports


def _count_tokens(text: str) -> int:
    # A stable stand-in for a tokenizer: about four characters a token.
    return max(1, (len(text) + 3) // 4)


Plan = tuple["Answer", "str | None"]
"""A planned answer and the model it is for (``None``: the next call, any model)."""


class StepEnd(NamedTuple):
    """What a step left with the provider: its calls, and planned answers not taken."""

    calls: list[ProviderCall]
    pending: list[tuple[str | None, Answer]]


class ProviderControl(Protocol):
    """What the runner and the checks use of a provider: the engine itself, in
    process, or :class:`~harness.provider.remote.ProviderControlClient` for one
    served over HTTP. Both hand back the same dataclasses.

    Three things are called "provider" around here, under three type names: the
    scripted engine (:class:`ScriptedProvider`, which plays the LLM provider), the
    client that scripts one served over HTTP (``ProviderControlClient``), and the
    backend's own upstream (the reference's ``UpstreamClient``)."""

    step: int | None

    def reset(self) -> None: ...
    def plan(self, answer: Answer, *, for_model: str | None = None) -> None: ...
    def pending(self) -> list[tuple[str | None, Answer]]: ...
    def discard_pending(self) -> None: ...
    def calls_in_step(self, step: int) -> list[ProviderCall]: ...
    def begin_step(self, step: int, plans: Sequence[Plan] = (),
                   sides: Sequence[Side] = ()) -> None: ...
    def end_step(self, step: int) -> StepEnd: ...


class ScriptedProvider:
    """Plans answers, serves them in order, records every call.

    ``default`` answers every call nothing was planned for (instead of a 599):
    for generated traffic (``chat-harness fuzz``) where no one scripts calls.
    """

    def __init__(self, *, default: Answer | None = None) -> None:
        self.default = default
        self._shared: deque[Answer] = deque()
        self._by_model: dict[str, deque[Answer]] = {}
        self.calls: list[ProviderCall] = []
        self.step: int | None = None
        self._ids = itertools.count(1)
        self.sides: tuple[Side, ...] = ()  # the running step's side rules

    # -- scripting -------------------------------------------------------
    def reset(self) -> None:
        self._shared.clear()
        self._by_model.clear()
        self.calls.clear()
        self.step = None
        self._ids = itertools.count(1)
        self.sides = ()

    def plan(self, answer: Answer, *, for_model: str | None = None) -> None:
        """Queue ``answer`` for the next call (for ``for_model`` only, if given)."""
        if for_model is None:
            self._shared.append(answer)
        else:
            self._by_model.setdefault(for_model, deque()).append(answer)

    def pending(self) -> list[tuple[str | None, Answer]]:
        """Planned answers no call has taken yet."""
        left: list[tuple[str | None, Answer]] = [(None, a) for a in self._shared]
        for model, queue in self._by_model.items():
            left += [(model, a) for a in queue]
        return left

    def discard_pending(self) -> None:
        self._shared.clear()
        self._by_model.clear()

    def calls_in_step(self, step: int) -> list[ProviderCall]:
        return [c for c in self.calls if c.step == step]

    # -- a step at a time: what the runner does, in one move each ----------
    def begin_step(self, step: int, plans: Sequence[Plan] = (),
                   sides: Sequence[Side] = ()) -> None:
        """Calls from now on belong to ``step``; queue its planned answers; its side
        rules answer the calls they match (first match wins)."""
        self.step = step
        self.sides = tuple(sides)
        for answer, for_model in plans:
            self.plan(answer, for_model=for_model)

    def end_step(self, step: int) -> StepEnd:
        """The step's calls and the answers it left untaken (discarded now).

        Calls that come later (a backend still retrying in the background)
        belong to no step, so what this returns stays the step's whole record.
        """
        end = StepEnd(self.calls_in_step(step), self.pending())
        self.discard_pending()
        self.step = None
        self.sides = ()
        return end

    # -- serving ---------------------------------------------------------
    def _take(self, model: str | None) -> Answer | None:
        if model is not None and self._by_model.get(model):
            return self._by_model[model].popleft()
        if self._shared:
            return self._shared.popleft()
        return self.default

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Outgoing:
        """Record one request and produce the planned answer for it."""
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        call = ProviderCall(
            index=len(self.calls),
            step=self.step,
            method=method,
            path=path,
            headers={k.lower(): v for k, v in headers.items()},
            body=parsed,
        )
        self.calls.append(call)
        if method == "GET" and path.endswith("/models"):
            call.answer = "model list"
            return _json(200, {"data": [{"id": m} for m in sorted(self._by_model)]})
        if method != "POST" or not path.endswith("/chat/completions"):
            call.answer = f"404 (no such provider route {method} {path})"
            return _json(404, {"error": {"code": 404, "message": f"No route {method} {path}"}})
        side = next((r for r in self.sides if r.matches(parsed, body)), None)
        if side is not None:
            call.side = side.describe()
            call.answer = f"{describe(side.answer)} ({call.side})"
            return self._render(side.answer, call)
        answer = self._take(call.model)
        if answer is None:
            call.answer = f"{UNSCRIPTED_STATUS} (no answer planned for this call)"
            call.scripted = False
            return _json(
                UNSCRIPTED_STATUS,
                {"error": {
                    "code": UNSCRIPTED_STATUS,
                    "message": "chat-harness: the scenario planned no answer for this call",
                }},
            )
        call.answer = describe(answer)
        return self._render(answer, call)

    def _render(self, answer: Answer, call: ProviderCall) -> Outgoing:
        delay = answer.delay_ms / 1000
        streamed = isinstance(call.body, dict) and call.body.get("stream") is True
        if isinstance(answer, Reply) and streamed:
            return self._render_stream(answer, call)
        if isinstance(answer, Reply):
            n = next(self._ids)
            body: dict[str, Any] = {
                "id": _generation_id(answer, n),
                "object": "chat.completion",
                "created": 1755009000 + n,
                "model": answer.model or call.model or "unknown",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.content},
                    "finish_reason": "stop",
                }],
            }
            if answer.tool_calls:
                choice = body["choices"][0]
                choice["message"]["tool_calls"] = _tool_calls(answer)
                choice["message"]["content"] = answer.content or None
                choice["finish_reason"] = "tool_calls"
            if not answer.omit_usage:
                body["usage"] = _usage(answer, call)
            return _json(200, body, delay_s=delay)
        if isinstance(answer, ErrorAnswer):
            error: dict[str, Any] = {"code": answer.status, "message": answer.message}
            if answer.metadata:
                error["metadata"] = dict(answer.metadata)
            headers = {}
            if answer.retry_after is not None:
                headers["retry-after"] = str(answer.retry_after)
            return _json(answer.status, {"error": error}, headers=headers, delay_s=delay)
        if answer.cut:  # the headers, maybe some bytes, then the connection drops
            data = answer.body.encode()
            return Outgoing(
                status=answer.status,
                headers={"content-type": "application/json", **answer.headers},
                body=b"", delay_s=delay, chunks=((0.0, data),) if data else (), cut=True,
            )
        return Outgoing(
            status=answer.status,
            headers={"content-type": "application/json", **answer.headers},
            body=answer.body.encode(),
            delay_s=delay,
        )

    def _render_stream(self, answer: Reply, call: ProviderCall) -> Outgoing:
        """OpenRouter's SSE: comments, content chunks, usage chunk, ``[DONE]``."""
        n = next(self._ids)
        gen_id = _generation_id(answer, n)
        model = answer.model or call.model or "unknown"
        gap = answer.gap_ms / 1000
        first_gap = (answer.first_gap_ms if answer.first_gap_ms is not None
                     else answer.gap_ms) / 1000

        def event(payload: Any) -> bytes:
            return f"data: {json.dumps(payload)}\n\n".encode()

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            return event({
                "id": gen_id, "object": "chat.completion.chunk", "created": 1755009000 + n,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra,
            })

        text = answer.content
        size = max(1, answer.chunk_chars)
        pieces = [text[i:i + size] for i in range(0, len(text), size)] or [""]
        out: list[tuple[float, bytes]] = [
            (0.0, b": OPENROUTER PROCESSING\n\n") for _ in range(answer.processing)
        ]
        for i, piece in enumerate(pieces):
            if answer.cut_after is not None and i >= answer.cut_after:
                return Outgoing(200, _SSE, b"", delay_s=answer.delay_ms / 1000,
                                chunks=tuple(out), cut=True)
            if answer.error_after is not None and i >= answer.error_after:
                out.append((gap if i else first_gap, chunk(
                    {}, "error",
                    error={"code": answer.error_code, "message": answer.error_message})))
                return Outgoing(200, _SSE, b"", delay_s=answer.delay_ms / 1000,
                                chunks=tuple(out))
            role = {"role": "assistant"} if i == 0 else {}
            out.append((first_gap if i == 0 else gap, chunk({**role, "content": piece})))
        if answer.cut_after is not None and answer.cut_after >= len(pieces):
            return Outgoing(200, _SSE, b"", delay_s=answer.delay_ms / 1000,
                            chunks=tuple(out), cut=True)
        for i, tool in enumerate(_tool_calls(answer)):  # each call whole, in one chunk
            out.append((gap, chunk({"tool_calls": [{"index": i, **tool}]})))
        finish = "tool_calls" if answer.tool_calls else "stop"
        last: dict[str, Any] = {
            "id": gen_id, "object": "chat.completion.chunk", "created": 1755009000 + n,
            "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
        }
        options = call.body.get("stream_options") if isinstance(call.body, dict) else None
        if isinstance(options, dict) and options.get("include_usage") is True:
            # OpenAI's form: the finish chunk, then the usage alone (empty choices)
            out.append((0.0, event(last)))
            last = {"id": gen_id, "object": "chat.completion.chunk",
                    "created": 1755009000 + n, "model": model, "choices": []}
            if answer.omit_usage:
                last = {}
        if not answer.omit_usage:
            last["usage"] = _usage(answer, call)
        if last:
            out.append((0.0, event(last)))
        if answer.done:
            out.append((0.0, b"data: [DONE]\n\n"))
        return Outgoing(200, _SSE, b"", delay_s=answer.delay_ms / 1000, chunks=tuple(out))


def _tool_calls(answer: Reply) -> list[dict[str, Any]]:
    """The OpenAI form of the scripted tool calls (arguments as a JSON string)."""
    out = []
    for i, tool in enumerate(answer.tool_calls):
        args = tool.get("arguments", {})
        out.append({"id": str(tool.get("id") or f"call_{i + 1}"), "type": "function",
                    "function": {"name": str(tool.get("name")),
                                 "arguments": args if isinstance(args, str)
                                 else json.dumps(args)}})
    return out


def _generation_id(answer: Reply, n: int) -> str:
    return answer.id or f"gen-{1755009000 + n}-harness{n:04d}"


def _usage(answer: Reply, call: ProviderCall) -> dict[str, int]:
    """The scripted usage, else counts from the texts (prompt = what was sent)."""
    if answer.usage is not None:
        return dict(answer.usage)
    prompt = sum(_count_tokens(str(m.get("content", "")))
                 for m in (call.messages or []) if isinstance(m, dict))
    completion = _count_tokens(answer.content)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def describe(answer: Answer) -> str:
    """One line for reports: what the provider was scripted to answer."""
    if isinstance(answer, Reply):
        text = answer.content if len(answer.content) <= 40 else answer.content[:37] + "..."
        return f"200 reply {text!r}"
    if isinstance(answer, ErrorAnswer):
        extra = f", Retry-After: {answer.retry_after}" if answer.retry_after is not None else ""
        return f"{answer.status} error {answer.message!r}{extra}"
    if answer.cut:
        return f"connection dropped after {len(answer.body)} bytes"
    return f"{answer.status} raw body ({len(answer.body)} bytes)"


def _json(
    status: int, body: Any, *, headers: Mapping[str, str] | None = None, delay_s: float = 0.0
) -> Outgoing:
    return Outgoing(
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
        body=json.dumps(body).encode(),
        delay_s=delay_s,
    )
