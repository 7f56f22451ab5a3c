"""The AI SDK 5 UI message stream, read as the client (``useChat``) reads it.

Server-sent events: ``data: {json}`` parts separated by blank lines, then
``data: [DONE]``; the response carries ``x-vercel-ai-ui-message-stream: v1``.
Parts: ``start{messageId}``, ``start-step``, ``text-start{id}``,
``text-delta{id, delta}``, ``text-end{id}``, ``finish-step``, ``finish``,
``data-*{data}`` (``data-chat-title`` for a new chat; anywhere, also before
``start``), ``error{errorText}``,
and others (reasoning, tool input/output, sources) that carry no answer text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

HEADER = "x-vercel-ai-ui-message-stream"


@dataclass
class UIStream:
    """What one answer streamed: its parts, text, announced id, error and ending."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    message_id: str | None = None
    error: str | None = None  # the errorText of an ``error`` part
    finished: bool = False  # a ``finish`` part came
    done: bool = False  # ``data: [DONE]`` came
    problems: list[str] = field(default_factory=list)  # framing the client cannot read

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(str(p.get("type")) for p in self.parts)

    @property
    def ok(self) -> bool:
        """A complete answer: finished, no error part, no framing problem."""
        return self.finished and self.error is None and not self.problems


def parse(body: Any) -> UIStream:
    """Read a UI message stream body (the text of the response)."""
    out = UIStream()
    if not isinstance(body, str):
        out.problems.append(f"the answer is not an event stream but {type(body).__name__}")
        return out
    open_texts: set[str] = set()
    for event in body.replace("\r\n", "\n").split("\n\n"):
        data_lines = [line[5:].lstrip(" ") for line in event.split("\n")
                      if line.startswith("data:")]
        if not data_lines:
            continue
        data = "\n".join(data_lines)
        if data.strip() == "[DONE]":
            out.done = True
            continue
        if out.done:
            out.problems.append("a part after data: [DONE]")
        try:
            part = json.loads(data)
        except ValueError:
            out.problems.append(f"a data line that is not JSON: {data[:80]!r}")
            continue
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            out.problems.append(f"a part without a type: {data[:80]!r}")
            continue
        out.parts.append(part)
        _read(out, part, open_texts)
    first = next((str(p["type"]) for p in out.parts if not is_data(p)), None)
    if first is not None and first != "start":
        out.problems.append(f"the stream starts with {first!r}, not 'start'")
    return out


def is_data(part: dict[str, Any]) -> bool:
    """A ``data-*`` part: app data the client keeps apart from the message, allowed
    anywhere in the stream, also before ``start`` (vercel/ai-chatbot writes
    ``data-chat-title`` as soon as the title is there, which may be first)."""
    return str(part.get("type")).startswith("data-")


def _read(out: UIStream, part: dict[str, Any], open_texts: set[str]) -> None:
    kind = part["type"]
    if kind == "start":
        mid = part.get("messageId")
        out.message_id = mid if isinstance(mid, str) else out.message_id
    elif kind == "text-start":
        open_texts.add(str(part.get("id")))
    elif kind == "text-delta":
        if str(part.get("id")) not in open_texts:
            out.problems.append(f"a text-delta for {part.get('id')!r} without its text-start")
        delta = part.get("delta")
        if isinstance(delta, str):
            out.text += delta
        else:
            out.problems.append(f"a text-delta whose delta is {delta!r}")
    elif kind == "text-end":
        open_texts.discard(str(part.get("id")))
    elif kind == "finish":
        out.finished = True
    elif kind == "error":
        text = part.get("errorText")
        out.error = text if isinstance(text, str) and text else "error"
