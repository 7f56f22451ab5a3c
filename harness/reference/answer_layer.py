"""An ASGI middleware that changes how answers leave the app, not what they mean.

The benign variants (variants.py) use it to answer the way another correct
backend could: other JSON layout, other headers, other framing. Each variant
is a `Layer`; the middleware applies every active layer to every answer.

JSON bodies (`application/json`) are read whole, changed and sent again with
a fitting `Content-Length` (or chunked). Any other body (the stream of
`POST /api/chat/stream`) passes through as it comes; only its final line
(`"\\n{...}"`, sent as one piece by streaming.py) is held back until the body
ends, so that the JSON in it can be changed too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STREAM_PATH = "/api/chat/stream"
JSON_PIECE = 64  # bytes per chunk of a chunked JSON body


@dataclass(frozen=True)
class Answer:
    """What a change may look at: the request's route and the answer's status."""

    method: str
    path: str
    status: int
    final_line: bool = False  # the stream's final line, not a whole body

    @property
    def error(self) -> bool:
        return self.status >= 400


JsonChange = Callable[[Any, Answer], Any]
HeaderChange = Callable[[MutableHeaders, Answer], None]


@dataclass(frozen=True)
class Layer:
    """How one variant changes the answers; the defaults change nothing."""

    json: JsonChange | None = None  # every JSON document: bodies and the final line
    last: bool = False  # apply `json` after the other layers' (key order)
    headers: HeaderChange | None = None
    indent: int | None = None  # JSON bodies (the final line stays one line)
    ascii_only: bool = False  # "\\u00e9" for "é", "\\/" for "/"
    chunked: bool = False  # JSON bodies in pieces, without Content-Length
    stream_piece: int = 0  # other bodies re-cut into pieces of this many bytes
    title_case: bool = False  # header names as "X-Request-Id"
    # read what is left of the request body before an answer ends: a server that closes
    # the connection must not leave unread bytes behind, or the client's side is reset
    # before it reads the answer (RFC 9112 section 9.6, "lingering close")
    drain_request: bool = False


def render(doc: Any, *, indent: int | None = None, ascii_only: bool = False) -> bytes:
    """JSON text of `doc`; a lone surrogate (valid JSON) falls back to ASCII escapes."""
    separators = None if indent is not None else (",", ":")
    text = json.dumps(doc, ensure_ascii=ascii_only, allow_nan=False, indent=indent,
                      separators=separators)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = json.dumps(doc, ensure_ascii=True, allow_nan=False, indent=indent,
                          separators=separators).encode("ascii")
    if ascii_only:
        # "/" occurs in JSON text only inside strings, where "\/" means "/"
        data = data.replace(b"/", b"\\/")
    return data + b"\n" if indent is not None else data


class AnswerLayer:
    """The middleware: every layer, applied to every HTTP answer."""

    def __init__(self, app: ASGIApp, layers: Sequence[Layer]) -> None:
        self.app = app
        ordered = sorted(layers, key=lambda layer: layer.last)
        self.json_changes = [layer.json for layer in ordered if layer.json is not None]
        self.header_changes = [layer.headers for layer in layers if layer.headers is not None]
        self.indent = next((layer.indent for layer in layers if layer.indent is not None), None)
        self.ascii_only = any(layer.ascii_only for layer in layers)
        self.chunked = any(layer.chunked for layer in layers)
        self.stream_piece = min((layer.stream_piece for layer in layers if layer.stream_piece),
                                default=0)
        self.title_case = any(layer.title_case for layer in layers)
        self.drain_request = any(layer.drain_request for layer in layers)
        self.changes_documents = bool(self.json_changes) or self.ascii_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reply = _Reply(self, scope, receive, send)
        await self.app(scope, reply.receive, reply.send)

    def document(self, doc: Any, answer: Answer) -> Any:
        for change in self.json_changes:
            doc = change(doc, answer)
        return doc

    def body(self, raw: bytes, answer: Answer) -> bytes | None:
        """The changed JSON body; None when it is not JSON (kept as it is)."""
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return render(self.document(doc, answer), indent=self.indent, ascii_only=self.ascii_only)

    def final_line(self, raw: bytes, answer: Answer) -> bytes:
        try:
            doc = json.loads(raw[1:])
        except ValueError:
            return raw
        return b"\n" + render(self.document(doc, answer), ascii_only=self.ascii_only)

    def change_headers(self, message: Message, answer: Answer) -> None:
        headers = MutableHeaders(scope=message)
        for change in self.header_changes:
            change(headers, answer)
        if self.title_case:
            message["headers"] = [(name.title(), value) for name, value in message["headers"]]


class _Reply:
    """One answer on its way out."""

    def __init__(self, layer: AnswerLayer, scope: Scope, receive: Receive, send: Send) -> None:
        self.layer = layer
        self.incoming = receive
        self.request_done = False  # the whole request body was received (or the client left)
        self.out = send
        self.method = str(scope.get("method", ""))
        self.path = str(scope.get("path", ""))
        self.start: Message = {}
        self.is_json = False
        self.parts: list[bytes] = []
        self.held: bytes | None = None  # a possible final line of the stream

    async def receive(self) -> Message:
        message = await self.incoming()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.request_done = True
        return message

    async def _drain(self) -> None:
        while self.layer.drain_request and not self.request_done:
            await self.receive()

    def answer(self, *, final_line: bool = False) -> Answer:
        return Answer(self.method, self.path, int(self.start.get("status", 0)), final_line)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            media = Headers(raw=message.get("headers", [])).get("content-type", "")
            self.is_json = media.partition(";")[0].strip().lower() == "application/json"
            if not self.is_json:
                self.layer.change_headers(message, self.answer())
                await self.out(message)
            return
        if message["type"] != "http.response.body":
            await self.out(message)
            return
        body, more = message.get("body", b""), bool(message.get("more_body", False))
        if self.is_json:
            self.parts.append(body)
            if not more:
                await self._send_json(b"".join(self.parts))
            return
        await self._stream(body, more)

    async def _send_json(self, raw: bytes) -> None:
        answer = self.answer()
        changed = self.layer.body(raw, answer)
        headers = MutableHeaders(scope=self.start)
        if changed is not None:
            if self.layer.chunked:
                del headers["content-length"]
            else:
                headers["content-length"] = str(len(changed))
        self.layer.change_headers(self.start, answer)
        await self.out(self.start)
        body = raw if changed is None else changed
        pieces = _cut(body, JSON_PIECE) if self.layer.chunked and changed is not None else [body]
        for n, piece in enumerate(pieces):
            if n == len(pieces) - 1:
                await self._drain()
            await self.out({"type": "http.response.body", "body": piece,
                            "more_body": n < len(pieces) - 1})

    async def _stream(self, body: bytes, more: bool) -> None:
        if not body and more:
            return
        if self.held is not None:
            held, self.held = self.held, None
            if not body and not more:  # nothing came after it: it was the final line
                held = self.layer.final_line(held, self.answer(final_line=True))
            await self._emit(held, True)
        if self.layer.changes_documents and self.path == STREAM_PATH and body.startswith(b"\n{"):
            if more:
                self.held = body
                return
            body = self.layer.final_line(body, self.answer(final_line=True))
        await self._emit(body, more)

    async def _emit(self, body: bytes, more: bool) -> None:
        pieces = _cut(body, self.layer.stream_piece) if self.layer.stream_piece else [body]
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            if last and not more:
                await self._drain()
            await self.out({"type": "http.response.body", "body": piece,
                            "more_body": more or not last})


def _cut(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [data]
