"""The ``ai-sdk`` protocol: a chat backend built on the AI SDK 5 (vercel/ai-chatbot's API).

A turn is ``POST {routes.chat}`` with ``{id: <chat uuid the client chose>,
message: {id: <uuid>, role: "user", parts: [{type: "text", text}]},
selectedChatModel, selectedVisibilityType}``, answered 200 with the UI message
stream (:mod:`.uistream`). The backend stores the conversation itself; the
harness reads it with the profile's ``messages_sql``. Login: a bearer JWT, or a
login route that sets a session cookie (one per actor).

What this protocol fixes of an answer (the protocol-specific expectations; the
invariants of :mod:`harness.checks.invariants` judge the rest): a provider
answer that succeeds is a 200 stream that starts with ``start``, carries the
text and ends with ``finish`` and ``data: [DONE]``, no ``error`` part; a
provider failure is an ``error`` part, or an error status (4xx/5xx); another
user's chat is refused with a 4xx.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from harness.contract.oracle import format_ts
from harness.errors import ScenarioError
from harness.profile import Profile
from harness.provider import Reply, Side
from harness.result import Check
from harness.scenario.frontend import Chat, Turn
from harness.scenario.match import short
from harness.scenario.model import ChatStep, ResyncStep, RetryStep
from harness.scenario.protocols import uistream
from harness.scenario.protocols.base import Adapter, Sent

if TYPE_CHECKING:
    from harness.result import Exchange
    from harness.scenario.view import RunView, StepRun

CHAT_NAMESPACE = uuid.UUID("0b6f0c9e-3f7d-4f6a-9a51-6c1f3a2e8d40")
TITLE = "A chat title"  # what the title request gets by default
CLAUSE = "ai-sdk"  # what a failure of the protocol's own expectations stands for


class AiSdk(Adapter):
    name = "ai-sdk"

    def __init__(self, profile: Profile | None = None) -> None:
        self.profile = profile or Profile(protocol="ai-sdk")
        self._cookies: dict[str, str] = {}  # actor -> Cookie header (cookie login)

    def default_sides(self) -> tuple[Side, ...]:
        """A new chat's title request (not streamed, next to the streamed chat call)
        gets a title, unless the scenario scripts it (``side:``)."""
        return (Side(Reply(content=TITLE), stream=False),)

    # -- the chat and its messages -------------------------------------------------
    def chat_id(self, run: RunView) -> str:
        """The chat's id, chosen by the client (a UUID, new for every scenario)."""
        return str(uuid.uuid5(CHAT_NAMESPACE, f"{run.user_id('alice')}/{run.client.session_id}"))

    def user_message(self, run: StepRun, text: str, model: str, index: int, *,
                     tick: bool) -> dict[str, Any]:
        client = run.client
        ts = client.clock.next() if tick else client.clock.now
        msg = {"id": str(uuid.UUID(int=client.rng.getrandbits(128), version=4)),
               "content": text, "role": "user", "timestamp": format_ts(ts),
               "originalModel": model}
        client.history.append(msg)
        client.step_of[msg["id"]] = index
        return msg

    def stored(self, run: RunView) -> list[dict[str, Any]] | None:
        """The chat's stored messages, read with the profile's SQL, as
        ``{id, role, text, parts}`` (``None``: no database to read)."""
        if run.db is None:
            return None
        rows = run.db.query(self.profile.messages_sql, {"chat_id": self.chat_id(run)})
        return [normalize(row) for row in rows]

    # -- login ----------------------------------------------------------------------
    async def _auth(self, run: StepRun, index: int, actor: str
                    ) -> tuple[bool, dict[str, str]]:
        """(send the bearer JWT, extra headers) for ``actor``."""
        login = self.profile.login
        if login.kind == "bearer":
            return True, {}
        if actor not in self._cookies:
            ex = await run.send(index, actor, login.method, login.route, auth=False,
                                purpose="login")
            cookies = cookie_pairs(ex.headers.get("set-cookie", ""))
            if ex.error or ex.status >= 400 or not cookies:
                raise ScenarioError(
                    f"logging in as {actor!r} with {login.method} {login.route} got "
                    f"{ex.brief()} and no session cookie",
                    location=run.scenario.location(index), key="login",
                    hint="the profile's login.route must answer with a Set-Cookie; or use "
                    "login: {kind: bearer}")
            self._cookies[actor] = "; ".join(cookies)
        return False, {"cookie": self._cookies[actor]}

    # -- a turn -----------------------------------------------------------------------
    async def turn(self, run: StepRun, index: int, step: ChatStep | RetryStep,
                   msg: dict[str, Any], model: str, *, streaming: bool,
                   retrying: bool) -> Sent:
        client = run.client
        owner = client.turns[0].owner if client.turns else step.actor
        resent = retrying or any(t.message_id == msg["id"] for t in client.turns)
        body = {
            "id": self.chat_id(run),
            "message": {"id": msg["id"], "role": "user",
                        "parts": [{"type": "text", "text": msg["content"]}]},
            "selectedChatModel": self.profile.model or model,
            "selectedVisibilityType": "private",
        }
        bearer, headers = await self._auth(run, index, step.actor)
        ex = await run.send(index, step.actor, "POST", self.profile.routes.chat, body=body,
                            purpose="chat", auth=bearer, headers=headers, token=step.token)
        stream = uistream.parse(ex.response_body) if ex.status == 200 else None
        ok = stream is not None and stream.ok
        error = _stream_error(stream) if stream is not None else _error_text(ex)
        turn = Turn(step=index, actor=step.actor, message_id=msg["id"], text=msg["content"],
                    model=model, status=ex.status, ok=ok, answer=stream.text if stream else "",
                    answer_id=stream.message_id if stream else None, error="" if ok else error,
                    resent=resent, owner=owner, part_types=stream.types if stream else ())
        client.turns.append(turn)
        self._judge(run, index, step, turn, stream, ex)
        record = Chat(step=index, actor=step.actor, body=body, data=None, sent_id=msg["id"])
        client.chats.append(record)
        if step.actor != owner:  # not part of the owner's conversation
            if msg in client.history:
                client.history.remove(msg)
        elif ok and stream is not None:
            ts = client.clock.next()
            assistant = {"id": stream.message_id or "", "content": stream.text,
                         "role": "assistant", "timestamp": format_ts(ts),
                         "user_message_id": msg["id"], "model": model}
            client.history.append(assistant)
            client.step_of[assistant["id"]] = index
            record.assistant_id = assistant["id"]
            record.data = {"response": stream.text, "id": stream.message_id,
                           "request_id": msg["id"]}
            msg["error"] = False
            msg.pop("error_message", None)
        else:
            client.on_failure(msg, {"error": error})
        response = {"status": ex.status, "text": stream.text if stream else "",
                    "messageId": turn.answer_id, "parts": stream.parts if stream else [],
                    "body": ex.response_body if stream is None else None}
        return Sent(ex, {"response": response, "message": msg, "request": body,
                         "data": record.data or {}})

    def _judge(self, run: StepRun, index: int, step: ChatStep | RetryStep, turn: Turn,
               stream: uistream.UIStream | None, ex: Exchange) -> None:
        """What the protocol fixes of the answer (the module's text)."""
        # a step's expect: (status, body) is the contract's in a scenario that speaks both
        if "contract" not in run.scenario.header.protocols and step.expect is not None:
            run.expect(index, ex, step.expect.model_copy(update={"provider": None}),
                       default=None)
        if turn.actor != turn.owner:
            return  # I-OWNER judges it
        if stream is not None:
            if uistream.HEADER not in ex.headers:
                run.result.fail(Check.STREAM, f"a 200 answer without the {uistream.HEADER} "
                                "header: not a UI message stream", step=index,
                                expected=f"{uistream.HEADER}: v1", actual=ex.headers,
                                clause=CLAUSE)
            for problem in stream.problems:
                run.result.fail(Check.STREAM, f"the UI message stream: {problem}", step=index,
                                expected="start, text-start/delta/end, finish, [DONE]",
                                actual=short(ex.response_body, 300),
                                clause=CLAUSE)
        planned = expected_success(step)
        if planned is None or not run.scenario.check_enabled(Check.OUTCOME):
            return
        ok_text = "a complete answer (finish, no error part)"
        if planned and not turn.ok:
            run.result.fail(Check.OUTCOME, f"the provider answered, so the client expects "
                            f"{ok_text}; it got {_describe(turn)}", step=index,
                            expected=ok_text, actual=_describe(turn), clause=CLAUSE)
        if not planned and turn.ok:
            run.result.fail(Check.OUTCOME, "the provider failed, so the client expects an "
                            "error part or an error status; the backend streamed a complete "
                            f"answer {short(turn.answer, 80)}", step=index,
                            expected="an error part, or a 4xx/5xx", actual=turn.part_types,
                            clause=CLAUSE)

    async def resync(self, run: StepRun, index: int, step: ResyncStep) -> None:
        """The client reloads the chat: its list of chats (the stored conversation is
        then held to what the client saw, by the invariants after the step)."""
        actor = step.actor
        bearer, headers = await self._auth(run, index, actor)
        ex = await run.send(index, actor, "GET", self.profile.routes.history, auth=bearer,
                            headers=headers, purpose="read")
        if step.expect is not None:
            run.expect(index, ex, step.expect, default=None)


