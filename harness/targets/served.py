"""The reference backend on a loopback port, for tools that speak plain HTTP (fuzz).

schemathesis sends its requests with its own HTTP client from its own worker
threads; the reference's connection pool lives on the event loop that opened
it. Serving the app with uvicorn on its own thread and loop, on
``127.0.0.1:<free port>``, satisfies both, and makes the in-process run take
the very road a ``--target-url`` run takes (real sockets, real headers).

The provider behind it is the scripted engine with a default reply, so every
chat request that reaches the provider is answered 200 (nobody scripts the
calls of generated requests).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from harness.errors import TargetError
from harness.provider import Reply, ScriptedProvider
from harness.targets.inprocess import quiet

if TYPE_CHECKING:
    import uvicorn

    from harness.db import Database

DEFAULT_REPLY = "A default answer of the scripted provider,\nover two lines."  # C-STREAM-1
START_TIMEOUT_S = 30.0


@contextlib.contextmanager
def serve_reference(db: Database, *, jwt_secret: str, mutants: frozenset[str] = frozenset(),
                    provider_timeout_ms: int = 1000, reply: str = DEFAULT_REPLY,
                    ) -> Iterator[str]:
    """Serve the reference on a free loopback port; yields its base URL; stops it after."""
    import uvicorn

    from harness.provider.inprocess import BASE_URL, transport
    from harness.reference import Settings, create_app
    from harness.targets._base import Target

    engine = ScriptedProvider(default=Reply(content=reply))
    settings = Settings(
        database_url=db.url, provider_base_url=BASE_URL,
        provider_api_key=Target.provider_api_key, jwt_secret=jwt_secret,
        provider_timeout_ms=provider_timeout_ms, mutants=mutants,
    )
    app = create_app(settings, provider_transport=transport(engine, BASE_URL))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = threading.Event()  # set when the server has started, or has given up

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            ready.set()

    server = Server(uvicorn.Config(
        app, log_level="critical", lifespan="on", access_log=False,
        timeout_graceful_shutdown=2,
    ))
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by the waiting thread
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=serve, name="chat-harness-reference", daemon=True)
    # A 500 is reported by the checks, with its reproduction; its traceback on
    # stderr would only bury that report.
    with quiet():
        thread.start()
        try:
            yield _started(server, ready, failure, port)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def _started(server: uvicorn.Server, ready: threading.Event, failure: list[BaseException],
             port: int) -> str:
    if not ready.wait(START_TIMEOUT_S):
        raise TargetError(f"the reference backend did not start within "
                          f"{START_TIMEOUT_S:.0f} s", hint="is the machine overloaded?")
    if not server.started:
        cause = f": {failure[0]}" if failure else ""
        raise TargetError(f"the reference backend did not start{cause}",
                          hint="run 'python -m harness.reference' to see its log")
    return f"http://127.0.0.1:{port}"
