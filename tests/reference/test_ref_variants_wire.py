"""Benign variants that change the framing: seen in the ASGI messages and on a real socket."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from refkit import FakeProvider, bearer, settings, sse, token_chunk

from harness.reference import create_app

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
Message = dict[str, Any]


@asynccontextmanager
async def asgi_app(db: str, *names: str, provider: FakeProvider | None = None
                   ) -> AsyncIterator[Any]:
    provider = provider or FakeProvider()
    app = create_app(settings(db, variants=frozenset(names)),
                     provider_transport=provider.transport())
    async with app.router.lifespan_context(app):
        yield app


async def exchange(app: Any, method: str, path: str, body: bytes | list[bytes] = b"",
                   headers: dict[str, str] | None = None, *,
                   read: list[int] | None = None) -> list[Message]:
    """Every ASGI message the app sends for one request (``body`` in pieces: one
    ``http.request`` each). ``read`` gets, per message sent, how many pieces the app
    had received by then."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("backend.test", 80), "client": ("127.0.0.1", 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[Message] = []
    pieces = list(body) if isinstance(body, list) else [body]
    delivered = 0

    async def receive() -> Message:
        nonlocal delivered
        if delivered < len(pieces):
            delivered += 1
            return {"type": "http.request", "body": pieces[delivered - 1],
                    "more_body": delivered < len(pieces)}
        await asyncio.Event().wait()  # no disconnect until the answer is over
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)
        if read is not None:
            read.append(delivered)

    await app(scope, receive, send)
    return sent


def bodies(messages: list[Message]) -> list[bytes]:
    return [m.get("body", b"") for m in messages if m["type"] == "http.response.body"]


def header_names(messages: list[Message]) -> set[bytes]:
    return {name.lower() for name, _ in messages[0]["headers"]}


async def test_chunked_json_has_no_content_length_and_several_pieces(db: str) -> None:
    async with asgi_app(db, "chunked-json") as app:
        messages = await exchange(app, "GET", "/api/chat/no-such-route")
    assert messages[0]["status"] == 404 and b"content-length" not in header_names(messages)
    pieces = bodies(messages)
    assert len(pieces) > 1 and all(len(p) <= 64 for p in pieces)
    assert b"".join(pieces).startswith(b'{"error"')
    assert [m.get("more_body", False) for m in messages[1:]][-1] is False


@pytest.mark.parametrize(("name", "drained"), [("connection-close", True),
                                               ("extra-headers", False)])
async def test_connection_close_reads_the_request_to_its_end(db: str, name: str,
                                                             drained: bool) -> None:
    """The 413 comes from Content-Length alone; closing with the body unread would reset
    the connection before the client reads the 413 (seen on the wire, lingering close)."""
    read: list[int] = []
    async with asgi_app(db, name) as app:
        messages = await exchange(app, "POST", "/api/chat", [b"{", b" " * 10, b"}"],
                                  {"content-type": "application/json",
                                   "content-length": str(10 * 1024 * 1024 + 1), **bearer()},
                                  read=read)
    assert messages[0]["status"] == 413
    assert read[-1] == (3 if drained else 0)


async def test_stream_small_chunks(db: str) -> None:
    text = "Grüße, \U0001f600 world"
    provider = FakeProvider(sse(token_chunk(text), token_chunk(finish="stop")))
    async with asgi_app(db, "stream-small-chunks", provider=provider) as app:
        body = b'{"message": "hi", "model": "m"}'
        messages = await exchange(app, "POST", "/api/chat/stream", body,
                                  {"content-type": "application/json", **bearer()})
    pieces = bodies(messages)
    assert messages[0]["status"] == 200 and all(len(p) <= 3 for p in pieces)
    streamed, _, last = b"".join(pieces).decode().rpartition("\n")
    assert streamed == text and '"response":"' + text + '"' in last
    # a character is cut between two chunks
    assert any(not _decodes(p) for p in pieces)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def test_final_line_held_back_only_at_the_end(db: str) -> None:
    """A text piece that starts like a final line is passed on as text."""
    provider = FakeProvider(sse(token_chunk("a"), token_chunk('\n{"x": 1}'),
                                token_chunk(finish="stop")))
    async with asgi_app(db, "extra-fields", provider=provider) as app:
        messages = await exchange(app, "POST", "/api/chat/stream",
                                  b'{"message": "hi", "model": "m"}',
                                  {"content-type": "application/json", **bearer()})
    body = b"".join(bodies(messages)).decode()
    assert body.startswith('a\n{"x": 1}\n{') and '"x_variant":"extra-fields"' in body
    assert '{"x": 1, "x_variant"' not in body


# -- on the wire: python -m harness.reference with the variants on ----------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raw_get(port: int, path: str, extra: str = "") -> bytes:
    """One HTTP/1.1 request; the answer's bytes up to the server closing the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_on_the_wire_chunked_close_server_gzip(db: str) -> None:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": db, "PYTHONPATH": str(REPO),
           "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1",
           "CHAT_HARNESS_VARIANT": "chunked-json,connection-close,server-header,gzip"}
    process = subprocess.Popen([sys.executable, "-m", "harness.reference"], env=env, cwd=REPO,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the server's own log says when it listens
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail(f"server exited early with {process.wait()}")
        # the server closes the connection after each answer (Connection: close),
        # which is what ends these reads
        head, _, body = _raw_get(port, "/api/chat/no-such-route").partition(b"\r\n\r\n")
        lines = [h.lower() for h in head.split(b"\r\n")[1:]]
        assert b"transfer-encoding: chunked" in lines and b"connection: close" in lines
        assert not any(h.startswith(b"content-length") for h in lines)
        assert [h for h in lines if h.startswith(b"server:")] == [b"server: nginx/1.27.0"]
        assert b'"code":"not_found"' in _dechunk(body)
        head, _, body = _raw_get(port, "/api/chat/no-such-route",
                                 "Accept-Encoding: gzip\r\n").partition(b"\r\n\r\n")
        assert b"content-encoding: gzip" in head.lower()
        assert b'"code":"not_found"' in gzip.decompress(_dechunk(body))
    finally:
        process.terminate()
        process.wait(timeout=15)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out