def expected_success(step: ChatStep | RetryStep) -> bool | None:
    """Whether the step's provider script ends in a complete answer (the AI SDK retries
    failed calls, so the last planned answer decides); None when nothing is planned."""
    answers = step.answers()
    if not answers:
        return None
    last = answers[-1]
    return (last.reply is not None and last.cut_after is None and last.stream_error is None
            and not last.timeout and last.status in (None, 200))


def normalize(row: dict[str, Any]) -> dict[str, Any]:
    """A stored message row as ``{id, role, text, parts}``: the text of its text parts
    (``parts``, JSON), else its ``content``."""
    import json

    parts = row.get("parts")
    if isinstance(parts, str | bytes):
        try:
            parts = json.loads(parts)
        except ValueError:
            parts = None
    if isinstance(parts, list):
        text = "".join(str(p.get("text", "")) for p in parts
                       if isinstance(p, dict) and p.get("type") == "text")
        kinds = [str(p.get("type")) for p in parts if isinstance(p, dict)]
    else:
        content = row.get("content")
        text = content if isinstance(content, str) else ""
        kinds = ["text"] if text else []
    return {"id": str(row.get("id")), "role": row.get("role"), "text": text, "parts": kinds}


_COOKIE_SPLIT = re.compile(r",\s*(?=[^;,=\s]+=)")


def cookie_pairs(header: str) -> list[str]:
    """The ``name=value`` of each cookie in a (comma-joined) Set-Cookie header."""
    out = []
    for cookie in _COOKIE_SPLIT.split(header):
        pair = cookie.split(";", 1)[0].strip()
        if "=" in pair:
            out.append(pair)
    return out


def _stream_error(stream: uistream.UIStream) -> str:
    """Why a 200 stream is not a complete answer (empty when it is one)."""
    if stream.error is not None:
        return stream.error
    if stream.problems:
        return stream.problems[0]
    return "" if stream.finished else "the stream did not finish"


def _error_text(ex: Any) -> str:
    if ex.error:
        return str(ex.error)
    body = ex.json()
    for key in ("message", "error", "code"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return f"HTTP {ex.status}"


def _describe(turn: Turn) -> str:
    if turn.status != 200:
        return f"{turn.status or 'no answer'} ({turn.error})"
    if turn.error:
        return f"200 with {turn.error!r} (parts {', '.join(turn.part_types)})"
    return f"200 (parts {', '.join(turn.part_types)})"
