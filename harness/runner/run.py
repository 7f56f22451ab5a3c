"""Run one scenario against a target: steps in order, then the built-in checks."""

from __future__ import annotations

import asyncio
import contextlib
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

from harness.checks import expect as expectations
from harness.checks import outcome
from harness.contract import oracle
from harness.db import Database
from harness.errors import ScenarioError, Skip
from harness.profile import Profile
from harness.provider import Answer, Plan, ProviderCall, ProviderControl, Side
from harness.result import Check, Exchange, ScenarioResult, StepRecord
from harness.scenario import template
from harness.scenario.frontend import ChatClient, Clock, Sync
from harness.scenario.load import Scenario
from harness.scenario.model import Expect, ParallelStep, Step, Token
from harness.scenario.protocols import adapter
from harness.scenario.protocols.base import Adapter
from harness.scenario.rounds import PREFIX, SLOT, Fresh, Slot
from harness.scenario.steps import kind_of

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
    protocol: str = "contract"  # how the conversation steps speak (harness.scenario.protocols)
    profile: Profile | None = None  # the backend's profile (routes, login, the SQL of messages)


class _Variables(dict[str, Any]):
    """Captures and built-ins; ``users.NAME`` is the user id of actor NAME, ``fresh.NAME``
    a new id in each round of a ``parallel:`` (in each step, outside one)."""

    def __init__(self, user_id: Any, values: dict[str, Any], fresh: Fresh) -> None:
        super().__init__(values)
        self._user_id = user_id
        self._fresh = fresh

    def _fresh_name(self, key: object) -> str | None:
        if isinstance(key, str) and key.startswith(PREFIX) and len(key) > len(PREFIX):
            return key[len(PREFIX):]
        return None

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
                or self._seconds(key) is not None or self._fresh_name(key) is not None)

    def __missing__(self, key: str) -> Any:
        seconds = self._seconds(key)
        if seconds is not None:  # an HTTP date that many seconds from now (Retry-After)
            from email.utils import formatdate

            return formatdate(time.time() + seconds, usegmt=True)
        fresh = self._fresh_name(key)
        if fresh is not None:
            return self._fresh.get(fresh)
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
        # ids of ``${fresh.NAME}``: a generator of their own, so that they do not move the
        # client's ids (and a scenario's ids stay what they were before it used them)
        self.fresh = Fresh(random.Random(seed ^ 0x5EED))
        self.variables: dict[str, Any] = _Variables(self.user_id, {
            "session_id": session, "user_id": self.user_id("alice"),
            "provider_api_key": ctx.provider_api_key, "round": 1,
        }, self.fresh)
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
        self._protocol = adapter(ctx.protocol, ctx.profile)

    @property
    def protocol(self) -> Adapter:
        return self._protocol

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
        slot = SLOT.get()
        sent = {"authorization": f"Bearer {self.token(actor, token)}"} if auth else {}
        if raw is not None or body is not None:
            sent["content-type"] = "application/json"
        sent.update(headers or {})
        content = raw if raw is not None else (
            None if body is None else json.dumps(body).encode())
        if slot is not None:  # a request of a parallel round: its barrier, if any
            await slot.before_send()
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
        if slot is not None:
            slot.exchanges.append(exchange)
        return exchange

    async def read_messages(self, session_id: str, actor: str) -> Exchange:
        return await self.send(None, actor, "GET", "/api/chat/messages",
                               params={"session_id": session_id}, purpose="read")

    # -- the run -------------------------------------------------------------
    async def execute(self) -> ScenarioResult:
        await self.begin()
        try:
            for index, step in enumerate(self.scenario.steps):
                await self.run_step(index, step)
                if self.stopped is not None:
                    break
        except Skip as skip:
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
        ``Skip`` as ``execute`` would stop on it.
        """
        if index == len(self.scenario.steps):
            self.scenario = dataclasses.replace(
                self.scenario, steps=(*self.scenario.steps, step),
                step_lines=(*self.scenario.step_lines, 0))
        record = StepRecord(index=index, kind=step.kind,
                            title=step.title or kind_of(step).title(step),
                            line=self.scenario.step_lines[index])
        self.result.steps.append(record)
        self._step = record
        self.begin_round(index, 1)
        self.ctx.provider.begin_step(index, self._plans(step), self._sides(step))
        try:
            await self.perform(index, step)
        finally:
            end = self.ctx.provider.end_step(index)
            self.step_calls[index] = end.calls
        # a step stopped before it sent anything has no calls to judge
        if record.exchanges or self.stopped is None:
            # side calls (a title request) answer to their own rules, not the step's script
            chat_calls = [c for c in end.calls if not c.side]
            expectations.provider_expect(self, index, step, chat_calls)
            expectations.provider_script(self, index, end._replace(calls=chat_calls))
        if not self.protocol.contract_checks:  # the invariants, after every step's turns
            from harness.checks import invariants

            await invariants.check_step(self, index)
        record.provider_calls = [
            {"model": c.model, "messages": c.messages, "answer": c.answer} for c in end.calls
        ]
        return record

    async def perform(self, index: int, step: Step) -> None:
        """Run one step (or one of a ``parallel:`` step's) by its kind's handler."""
        from harness.runner import steps

        await steps.execute(self, index, step)

    # -- parallel rounds (harness.scenario.steps.parallel) ---------------------------
    def begin_round(self, index: int, number: int, fresh: list[str] | None = None) -> None:
        """Round ``number`` of step ``index`` starts: new ``${fresh.*}`` ids, ``${round}``."""
        self.fresh.next_round(number, int(self.client.clock.now.timestamp() * 1000),
                              fresh or ())
        self.variables["round"] = number

    async def warm_connections(self, count: int) -> None:
        """Open ``count`` connections to the backend (idle in the client's pool), so that
        the requests a barrier releases go out at once, none waiting to connect."""
        async def health() -> None:
            with contextlib.suppress(httpx.HTTPError, TimeoutError):
                await asyncio.wait_for(self.ctx.client.get("/api/health"),
                                       self.ctx.request_timeout_s)

        await asyncio.gather(*(health() for _ in range(count)))

    async def judge_round(self, index: int, step: ParallelStep, slots: list[Slot]) -> None:
        if not self.protocol.contract_checks:  # each turn was judged by the invariants
            return
        from harness.checks import races

        await races.check_round(self, index, step, slots)

    def stop(self, message: str, *, check: Check | str, clause: str | None, step: int) -> None:
        """The steps from here on cannot run because of an answer: fail at ``step`` (the one
        whose answer it was), and run no more steps."""
        self.result.fail(check, message, step=step, clause=clause)
        self.stopped = message

    # -- the expectation checks a step asks for (harness.checks) -------------------
    def expect(self, index: int, ex: Exchange, want: Expect | None, *,
               default: int | str | None, clause: str | None = None, what: str = "") -> None:
        expectations.check_expect(self, index, ex, want, default=default, clause=clause, what=what)

    def judge_chat(self, index: int, step: Step, ex: Exchange, *, streaming: bool
                   ) -> tuple[dict[str, Any] | None, str]:
        return outcome.check_outcome(self, index, step, ex, streaming=streaming)

    def judge_sync(self, index: int, record: Sync, ex: Exchange, stored_before: set[Any]
                   ) -> None:
        expectations.check_sync(self, index, record, ex, stored_before)

    def judge_rows(self, index: int, step: Step, rows: list[dict[str, Any]]) -> None:
        expectations.check_db_rows(self, index, step, rows)  # type: ignore[arg-type]

    # -- what the checks read of the session (RunView) -----------------------------
    @property
    def db(self) -> Database | None:
        return self.ctx.db

    @property
    def strict_fields(self) -> bool:
        return self.ctx.strict_fields

    @property
    def provider_timeout_ms(self) -> int:
        return self.ctx.provider_timeout_ms

    async def check(self) -> ScenarioResult:
        """The built-in checks over everything run so far (failures land in the result)."""
        from harness.checks import run_builtin_checks

        self._step = None
        self.ctx.provider.step = None
        await run_builtin_checks(self)
        self.result.duration_s = time.perf_counter() - self._started
        return self.result

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
        """The step's planned answers; a parallel step's, round after round."""
        subs: tuple[Step, ...] = (step,)
        if isinstance(step, ParallelStep):
            subs = (*step.before_parsed, *step.parsed) * step.rounds
        return [(answer, spec.for_model) for one in subs
                for spec, answer in zip(one.answers(), self.answers(one), strict=True)]

    def _sides(self, step: Step) -> list[Side]:
        """The side rules of the step (a parallel step's, of all its steps), then the
        scenario's, then the protocol's defaults (ai-sdk: the title request)."""
        subs: tuple[Step, ...] = (step,)
        if isinstance(step, ParallelStep):
            subs = (*step.before_parsed, *step.parsed)
        timeout = self.ctx.provider_timeout_ms
        rules = [r.to_side(timeout) for one in subs for r in one.side]
        rules += [r.to_side(timeout) for r in self.scenario.header.side]
        return rules + list(self.protocol.default_sides())

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
                                        location=self.scenario.location(index),
                                        key=f"steps[{index}].body_file",
                                        hint="a body_file is sent as JSON; for bytes that are "
                                        "not JSON, use raw_body") from None
                if too_deep(body):
                    raise ScenarioError(
                        f"{path} nests more than {MAX_DEPTH} levels deep",
                        location=self.scenario.location(index), key=f"steps[{index}].body_file",
                        hint="a deeper body is sent as is with raw_body")
                return body
        raise ScenarioError(
            f"no fixture {name!r}", location=self.scenario.location(index),
            key=f"steps[{index}].body_file",
            hint="looked in " + " and ".join(str(p.parent) for p in candidates),
        )
