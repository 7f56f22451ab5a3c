"""Run one scenario against a target: steps in order, then the built-in checks."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.contract import oracle
from harness.db import Database
from harness.errors import Location, ScenarioError
from harness.provider import Answer, Plan, ProviderCall, ProviderControl, StepEnd
from harness.runner.client import ChatClient, Clock
from harness.runner.match import Matcher, mismatches, short, status_matches
from harness.runner.result import Exchange, ScenarioResult, StepRecord
from harness.scenario import template
from harness.scenario.load import Scenario
from harness.scenario.model import (
    ChatStep,
    DbStep,
    Expect,
    HttpStep,
    ParallelStep,
    RetryStep,
    Step,
    StreamStep,
    Token,
)

# clauses every route serves (the envelope, the token): an expectation stands for one
# only when its scenario is about nothing more specific
_GENERIC_CLAUSES = frozenset({"C-ERR-1", "C-ERR-2", "C-AUTH-1"})
ACTOR_NAMESPACE = uuid.UUID("6f1c3a52-5e0b-4c7e-9d4a-2b8f0c1d9e77")


@dataclass
class RunContext:
    """What one scenario run borrows from the harness session."""

    client: httpx.AsyncClient  # speaks to the backend under test
    provider: ProviderControl
    db: Database | None
    jwt_secret: str
    target: str
    provider_timeout_ms: int
    request_timeout_s: float = 30.0
    fixtures_dir: Path = Path("fixtures")
    reproduce: str = ""
    provider_api_key: str = ""
    salt: str = ""  # mixed into users and generated ids where the database is not reset
    strict_fields: bool = False  # list the extra fields of answers as notes


class _Variables(dict[str, Any]):
    """Captures and built-ins; ``users.NAME`` is the user id of actor NAME."""

    def __init__(self, user_id: Any, values: dict[str, Any]) -> None:
        super().__init__(values)
        self._user_id = user_id

    def _actor(self, key: object) -> str | None:
        if isinstance(key, str) and key.startswith("users.") and len(key) > 6:
            return key[6:]
        return None

    def _seconds(self, key: object) -> int | None:
        if isinstance(key, str) and key.startswith("http_date.") and key[10:].isdigit():
            return int(key[10:])
        return None

    def __contains__(self, key: object) -> bool:
        return (super().__contains__(key) or self._actor(key) is not None
                or self._seconds(key) is not None)

    def __missing__(self, key: str) -> Any:
        seconds = self._seconds(key)
        if seconds is not None:  # an HTTP date that many seconds from now (Retry-After)
            from email.utils import formatdate

            return formatdate(time.time() + seconds, usegmt=True)
        actor = self._actor(key)
        if actor is None:
            raise KeyError(key)
        return self._user_id(actor)


class ScenarioRun:
    def __init__(self, scenario: Scenario, ctx: RunContext) -> None:
        self.scenario = scenario
        self.ctx = ctx
        seed = int.from_bytes(
            hashlib.sha256((ctx.salt + scenario.id).encode()).digest()[:8], "big")
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
        self.variables: dict[str, Any] = _Variables(self.user_id, {
            "session_id": session, "user_id": self.user_id("alice"),
            "provider_api_key": ctx.provider_api_key,
        })
        self._tokens: dict[str, str] = {}
        self._step: StepRecord | None = None
        # each step's provider calls, as the step's end recorded them (for the checks)
        self.step_calls: dict[int, list[ProviderCall]] = {}
        # id() of answers the schema check found conforming: a run checked after
        # every step (explore) validates each answer once
        self.conforming: set[int] = set()
        self._started = time.perf_counter()
        # why the steps after the current one are not run (a step they depend on
        # broke: the failure is recorded); None while the run goes on
        self.stopped: str | None = None

    # -- identity ----------------------------------------------------------
    def user_id(self, actor: str) -> str:
        return str(uuid.uuid5(ACTOR_NAMESPACE, f"{self.ctx.salt}{self.scenario.id}/{actor}"))

    def token(self, actor: str, spec: Token | None = None) -> str:
        """The actor's JWT; ``spec`` makes a deliberately odd one (C-AUTH-1 edges)."""
        if spec is None and actor in self._tokens:
            return self._tokens[actor]
        import jwt

        spec = spec or Token()
        if spec.raw is not None:
            return spec.raw
        claims: dict[str, Any] = {"sub": self.user_id(actor)}
        if spec.sub is not None:
            claims["sub"] = template.render(spec.sub, self.variables,
                                            location=self.scenario.location(), key="token.sub")
        if not spec.no_exp:
            claims["exp"] = int(time.time()) + (-120 if spec.expired else 3600)
        key = spec.secret if spec.secret is not None else self.ctx.jwt_secret
        if spec.alg == "none":
            token = jwt.encode(claims, None, algorithm="none")
        else:
            with warnings.catch_warnings():  # a short key for HS512 is the point, not a slip
                warnings.simplefilter("ignore")
                token = jwt.encode(claims, key, algorithm=spec.alg)
        if spec == Token():
            self._tokens[actor] = token
        return token

    # -- HTTP --------------------------------------------------------------
    async def send(
        self, step: int | None, actor: str, method: str, path: str, *, body: Any = None,
        params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        auth: bool = True, purpose: str, token: Token | None = None, raw: bytes | None = None,
    ) -> Exchange:
        """One request to the backend; ``raw`` is sent as the body byte for byte."""
        sent = {"authorization": f"Bearer {self.token(actor, token)}"} if auth else {}
        if raw is not None or body is not None:
            sent["content-type"] = "application/json"
        sent.update(headers or {})
        content = raw if raw is not None else (
            None if body is None else json.dumps(body).encode())
        started = time.perf_counter()
        status, parsed, got_headers, error = 0, None, {}, None
        try:
            response = await asyncio.wait_for(
                self.ctx.client.request(
                    method, path, params=params, headers=sent, content=content,
                ),
                self.ctx.request_timeout_s,
            )
            status, got_headers = response.status_code, dict(response.headers)
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
        except TimeoutError:
            error = (f"the backend did not answer within {self.ctx.request_timeout_s:g} s "
                     "(--step-timeout)")
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
        from harness.runner import steps

        await self.begin()
        try:
            for index, step in enumerate(self.scenario.steps):
                await self.run_step(index, step)
                if self.stopped is not None:
                    break
        except steps.Skip as skip:
            self.result.skipped = str(skip)
            return self.result
        return await self.check()

    # -- step by step (``execute`` is begin, run_step for each step, check) ------
    # A driver that picks each step after seeing the last one's outcome (the
    # state machine of harness.explore) runs the very same code as a scenario.

    async def begin(self) -> None:
        """Start the run: the provider forgets the previous run's plan and calls."""
        self._started = time.perf_counter()
        self.ctx.provider.reset()

    async def run_step(self, index: int, step: Step) -> StepRecord:
        """Run one step; a step just past the scenario's last is appended to it.

        Appending lets a driver build the scenario as it goes, so that what ran
        is always ``self.scenario`` (and can be saved as YAML). Raises
        ``steps.Skip`` as ``execute`` would stop on it.
        """
        from harness.runner import steps

        if index == len(self.scenario.steps):
            self.scenario = dataclasses.replace(
                self.scenario, steps=(*self.scenario.steps, step),
                step_lines=(*self.scenario.step_lines, 0))
        record = StepRecord(index=index, kind=step.kind, title=self._title(step),
                            line=self.scenario.step_lines[index])
        self.result.steps.append(record)
        self._step = record
        self.ctx.provider.begin_step(index, self._plans(step))
        try:
            await steps.execute(self, index, step)
        finally:
            end = self.ctx.provider.end_step(index)
            self.step_calls[index] = end.calls
        # a step stopped before it sent anything has no calls to judge
        if record.exchanges or self.stopped is None:
            self._provider_expect(index, step, end.calls)
            self._provider_script(index, end)
        record.provider_calls = [
            {"model": c.model, "messages": c.messages, "answer": c.answer} for c in end.calls
        ]
        return record

    async def check(self) -> ScenarioResult:
        """The built-in checks over everything run so far (failures land in the result)."""
        from harness.checks import run_builtin_checks

        self._step = None
        self.ctx.provider.step = None
        await run_builtin_checks(self)
        self.result.duration_s = time.perf_counter() - self._started
        return self.result

    def _title(self, step: Step) -> str:
        if step.title:
            return step.title
        if isinstance(step, StreamStep):
            return f"stream {short(step.stream, 50)}"
        if isinstance(step, ChatStep):
            return f"chat {short(step.chat, 50)}"
        if isinstance(step, HttpStep):
            return step.http
        if isinstance(step, DbStep):
            return f"db {short(step.db, 50)}"
        if isinstance(step, RetryStep):
            return f"retry {step.retry}"
        if isinstance(step, ParallelStep):
            return f"parallel ({len(step.parsed)} at once)"
        return "resync"

    def _where(self, index: int) -> Location:
        return self.scenario.location(index)

    def answers(self, step: Step) -> list[Answer]:
        out = []
        for n, spec in enumerate(step.answers()):
            if isinstance(spec.retry_after, str) and "${" in spec.retry_after:
                value = template.render(spec.retry_after, self.variables,
                                        location=self.scenario.location(),
                                        key=f"provider[{n}].retry_after")
                spec = spec.model_copy(update={"retry_after": value})
            out.append(spec.to_answer(self.ctx.provider_timeout_ms))
        return out

    def _plans(self, step: Step) -> list[Plan]:
        subs = step.parsed if isinstance(step, ParallelStep) else (step,)
        return [(answer, spec.for_model) for one in subs
                for spec, answer in zip(one.answers(), self.answers(one), strict=True)]

    def _provider_expect(self, index: int, step: Step, calls: list[ProviderCall]) -> None:
        want = step.expect.provider if step.expect else None
        if want is None:
            return
        if want.calls is not None and len(calls) != want.calls:
            self.result.fail("expect", f"the backend called the provider {len(calls)} time(s), "
                             f"expected {want.calls}", step=index, expected=want.calls,
                             actual=[c.answer for c in calls], clause="C-CHAT-3")
        for c in calls:
            if want.model is not None and c.model != want.model:
                self.result.fail("expect", f"provider call {c.index + 1} asked for model "
                                 f"{c.model!r}, expected {want.model!r}", step=index,
                                 expected=want.model, actual=c.model, clause="C-CHAT-3")
            streamed = isinstance(c.body, dict) and c.body.get("stream") is True
            if want.stream is not None and streamed != want.stream:
                self.result.fail("expect", f"provider call {c.index + 1} had stream={streamed}",
                                 step=index, expected=want.stream, actual=streamed,
                                 clause="C-CHAT-3")
        for c in calls:
            if want.path is not None and not c.path.endswith(want.path):
                self.result.fail("expect", f"provider call {c.index + 1} went to {c.path!r}, "
                                 f"expected {want.path!r}", step=index, expected=want.path,
                                 actual=c.path, clause="C-RUN-1")
            for name, value in want.headers.items():
                value = template.render(value, self.variables, location=self._where(index),
                                        key=f"steps[{index}].expect.provider.headers.{name}")
                got = {k.lower(): v for k, v in c.headers.items()}.get(name.lower())
                if got != value:
                    self.result.fail("expect", f"provider call {c.index + 1} had header {name}: "
                                     f"{got!r}, expected {value!r}", step=index, expected=value,
                                     actual=got, clause="C-RUN-1")
        if want.messages is not None and calls:
            expected = template.render(want.messages, self.variables,
                                       location=self._where(index),
                                       key=f"steps[{index}].expect.provider.messages")
            if calls[-1].messages != expected:
                self.result.fail("expect", "the provider was sent other messages than expected",
                                 step=index, expected=expected, actual=calls[-1].messages,
                                 clause="C-CHAT-3")

    def _provider_script(self, index: int, end: StepEnd) -> None:
        if not self.scenario.check_enabled("provider_script"):
            return
        calls, pending = end
        unscripted = [c for c in calls if not c.scripted]
        step = self.scenario.steps[index]
        subs = step.parsed if isinstance(step, ParallelStep) else (step,)
        planned = sum(len(s.answers()) for s in subs)
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

    # -- expectations ------------------------------------------------------------
    def check_expect(self, index: int, ex: Exchange, expect: Expect | None, *,
                      default: int | str | None, clause: str | None = None,
                      what: str = "") -> None:
        status = expect.status if expect and expect.status is not None else default
        ex.expected = status
        clause = clause or self._clause_for(ex)
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
            body = self._render_expected(index, expect.body, "expect.body")
            diffs = mismatches(body, ex.response_body)
            if diffs:
                self.result.fail("expect", f"{what}" + "; ".join(diffs), step=index,
                                 expected=body, actual=ex.response_body, clause=clause)
        if expect and expect.names_field is not None:
            texts = [ex.json().get(k) for k in ("error", "details")]
            said = " / ".join(t for t in texts if isinstance(t, str))
            if expect.names_field.lower() not in said.lower():
                self.result.fail(
                    "expect", f"{what}the error should name the field {expect.names_field!r} "
                    f"(in 'error' or 'details'); it said {said!r}", step=index,
                    expected=expect.names_field, actual=ex.response_body, clause="C-ERR-3")
        for name, want in (expect.headers if expect else {}).items():
            got = ex.headers.get(name.lower())
            if isinstance(want, Matcher):
                problem = None if got is None and want.kind == "absent" else (
                    f"missing (expected {want!r})" if got is None else want.problem(got))
            else:
                want = template.render(str(want), self.variables, location=self._where(index),
                                       key=f"steps[{index}].expect.headers.{name}")
                problem = None if got == want else f"expected {want!r}, got {got!r}"
            if problem:
                self.result.fail("expect", f"{what}header {name}: {problem}",
                                 step=index, expected=want, actual=got, clause=clause)

    def covered_clause(self) -> str | None:
        """What a scenario's own rows check stands for: its first specific covered clause."""
        covers = self.scenario.header.covers
        specific = [c for c in covers if c not in _GENERIC_CLAUSES]
        chosen = specific or list(covers)
        return chosen[0] if chosen else None

    def _clause_for(self, ex: Exchange) -> str | None:
        """The clause an expectation on this answer stands for.

        The scenario's first covered clause that the route serves, else its first
        covered clause (a read that shows a refused batch was not written stands for
        C-MSG-3, which the read route does not serve); the envelope and auth clauses
        only when the scenario covers nothing more specific; else the route's own.
        """
        from harness.contract.openapi import operation_for

        op = operation_for(ex.method, ex.path)
        served = op.clauses if op is not None else ("C-ERR-2",)
        covers = self.scenario.header.covers
        specific = [c for c in covers if c not in _GENERIC_CLAUSES]
        for choice in ([c for c in specific if c in served], specific,
                       [c for c in covers if c in served]):
            if choice:
                return choice[0]
        return op.clause if op is not None else "C-ERR-2"

    def _render_expected(self, index: int, value: Any, key: str) -> Any:
        """``value`` with its variables filled in, also inside matchers (``!instant ${t}``)."""
        if isinstance(value, Matcher):
            arg = template.render(value.arg, self.variables, location=self._where(index),
                                  key=f"steps[{index}].{key}")
            return Matcher(value.kind, str(arg))
        if isinstance(value, dict):
            return {k: self._render_expected(index, v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self._render_expected(index, v, f"{key}[{i}]")
                    for i, v in enumerate(value)]
        return template.render(value, self.variables, location=self._where(index),
                               key=f"steps[{index}].{key}")

    def load_fixture(self, index: int, name: str) -> Any:
        candidates = [self.scenario.file.parent / name, self.ctx.fixtures_dir / name]
        for path in candidates:
            if path.is_file():
                from harness.scenario.values import too_deep
                from harness.scenario.yamlsource import MAX_DEPTH

                try:
                    body = json.loads(path.read_text(encoding="utf-8"))
                except (ValueError, RecursionError) as exc:
                    raise ScenarioError(f"{path} is not valid JSON: {exc}",
                                        location=self._where(index),
                                        key=f"steps[{index}].body_file",
                                        hint="a body_file is sent as JSON; for bytes that are "
                                        "not JSON, use raw_body") from None
                if too_deep(body):
                    raise ScenarioError(
                        f"{path} nests more than {MAX_DEPTH} levels deep",
                        location=self._where(index), key=f"steps[{index}].body_file",
                        hint="a deeper body is sent as is with raw_body")
                return body
        raise ScenarioError(
            f"no fixture {name!r}", location=self._where(index), key=f"steps[{index}].body_file",
            hint="looked in " + " and ".join(str(p.parent) for p in candidates),
        )
