"""pytest fixtures: Python tests drive a backend with the machinery of the scenarios.

- ``chat_backend``: the backend of the session, started (the in-process reference by
  default, or what ``--target-cmd`` / ``--target-url`` name), with a client that
  signs each actor's JWT, and :meth:`ChatBackend.chat`, the correct front end of a
  ``chat:`` step (post, pair the answer, sync the pair or the failed message).
- ``chat_provider``: the scripted provider the backend calls: queue a reply, an
  error (a 429 with ``Retry-After``), a cut stream, for the next calls; read the
  calls it got.
- ``chat_db``: the harness's PostgreSQL (``query``, ``connection``); the test is
  skipped where the harness has no database (``--target-url`` without ``--db-url``).

Lazy: nothing starts until a test asks for one of them; the backend and the
database are then the session's (one start for every test and scenario), and
each test begins with empty chat tables and an empty provider script. Loaded by
:mod:`harness.plugin`, so importing this costs nothing heavy.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx
    import psycopg

    from harness.db import Database
    from harness.provider import Answer, ProviderCall, ProviderControl
    from harness.runner.client import ChatClient
    from harness.runner.session import Harness

_STEP = 1  # the provider records a test's calls as one step


class ChatBackend:
    """The started backend, for one test: requests as an actor (a JWT each), and chat
    turns as the scenarios' front end plays them."""

    def __init__(self, harness: Harness, name: str) -> None:
        self.harness = harness
        self._users: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._seed = name
        self._clients: dict[str, ChatClient] = {}

    @property
    def name(self) -> str:
        """``reference``, ``cmd`` or ``url``: what the harness started or reached."""
        assert self.harness.target is not None
        return self.harness.target.name

    @property
    def client(self) -> httpx.AsyncClient:
        """The session's own client (async; run a coroutine with :meth:`call`)."""
        assert self.harness.target is not None
        return self.harness.target.client

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the loop the client lives on, to its end."""
        return self.harness.call(coro)

    # -- identity ------------------------------------------------------------------
    def user_id(self, actor: str = "alice") -> str:
        """The actor's user id (a UUID of its own in each test)."""
        if actor not in self._users:
            self._users[actor] = str(uuid.uuid4())
        return self._users[actor]

    def token(self, actor: str = "alice", **claims: Any) -> str:
        """A valid HS256 JWT of the actor (``sub`` its user id, an hour to live), signed
        with the backend's JWT_SECRET; ``claims`` add to or replace its claims."""
        import time

        import jwt

        if not claims and actor in self._tokens:
            return self._tokens[actor]
        body = {"sub": self.user_id(actor), "exp": int(time.time()) + 3600, **claims}
        token = jwt.encode(body, self.harness.config.jwt_secret, algorithm="HS256")
        if not claims:
            self._tokens[actor] = token
        return token

    def headers(self, actor: str = "alice") -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(actor)}"}

    # -- HTTP ----------------------------------------------------------------------
    def request(self, method: str, path: str, *, actor: str | None = "alice",
                **kwargs: Any) -> httpx.Response:
        """One request as ``actor`` (``actor=None``: no token); ``kwargs`` as httpx's."""
        headers = {**(self.headers(actor) if actor is not None else {}),
                   **kwargs.pop("headers", {})}
        return self.call(self.client.request(method, path, headers=headers, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    # -- the front end of a ``chat:`` step -----------------------------------------
    def session(self, actor: str = "alice") -> ChatClient:
        """The actor's chat front end: one conversation, its history as the user sees
        it (failed messages included), ids and timestamps as a ``chat:`` step makes."""
        if actor not in self._clients:
            from harness.runner.client import ChatClient, Clock

            now = datetime.now(UTC).replace(microsecond=0)
            rng = random.Random(f"{self._seed}/{actor}")
            session = f"conv_{int(now.timestamp() * 1000)}_" + "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(9))
            self._clients[actor] = ChatClient(session_id=session, clock=Clock(now), rng=rng)
        return self._clients[actor]

    def chat(self, text: str, *, model: str, actor: str = "alice",
             current_message_id: bool = True) -> Turn:
        """What a ``chat: TEXT`` step does: a new user message, ``POST /api/chat`` with
        the whole history; on 200 the answer is paired with ``request_id`` and the pair
        synced, else the message is flagged ``error: true`` and synced alone."""
        client = self.session(actor)
        step = len(client.chats)
        msg = client.user_message(text, model, step)
        body = client.chat_body(msg, model, current_id=current_message_id)
        answer = self.post("/api/chat", json=body, actor=actor)
        data = _json(answer).get("data") if answer.status_code == 200 else None
        from harness.runner.client import Chat

        client.chats.append(Chat(step=step, actor=actor, body=body,
                                 data=data if isinstance(data, dict) else None,
                                 sent_id=msg["id"]))
        if isinstance(data, dict):
            _, batch = client.on_success(data, step)
            sync_body: dict[str, Any] = {"messages": batch, "sessionId": client.session_id}
        else:
            failed = client.on_failure(msg, _json(answer))
            sync_body = {"message": failed, "sessionId": client.session_id}
        synced = self.post("/api/chat/messages", json=sync_body, actor=actor)
        return Turn(message=msg, answer=answer, sync=synced, session_id=client.session_id)


class Turn:
    """One chat turn: the user message sent, the chat answer, and the sync's answer."""

    def __init__(self, *, message: dict[str, Any], answer: httpx.Response,
                 sync: httpx.Response, session_id: str) -> None:
        self.message = message
        self.answer = answer
        self.sync = sync
        self.session_id = session_id

    @property
    def status(self) -> int:
        return self.answer.status_code

    def json(self) -> Any:
        return self.answer.json()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ChatProvider:
    """The scripted provider of the session's backend, emptied for each test: what it
    answers the next calls, and the calls it got."""

    def __init__(self, control: ProviderControl) -> None:
        self.control = control

    def plan(self, answer: Answer, *, for_model: str | None = None) -> ChatProvider:
        """Queue ``answer`` (a :mod:`harness.provider` answer) for the next call, or the
        next call for ``for_model``."""
        self.control.plan(answer, for_model=for_model)
        return self

    def reply(self, content: str, **kwargs: Any) -> ChatProvider:
        """A successful completion (``Reply``'s fields: ``usage``, ``delay_ms``, ...)."""
        from harness.provider import Reply

        return self.plan(Reply(content, **{k: v for k, v in kwargs.items()
                                           if k != "for_model"}),
                         for_model=kwargs.get("for_model"))

    def error(self, status: int, *, retry_after: int | str | None = None,
              message: str = "Provider error", for_model: str | None = None) -> ChatProvider:
        """An OpenRouter error answer, e.g. ``error(429, retry_after=60)``."""
        from harness.provider import ErrorAnswer

        return self.plan(ErrorAnswer(status, message=message, retry_after=retry_after),
                         for_model=for_model)

    def cut_stream(self, content: str, *, after: int = 1,
                   for_model: str | None = None) -> ChatProvider:
        """A streamed answer whose connection drops after ``after`` chunks of text."""
        from harness.provider import Reply

        return self.plan(Reply(content, cut_after=after), for_model=for_model)

    @property
    def calls(self) -> list[ProviderCall]:
        """The calls the backend made in this test, in order."""
        return self.control.calls_in_step(_STEP)

    @property
    def pending(self) -> list[Any]:
        """Planned answers no call has taken yet."""
        return self.control.pending()


class ChatDatabase:
    """The harness's PostgreSQL, the one the backend stores into."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.url = db.url

    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """Run ``sql``; the rows as dicts."""
        return self.db.query(sql, params)

    def connection(self) -> psycopg.Connection[Any]:
        """The harness's own psycopg connection (autocommit)."""
        return self.db.connection()


@pytest.fixture
def chat_backend(request: pytest.FixtureRequest) -> Iterator[ChatBackend]:
    """The session's backend, started on first use; chat tables and the provider script
    emptied for this test."""
    from harness.plugin import harness_of

    harness = harness_of(request.config)
    assert harness.target is not None
    if harness.has_db and harness.config.reset_db:  # as before each scenario
        harness.db.reset()
    harness.target.provider.reset()
    harness.target.provider.begin_step(_STEP)
    try:
        yield ChatBackend(harness, request.node.nodeid)
    finally:
        if harness.target is not None:
            harness.target.provider.end_step(_STEP)


@pytest.fixture
def chat_provider(chat_backend: ChatBackend) -> ChatProvider:
    """The scripted provider the backend of ``chat_backend`` calls."""
    assert chat_backend.harness.target is not None
    return ChatProvider(chat_backend.harness.target.provider)


@pytest.fixture
def chat_db(chat_backend: ChatBackend) -> ChatDatabase:
    """The PostgreSQL the backend stores into (skips the test where there is none)."""
    if not chat_backend.harness.has_db:
        pytest.skip("no database here: --target-url without --db-url")
    return ChatDatabase(chat_backend.harness.db)
