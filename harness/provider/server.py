"""The scripted provider as a real HTTP server, for backends the harness cannot reach into.

A black-box backend (any language, its own process) is pointed at this server
with ``OPENROUTER_BASE_URL=http://HOST:PORT/api/v1``. Everything under
``/api/v1`` goes to :meth:`ScriptedProvider.handle`, exactly as the in-process
respx adapter does, but over a real socket: delays are real sleeps before the
headers, streamed answers are real chunked bodies with the scripted gaps, and
a scripted cut really drops the connection mid-body (the client sees an
incomplete chunked read, not a clean end).

The runner drives the engine through a control API under ``/_chat-harness/``,
a prefix no OpenRouter path can have (see :mod:`harness.provider.remote`).
Everything runs in the server's one event loop, so the engine needs no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from harness.provider import wire
from harness.provider.engine import Outgoing, ScriptedProvider
from harness.provider.journal import ServerJournal

PROVIDER_PREFIX = wire.PROVIDER_PREFIX
CONTROL_PREFIX = wire.CONTROL_PREFIX
DEFAULT_PORT = 9100
_INCOMPLETE = "ASGI callable returned without "  # ... starting / completing response


class _ScriptedCuts(logging.Filter):
    """Hides uvicorn's complaint about an unfinished response when we cut on purpose.

    uvicorn closes the connection when an app returns mid-body (what a cut
    needs) and logs an error; each scripted cut (or answer ended by the
    server's stop) expects exactly one such line.
    """

    def __init__(self) -> None:
        super().__init__()
        self.expected = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.expected and record.getMessage().startswith(_INCOMPLETE):
            self.expected -= 1
            return False
        return True


_CUTS = _ScriptedCuts()


# -- the provider side ----------------------------------------------------------


class ProviderEndpoint:
    """Raw ASGI for ``/api/v1/...``: record the call, then answer as scripted.

    Raw ASGI rather than a Starlette response, because a scripted cut must end
    the response without its final chunk, which no response class does.
    """

    def __init__(self, engine: ScriptedProvider, journal: ServerJournal | None = None) -> None:
        self.engine = engine
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers: dict[str, str] = {}
        for name, value in Headers(scope=scope).items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if self.journal is not None:
            self.journal.apply(self.engine)  # the harness's commands written so far
        out = self.engine.handle(scope["method"], scope["path"], headers, bytes(body))
        if self.journal is not None:
            self.journal.record(self.engine.calls[-1])  # before the answer goes out
        # Answer, unless the client gives up first (its own timeout during a
        # delay or a gap): then stop, as a real provider would.
        answering = asyncio.ensure_future(_answer(out, send))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({answering, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # uvicorn is stopping and its grace period is over: end this answer
            # like a cut (the connection closes) rather than with a traceback
            _CUTS.expected += 1
            return
        finally:
            for task in (answering, gone):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(answering, gone, return_exceptions=True)
        if answering.cancelled():  # the client left first
            return
        error = answering.exception()
        if error is not None:
            raise error
        if answering.result():  # the scripted cut: return mid-body and uvicorn closes
            _CUTS.expected += 1


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(out: Outgoing, send: Send) -> bool:
    """Send ``out`` with its real delay and gaps; True when it ends in a cut."""
    if out.delay_s:
        await asyncio.sleep(out.delay_s)  # the provider's latency, before the headers
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                   for k, v in out.headers.items()]
    if out.chunks is None:
        if not any(k == b"content-length" for k, _ in raw_headers):
            raw_headers.append((b"content-length", str(len(out.body)).encode()))
        await send({"type": "http.response.start", "status": out.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": out.body, "more_body": False})
        return False
    # no content-length: a chunked body, each scripted chunk flushed as it comes
    await send({"type": "http.response.start", "status": out.status, "headers": raw_headers})
    for wait, data in out.chunks:
        if wait:
            await asyncio.sleep(wait)  # the scripted gap between chunks
        await send({"type": "http.response.body", "body": data, "more_body": True})
    if out.cut:
        return True
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return False


# -- the control side -------------------------------------------------------------


def _json(data: Any, status: int = 200) -> Response:
    # json.dumps, not JSONResponse: recorded bodies may hold NaN, and must round-trip
    return Response(json.dumps(data).encode(), status_code=status, media_type="application/json")


def _bad(message: str) -> Response:
    return _json({"error": message}, 400)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise wire.WireError(f"the request body is not JSON: {exc}") from None


def _step_value(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise wire.WireError(f"step must be an integer or null, got {value!r}")


def control_routes(engine: ScriptedProvider, journal: ServerJournal | None = None
                   ) -> list[Route]:
    """The control API: what the runner does to an in-process engine, over HTTP (the
    journal's commands written so far applied first, so both ways keep their order)."""

    async def health(request: Request) -> Response:
        """Whether the provider is up: ``{"status": "ok", "pid", "provider_path"}``."""
        return _json({"status": "ok", "pid": os.getpid(), "provider_path": PROVIDER_PREFIX})

    async def reset(request: Request) -> Response:
        """Forget every plan, call and step (between scenarios)."""
        engine.reset()
        return _json({"ok": True})

    async def get_step(request: Request) -> Response:
        """The step the calls are recorded under: ``{"step": N or null}``."""
        return _json({"step": engine.step})

    async def put_step(request: Request) -> Response:
        """Record later calls under ``{"step": N or null}`` (by hand; the runner uses
        begin-step)."""
        try:
            data = await _body(request)
            if not isinstance(data, dict) or "step" not in data:
                raise wire.WireError('expected {"step": N or null}')
            engine.step = _step_value(data["step"])
        except wire.WireError as exc:
            return _bad(str(exc))
        return _json({"step": engine.step})

    async def plan(request: Request) -> Response:
        """Plan the next answer: ``{"answer": {...}, "for_model": name or null}``; answers
        ``{"ok": true, "pending": N}``."""
        try:
            data = await _body(request)
            if not isinstance(data, dict) or "answer" not in data:
                raise wire.WireError('expected {"answer": {...}, "for_model": name or null}')
            for_model = data.get("for_model")
            if for_model is not None and not isinstance(for_model, str):
                raise wire.WireError(f"for_model must be a string or null, got {for_model!r}")
            engine.plan(wire.answer_from_json(data["answer"]), for_model=for_model)
        except wire.WireError as exc:
            return _bad(str(exc))
        return _json({"ok": True, "pending": len(engine.pending())})

    async def calls(request: Request) -> Response:
        """The calls the backend made, ``?step=N`` (or ``null``) for one step's:
        ``{"calls": [...]}``."""
        calls = engine.calls
        if "step" in request.query_params:
            text = request.query_params["step"]
            if text in ("", "null", "none"):
                calls = [c for c in calls if c.step is None]
            else:
                try:
                    calls = engine.calls_in_step(int(text))
                except ValueError:
                    return _bad(f"step must be an integer or null, got {text!r}")
        return _json({"calls": [wire.call_to_json(c) for c in calls]})

    async def pending(request: Request) -> Response:
        """The planned answers nobody asked for yet: ``{"pending": [...]}``."""
        return _json({"pending": wire.pending_to_json(engine.pending())})

    async def discard_pending(request: Request) -> Response:
        """Drop the planned answers nobody asked for."""
        engine.discard_pending()
        return _json({"ok": True})

    async def begin_step(request: Request) -> Response:
        """Start step N with its planned answers, in one round trip: ``{"step": N, "plans":
        [{"answer": {...}, "for_model": name or null}, ...]}``."""
        try:
            data = await _body(request)
            if not isinstance(data, dict) or "step" not in data:
                raise wire.WireError('expected {"step": N, "plans": [{"answer": {...}, '
                                     '"for_model": name or null}, ...]}')
            step = _step_value(data["step"])
            if step is None:
                raise wire.WireError("step must be an integer")
            plans = [wire.plan_from_json(item) for item in data.get("plans") or []]
            sides = [wire.side_from_json(item) for item in data.get("sides") or []]
        except wire.WireError as exc:
            return _bad(str(exc))
        engine.begin_step(step, plans, sides)
        return _json({"step": step, "pending": len(engine.pending())})

    async def end_step(request: Request) -> Response:
        """End step N: ``{"step": N}``; answers its calls and its untaken answers (then
        discarded): ``{"calls": [...], "pending": [...]}``."""
        try:
            data = await _body(request)
            step = _step_value(data.get("step") if isinstance(data, dict) else None)
            if step is None:
                raise wire.WireError('expected {"step": N}')
        except wire.WireError as exc:
            return _bad(str(exc))
        end = engine.end_step(step)
        return _json({"calls": [wire.call_to_json(c) for c in end.calls],
                      "pending": wire.pending_to_json(end.pending)})

    def synced(handler: Callable[[Request], Awaitable[Response]]
               ) -> Callable[[Request], Awaitable[Response]]:
        if journal is None:
            return handler

        async def handle(request: Request) -> Response:
            journal.apply(engine)
            return await handler(request)
        return handle

    p = CONTROL_PREFIX
    return [Route(path, synced(handler), methods=[method]) for path, handler, method in (
        (f"{p}/begin-step", begin_step, "POST"),
        (f"{p}/end-step", end_step, "POST"),
        (f"{p}/health", health, "GET"),
        (f"{p}/reset", reset, "POST"),
        (f"{p}/step", get_step, "GET"),
        (f"{p}/step", put_step, "PUT"),
        (f"{p}/plan", plan, "POST"),
        (f"{p}/calls", calls, "GET"),
        (f"{p}/pending", pending, "GET"),
        (f"{p}/discard-pending", discard_pending, "POST"),
    )]


def create_app(engine: ScriptedProvider | None = None,
               journal: ServerJournal | None = None) -> Starlette:
    """One engine behind both faces: ``/api/v1/...`` and ``/_chat-harness/...``."""
    engine = engine if engine is not None else ScriptedProvider()
    endpoint = ProviderEndpoint(engine, journal)
    app = Starlette(routes=[
        *control_routes(engine, journal),
        Route(PROVIDER_PREFIX, endpoint),  # a class instance: Starlette routes it as raw ASGI
        Route(PROVIDER_PREFIX + "/{rest:path}", endpoint),
    ])
    app.state.engine = engine
    return app


# -- running it ----------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, made as asyncio's own ``create_server`` would make it.

    The protocol must be IPPROTO_TCP, not 0 (what ``socket.create_server``
    leaves): asyncio only sets TCP_NODELAY on such sockets, and without it
    every keep-alive answer waits ~40 ms for a delayed ACK (Nagle).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{PROVIDER_PREFIX}"


def _write_port_file(path: Path, port: int) -> None:
    # write-then-rename: a reader polling the file never sees half a number
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    port_file: str | os.PathLike[str] | None = None,
    *,
    engine: ScriptedProvider | None = None,
    log_level: str = "warning",
    journal: str | os.PathLike[str] | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT; return the exit code (0: stopped cleanly).

    The socket is bound before anything is announced, so the announced port
    (the real one when ``port`` is 0) accepts connections at once. The port is
    printed as one line on stdout and, if asked, written to ``port_file``
    (removed again on exit).
    """
    import uvicorn

    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(f"chat-harness provider: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    bound = sock.getsockname()[1]
    journal_ = ServerJournal(Path(journal)) if journal is not None else None
    config = uvicorn.Config(
        create_app(engine, journal_), log_level=log_level, access_log=False, lifespan="off",
        http="h11", ws="none", loop="asyncio",
        timeout_graceful_shutdown=1,  # an answer dripping for minutes must not hold the stop
    )
    logging.getLogger("uvicorn.error").addFilter(_CUTS)
    server = uvicorn.Server(config)

    # uvicorn handles SIGTERM/SIGINT while serving, then re-raises the signal to
    # the handler it found; ours only asks the server to stop, so the re-raise
    # (and a signal during start-up) ends in a clean exit instead of a
    # KeyboardInterrupt or death by SIGTERM.
    def stop(signum: int, frame: Any) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    written: Path | None = None
    try:
        print(f"chat-harness provider listening on {_url(host, bound)}", flush=True)
        if port_file is not None:
            written = Path(port_file)
            _write_port_file(written, bound)
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        if written is not None:
            written.unlink(missing_ok=True)
        if journal_ is not None:
            journal_.close()
    return 0
