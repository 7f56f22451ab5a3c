"""Black-box targets: a backend in any language, over real sockets.

``--target-cmd CMD``: the harness starts CMD with the environment of C-RUN-1,
pointing it at its PostgreSQL (a TCP URL with user and password) and at the
scripted provider served as a real HTTP server, waits for ``GET /api/health``
and stops it at the end. ``--target-url URL``: a backend already running; the
provider is served on ``--provider-port`` for it to use.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from harness.config import RunConfig
from harness.db import Database
from harness.errors import ConfigError, TargetError
from harness.processes import Child, free_port
from harness.targets._base import Target

if TYPE_CHECKING:
    from harness.provider.remote import ProviderServer

API_KEY = "chat-harness-test-key"


def healthy(base_url: str, path: str = "/api/health") -> bool:
    """Whether `GET /api/health` answers 200 (C-RUN-2) right now (a profile's ready
    route: 2xx or 3xx)."""
    return health_problem(base_url, path) is None


def health_problem(base_url: str, path: str = "/api/health") -> str | None:
    """Why `GET /api/health` does not answer 200 right now, in words; None if it does."""
    try:
        response = httpx.get(f"{base_url}{path}", timeout=2.0, trust_env=False)
    except httpx.ConnectError as exc:
        text = str(exc)
        return ("the connection was refused: nothing listens there" if "refused" in text
                else f"cannot connect: {text}")
    except httpx.TimeoutException:
        return "no answer within 2 s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if path != "/api/health" and 200 <= response.status_code < 400:
        return None  # a profile's ready route (a page, a redirect to a login)
    if response.status_code != 200:
        return f"it answered {response.status_code}, not 200"
    return None


def _provider_server(config: RunConfig) -> ProviderServer:
    from harness.provider.remote import ProviderServer

    return ProviderServer(port=config.provider_port)


def backend_env(config: RunConfig, *, port: int, db: Database | None, provider_url: str
                ) -> dict[str, str]:
    """C-RUN-1: what CMD finds in its environment (plus CHAT_HARNESS_MUTANT and
    CHAT_HARNESS_VARIANT, read by the reference backend)."""
    env = dict(os.environ)
    env.pop("CHAT_HARNESS_MUTANT", None)
    env.pop("CHAT_HARNESS_VARIANT", None)
    env.update({
        "PORT": str(port),
        "OPENROUTER_BASE_URL": provider_url,
        "OPENROUTER_API_KEY": API_KEY,
        "JWT_SECRET": config.jwt_secret,
        "PROVIDER_TIMEOUT_MS": str(config.provider_timeout_ms),
    })
    if db is not None:
        if db.tcp_url is None:
            raise ConfigError(f"the {db.kind} database has no TCP URL for the backend",
                              hint="use --db embedded, --db container or a TCP --db-url")
        env["DATABASE_URL"] = db.tcp_url
    if config.mutants:
        env["CHAT_HARNESS_MUTANT"] = ",".join(sorted(config.mutants))
    if config.variants:
        env["CHAT_HARNESS_VARIANT"] = ",".join(sorted(config.variants))
    if config.profile is not None:  # the names the backend reads instead (its profile's env)
        env.update(config.profile.environment({
            "port": env["PORT"], "database_url": env.get("DATABASE_URL", ""),
            "provider_url": provider_url, "provider_api_key": API_KEY,
            "jwt_secret": config.jwt_secret,
            "provider_timeout_ms": str(config.provider_timeout_ms)}))
    return env


@contextlib.asynccontextmanager
async def command(config: RunConfig, db: Database, *, log: Path) -> AsyncIterator[Target]:
    """Start ``config.target_cmd`` against ``db`` and a provider server; stop both after.

    CMD runs through ``/bin/sh -c`` under the guard (:class:`~harness.processes.Child`):
    a harness killed outright takes the shell and all it started along.
    """
    assert config.target_cmd
    with _provider_server(config) as server, contextlib.ExitStack() as stack:
        port = free_port()
        env = backend_env(config, port=port, db=db, provider_url=server.base_url)
        child = Child(config.target_cmd, log=log, env=env,
                      what=f"the backend (--target-cmd {config.target_cmd!r})")
        stack.callback(child.stop)
        base = f"http://127.0.0.1:{port}"
        child.wait_ready(lambda: healthy(base, config.ready_path),
                         timeout_s=config.start_timeout_s,
                         hint=f"CMD must listen on $PORT ({port}) and answer GET /api/health "
                         "with 200; its environment is described in harness/contract/CONTRACT.md "
                         "(C-RUN-1)")
        label = f"--target-cmd {config.target_cmd!r}" + "".join(
            f" --mutant {m}" for m in sorted(config.mutants)) + "".join(
            f" --variant {v}" for v in sorted(config.variants))
        async with httpx.AsyncClient(base_url=base, trust_env=False,
                                     cookies=no_cookies()) as client:
            yield Target(
                name=label, client=client, provider=server.provider,
                provider_timeout_ms=config.provider_timeout_ms, provider_api_key=API_KEY,
                description=f"black box: pid {child.command_pid} on {base}, log {log}",
                log=str(log), alive=child.alive,
            )


@contextlib.asynccontextmanager
async def url(config: RunConfig) -> AsyncIterator[Target]:
    """A running backend at ``config.target_url``; the provider on ``--provider-port``."""
    assert config.target_url
    base = config.target_url
    with _provider_server(config) as server:
        problem = health_problem(base, config.ready_path)
        if problem is not None:
            raise TargetError(
                f"GET {base}/api/health: {problem}",
                hint="start the backend first, with OPENROUTER_BASE_URL="
                f"{server.base_url} (fix the port with --provider-port)" if "answered" not in
                problem else "the backend must answer GET /api/health with 200 once it is "
                "ready (C-RUN-2)",
            )
        async with httpx.AsyncClient(base_url=base, trust_env=False,
                                     cookies=no_cookies()) as client:
            yield Target(
                name=f"--target-url {base}", client=client,
                provider=server.provider,
                provider_timeout_ms=config.provider_timeout_ms, provider_api_key=API_KEY,
                description=f"running backend at {base}; provider at "
                f"{server.base_url}",
            )


def no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing: every request carries exactly the cookies its step
    sends (a cookie login's, per actor), never one a previous answer set. A login route
    that sees an old session cookie answers without a new one (vercel/ai-chatbot's guest
    route redirects), so a kept cookie would log every later actor in as no one. (A jar,
    not an httpx.Cookies: a client copies those into a jar of its own.)"""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


__all__ = ["API_KEY", "backend_env", "command", "url"]
