"""Run one scenario against a target: steps in order, then the built-in checks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.contract import oracle
from harness.db import Database
from harness.errors import Location, ScenarioError
from harness.provider import ErrorAnswer, ScriptedProvider
from harness.runner.client import Chat, ChatClient, Clock, Sync
from harness.runner.match import mismatches, short, status_matches
from harness.runner.result import Exchange, ScenarioResult, StepRecord
from harness.scenario import template
from harness.scenario.load import Scenario
from harness.scenario.model import ChatStep, Expect, HttpStep, ResyncStep, Step

ACTOR_NAMESPACE = uuid.UUID("6f1c3a52-5e0b-4c7e-9d4a-2b8f0c1d9e77")


@dataclass
class RunContext:
    """What one scenario run borrows from the harness session."""

    client: httpx.AsyncClient  # speaks to the backend under test
    provider: ScriptedProvider
    db: Database | None
    jwt_secret: str
    target: str
    provider_timeout_ms: int
    request_timeout_s: float = 30.0
    fixtures_dir: Path = Path("fixtures")
    reproduce: str = ""


class ScenarioRun:
    def __init__(self, scenario: Scenario, ctx: RunContext) -> None:
        self.scenario = scenario
        self.ctx = ctx
        seed = int.from_bytes(hashlib.sha256(scenario.id.encode()).digest()[:8], "big")
        start = oracle.parse_ts(scenario.header.start_at)
        if start is None:
            raise ScenarioError(
                f"expected an ISO-8601 timestamp, got {scenario.header.start_at!r}",
                location=scenario.location(), key="start_at",
                hint="e.g. 2025-08-12T14:34:08.861Z",
            )
        self.rng = random.Random(seed)
        session = scenario.header.session or f"conv_{int(start.timestamp() * 1000)}_" + "".join(
            self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(9)
        )
        self.client = ChatClient(
            session_id=session, clock=Clock(start), rng=self.rng,
            send_current_message_id=scenario.client.current_message_id,
        )
        self.result = ScenarioResult(
            scenario_id=scenario.id, file=scenario.display, target=ctx.target,
            reproduce=ctx.reproduce,
        )
        self.variables: dict[str, Any] = {"session_id": session, "user_id": self.user_id("alice")}
        self._tokens: dict[str, str] = {}
        self._step: StepRecord | None = None

    # -- identity ----------------------------------------------------------
    def user_id(self, actor: str) -> str:
        return str(uuid.uuid5(ACTOR_NAMESPACE, f"{self.scenario.id}/{actor}"))

    def token(self, actor: str) -> str:
        if actor not in self._tokens:
            import jwt

            claims = {"sub": self.user_id(actor), "exp": int(time.time()) + 3600}
            self._tokens[actor] = jwt.encode(claims, self.ctx.jwt_secret, algorithm="HS256")
        return self._tokens[actor]

    # -- HTTP --------------------------------------------------------------
    async def send(
        self, step: int | None, actor: str, method: str, path: str, *, body: Any = None,
        params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        auth: bool = True, purpose: str,
    ) -> Exchange:
        sent = {"authorization": f"Bearer {self.token(actor)}"} if auth else {}
        sent.update(headers or {})
        started = time.perf_counter()
        status, parsed, got_headers, error = 0, None, {}, None
        try:
            response = await asyncio.wait_for(
                self.ctx.client.request(
                    method, path, params=params, headers=sent,
                    content=None if body is None else json.dumps(body).encode(),
                ),
                self.ctx.request_timeout_s,
            )
            status, got_headers = response.status_code, dict(response.headers)
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
        except TimeoutError:
            error = f"no answer within {self.ctx.request_timeout_s:.0f} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        exchange = Exchange(
            step=step, purpose=purpose, actor=actor, method=method, path=path,
            request_body=body, status=status, response_body=parsed, headers=got_headers,
            elapsed_ms=(time.perf_counter() - started) * 1000, error=error,
        )
        self.result.exchanges.append(exchange)
        if self._step is not None and step == self._step.index:
            self._step.exchanges.append(exchange)
        return exchange

    async def read_messages(self, session_id: str, actor: str) -> Exchange:
        return await self.send(None, actor, "GET", "/api/chat/messages",
                               params={"session_id": session_id}, purpose="read")

    # -- the run -------------------------------------------------------------
    async def execute(self) -> ScenarioResult:
        from harness.checks import run_builtin_checks

        started = time.perf_counter()
        self.ctx.provider.reset()
        for index, step in enumerate(self.scenario.steps):
            record = StepRecord(index=index, kind=step.kind, title=self._title(step),
                                line=self.scenario.step_lines[index])
            self.result.steps.append(record)
            self._step = record
            self.ctx.provider.step = index
            self._plan(step)
            if isinstance(step, ChatStep):
                await self._chat(index, step)
            elif isinstance(step, ResyncStep):
                await self._resync(index, step)
            else:
                await self._http(index, step)
            self._provider_script(index)
            record.provider_calls = [
                {"model": c.model, "messages": c.messages, "answer": c.answer}
                for c in self.ctx.provider.calls_in_step(index)
            ]
        self._step = None
        self.ctx.provider.step = None
        await run_builtin_checks(self)
        self.result.duration_s = time.perf_counter() - started
        return self.result

    def _title(self, step: Step) -> str:
        if step.title:
            return step.title
        if isinstance(step, ChatStep):
            return f"chat {short(step.chat, 50)}"
        if isinstance(step, HttpStep):
            return step.http
        return "resync"

    def _where(self, index: int) -> Location:
        return self.scenario.location(index)

    def _plan(self, step: Step) -> None:
        for answer in step.answers():
            self.ctx.provider.plan(answer.to_answer(), for_model=answer.for_model)

    def _provider_script(self, index: int) -> None:
        if not self.scenario.check_enabled("provider_script"):
            self.ctx.provider.discard_pending()
            return
        calls = self.ctx.provider.calls_in_step(index)
        unscripted = [c for c in calls if c.answer.startswith(str(599))]
        pending = self.ctx.provider.pending()
        planned = len(self.scenario.steps[index].answers())
        if unscripted:
            self.result.fail(
                "provider_script",
                f"the backend called the provider {len(calls)} time(s); the step planned "
                f"{planned} answer(s), so {len(unscripted)} call(s) got no scripted answer",
                step=index, expected=f"{planned} call(s)", actual=f"{len(calls)} call(s)",
                clause="C-CHAT-3",
            )
        if pending:
            self.result.fail(
                "provider_script",
                f"{len(pending)} planned provider answer(s) were never asked for "
                f"(the backend made {len(calls)} call(s))",
                step=index, expected=f"{planned} call(s)", actual=f"{len(calls)} call(s)",
                clause="C-CHAT-3",
            )
        self.ctx.provider.discard_pending()

    # -- expectations ------------------------------------------------------------
    def _check_expect(self, index: int, ex: Exchange, expect: Expect | None, *,
                      default: int | str | None, clause: str | None = None,
                      what: str = "") -> None:
        status = expect.status if expect and expect.status is not None else default
        if ex.error:
            self.result.fail("expect", f"{what}{ex.method} {ex.path} got no answer: {ex.error}",
                             step=index, expected=status, actual=None, clause=clause)
            return
        if status is not None and not status_matches(status, ex.status):
            self.result.fail(
                "expect", f"{what}{ex.brief()}, expected status {status}",
                step=index, expected=status, actual={"status": ex.status, "body": ex.response_body},
                clause=clause,
            )
        if expect and expect.body is not None:
            body = template.render(expect.body, self.variables, location=self._where(index),
                                   key=f"steps[{index}].expect.body")
            diffs = mismatches(body, ex.response_body)
            if diffs:
                self.result.fail("expect", f"{what}" + "; ".join(diffs), step=index,
                                 expected=body, actual=ex.response_body, clause=clause)
        for name, want in (expect.headers if expect else {}).items():
            got = ex.headers.get(name.lower())
            if got != want:
                self.result.fail("expect", f"{what}header {name}: expected {want!r}, got {got!r}",
                                 step=index, expected=want, actual=got, clause=clause)

    def _chat_outcome(self, index: int, step: Step, ex: Exchange) -> None:
        """Without ``expect:``, hold a chat answer to what the contract makes of the script."""
        answers = [a.to_answer() for a in step.answers()]
        outcome = oracle.expected_outcome(answers, timeout_ms=self.ctx.provider_timeout_ms)
        if step.expect is not None or outcome is None:
            self._check_expect(index, ex, step.expect, default="2xx")
            return
        status, code = outcome
        what = f"the provider was scripted {' then '.join(_brief(a) for a in answers)}: "
        self._check_expect(index, ex, None, default=status, clause="C-CHAT-5", what=what)
        if code is None or ex.status != status:
            return
        got_code = ex.json().get("code")
        if got_code != code:
            self.result.fail("expect", f"{what}expected code {code!r}, got {got_code!r}",
                             step=index, expected=code, actual=ex.response_body, clause="C-ERR-2")
        last = answers[-1]
        if isinstance(last, ErrorAnswer) and last.status in (429, 503):
            want = oracle.retry_after_seconds(last.retry_after)
            got = ex.json().get("retryAfter")
            header = ex.headers.get("retry-after")
            slack = 2 if isinstance(last.retry_after, str) and not last.retry_after.isdigit() else 0
            if not isinstance(got, int) or abs(got - want) > slack:
                self.result.fail("expect", f"{what}expected retryAfter {want}, got {got!r}",
                                 step=index, expected=want, actual=got, clause="C-CHAT-5")
            if header is None or not header.isdigit() or abs(int(header) - want) > slack:
                self.result.fail("expect", f"{what}expected header Retry-After: {want}, "
                                 f"got {header!r}", step=index, expected=want, actual=header,
                                 clause="C-CHAT-5")

    def _capture(self, index: int, step: Step, sources: dict[str, Any]) -> None:
        for name, path in step.capture.items():
            root, _, rest = path.partition(".")
            doc, sub = (sources[root], rest) if root in sources and rest else (
                sources["response"], path)
            value = template.dig(doc, sub)
            if template.is_missing(value):
                raise ScenarioError(
                    f"nothing at {path!r} in the answer to capture as {name!r}",
                    location=self._where(index), key=f"steps[{index}].capture.{name}",
                    hint=f"the answer was {short(sources['response'], 200)}",
                )
            self.variables[name] = value

    # -- steps ---------------------------------------------------------------
    async def _chat(self, index: int, step: ChatStep) -> None:
        model = step.model or self.scenario.header.model
        if model is None:
            raise ScenarioError("a chat step needs a model", location=self._where(index),
                                key=f"steps[{index}].model",
                                hint="add 'model:' to the step or to the scenario")
        text = template.render(step.chat, self.variables, location=self._where(index),
                               key=f"steps[{index}].chat")
        client = self.client
        msg = client.user_message(str(text), model, index)
        current = (step.current_message_id if step.current_message_id is not None
                   else client.send_current_message_id)
        body = client.chat_body(msg, model, current_id=current)
        ex = await self.send(index, step.actor, "POST", "/api/chat", body=body, purpose="chat")
        self._chat_outcome(index, step, ex)
        data = ex.json().get("data")
        chat = Chat(step=index, actor=step.actor, body=body, status=ex.status,
                    response=ex.json(), sent_id=msg["id"])
        client.chats.append(chat)
        if ex.status == 200 and isinstance(data, dict):
            assistant, batch = client.on_success(data, index)
            chat.assistant_id = assistant["id"]
            await self._sync(index, step.actor, {"messages": batch, "sessionId": client.session_id})
        else:
            failed = client.on_failure(msg, ex.json())
            await self._sync(index, step.actor, {"message": failed, "sessionId": client.session_id})
        self._capture(index, step, {"response": ex.response_body, "message": msg,
                                    "request": body})

    async def _sync(self, index: int, actor: str, body: dict[str, Any]) -> Exchange:
        stored_before = {m.get("id") for s in self.client.syncs if s.accepted for m in s.messages()}
        ex = await self.send(index, actor, "POST", "/api/chat/messages", body=body, purpose="sync")
        sync = Sync(step=index, actor=actor, body=body, status=ex.status)
        self.client.syncs.append(sync)
        if not ex.ok:
            again = [m for m in sync.messages() if m.get("id") in stored_before]
            code = ex.json().get("code")
            got = f"{ex.status} {code}" if isinstance(code, str) else str(ex.status or ex.error)
            if again:
                what = ", ".join(f"{m['id']} ({self.client.describe(m['id'])})" for m in again)
                message = (f"storing the already stored message {what} again got {got}; "
                           "posting a stored id must update it, never fail")
                clause = "C-MSG-2"
            else:
                ids = ", ".join(str(m.get("id")) for m in sync.messages())
                message = f"storing messages {ids} got {got}"
                clause = "C-MSG-8"
            self.result.fail("sync", message, step=index, expected="2xx",
                             actual={"status": ex.status, "body": ex.response_body},
                             clause=clause)
        return ex

    async def _resync(self, index: int, step: ResyncStep) -> None:
        if not self.client.syncs:
            raise ScenarioError("resync needs an earlier sync", location=self._where(index),
                                key=f"steps[{index}]", hint="put a chat step before it")
        last = self.client.syncs[-1]
        ex = await self._sync(index, last.actor, last.body)
        if step.expect is not None:
            self._check_expect(index, ex, step.expect, default=None)

    async def _http(self, index: int, step: HttpStep) -> None:
        where, key = self._where(index), f"steps[{index}]"
        method, _, path = step.http.partition(" ")
        path = str(template.render(path.strip(), self.variables, location=where, key=f"{key}.http"))
        body = step.body
        if step.body_file is not None:
            body = self._load_fixture(index, step.body_file)
        body = template.render(body, self.variables, location=where, key=f"{key}.body")
        query = template.render(dict(step.query), self.variables, location=where,
                                key=f"{key}.query")
        headers = template.render(dict(step.headers), self.variables, location=where,
                                  key=f"{key}.headers")
        ex = await self.send(index, step.actor, method, path, body=body, params=query or None,
                             headers=headers, auth=step.auth, purpose="raw")
        route = path.split("?")[0]
        if method == "POST" and route == "/api/chat" and isinstance(body, dict):
            self._chat_outcome(index, step, ex)
            self.client.chats.append(Chat(step=index, actor=step.actor, body=body,
                                          status=ex.status, response=ex.json(), sent_id=None))
        else:
            self._check_expect(index, ex, step.expect, default="2xx")
        if method == "POST" and route == "/api/chat/messages" and isinstance(body, dict):
            self.client.syncs.append(Sync(step=index, actor=step.actor, body=body,
                                          status=ex.status))
        self._capture(index, step, {"response": ex.response_body, "request": body})

    def _load_fixture(self, index: int, name: str) -> Any:
        candidates = [self.scenario.file.parent / name, self.ctx.fixtures_dir / name]
        for path in candidates:
            if path.is_file():
                try:
                    return json.loads(path.read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise ScenarioError(f"{path} is not valid JSON: {exc}",
                                        location=self._where(index),
                                        key=f"steps[{index}].body_file") from None
        raise ScenarioError(
            f"no fixture {name!r}", location=self._where(index), key=f"steps[{index}].body_file",
            hint="looked in " + " and ".join(str(p.parent) for p in candidates),
        )


def _brief(answer: Any) -> str:
    if isinstance(answer, ErrorAnswer):
        return str(answer.status)
    return "a reply" if hasattr(answer, "content") else f"a raw {answer.status}"
