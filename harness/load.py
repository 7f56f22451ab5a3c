"""``chat-harness load``: many simulated clients at once, then an audit of what was stored.

A scenario runs one client at a time; the bugs of a chat backend that only show
under load (a lost message when two syncs race, a duplicate key under
concurrent upserts, stats computed from a stale read, a 500 when the pool runs
dry) need many. Each simulated client is the harness's correct front end
(:class:`harness.runner.client.ChatClient`) holding one conversation of its
own, as one of two clients of its user: its turns meet scripted 429s and 5xx
(some retried by the backend, some passed on and retried by the client under
the same id), its syncs are sent twice in a row or twice at once.

The provider answers every client deterministically however the requests
interleave: each client asks for a model of its own, and its answers are
planned up front in that model's queue (``for_model``), in the order its
conversation will ask for them.

Afterwards the audit compares what every client holds with the database and
with the API: no message lost, none duplicated, no 5xx the script did not
cause, each session's ``message_count`` and ``total_tokens`` exact, and every
planned provider answer taken. Throughput and latency are printed, not judged:
they depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from harness.config import RunConfig
    from harness.db import Database
    from harness.provider import Answer, ProviderControl
    from harness.runner.client import ChatClient

USERS_NAMESPACE = uuid.UUID("0b6d1c59-5f37-4a1e-8f55-4c7c4f3b0a11")
START = datetime(2025, 8, 12, 14, 0, tzinfo=UTC)
# what a turn meets at the provider, and how often (weights)
TURN_KINDS = {"ok": 5, "retried-5xx": 2, "429": 2, "5xx-passed-on": 1}
BACKEND_RETRIES = 2  # C-CHAT-3: a 5xx other than 503 is retried twice by the backend
# each client its own model, so its own queue of planned provider answers
MODEL = "load/client-{index:03d}"


@dataclass(frozen=True)
class LoadOptions:
    clients: int = 50
    turns: int = 6
    seed: int = 1
    request_timeout_s: float = 30.0


@dataclass(frozen=True)
class Sample:
    """One request of the load phase."""

    kind: str  # chat, sync
    status: int  # 0: no answer
    elapsed_ms: float
    expected_5xx: bool = False  # the script made the backend answer 5xx on purpose
    error: str | None = None


@dataclass
class LoadReport:
    """What the load did and what the audit found."""

    clients: int
    turns: int
    target: str
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    stored: int = 0  # messages in the database after the run
    expected: int = 0  # messages the clients hold
    lost: int = 0
    duplicated: int = 0
    stats_exact: int = 0  # sessions whose stats are exact
    sessions: int = 0
    planned_left: int = 0  # provider answers planned and never asked for
    db_checked: bool = True

    @property
    def unexpected_5xx(self) -> int:
        return sum(1 for s in self.samples if s.status >= 500 and not s.expected_5xx)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the latencies, nearest rank."""
        values = sorted(s.elapsed_ms for s in self.samples)
        if not values:
            return 0.0
        return values[max(1, math.ceil(len(values) * q / 100)) - 1]

    def render(self) -> str:
        by_kind = Counter(s.kind for s in self.samples)
        scripted = sum(1 for s in self.samples if s.expected_5xx)
        lines = [
            f"load: {self.clients} clients x {self.turns} turns against {self.target}: "
            f"{len(self.samples)} requests in {self.wall_s:.2f} s",
            f"  throughput {self.throughput:.0f} requests/s; latency p50 "
            f"{self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms "
            f"({', '.join(f'{n} {k}' for k, n in sorted(by_kind.items()))})",
            f"  stored {self.stored} of {self.expected} messages: {self.lost} lost, "
            f"{self.duplicated} duplicated" + ("" if self.db_checked else
                                               " (API only: no database access)"),
            f"  5xx: {self.unexpected_5xx} unexpected ({scripted} scripted 502s passed on)",
            f"  stats exact for {self.stats_exact} of {self.sessions} sessions; "
            f"provider answers planned but not asked for: {self.planned_left}",
        ]
        shown = self.problems[:20]
        lines += [f"  problem: {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more problems")
        lines.append("load: OK" if self.ok else f"load: FAILED ({len(self.problems)} problems)")
        return "\n".join(lines)


# -- one simulated client --------------------------------------------------------------


@dataclass
class _Turn:
    kind: str
    text: str
    answers: list[Answer]  # what the provider answers this turn's first attempt
    retry_answers: list[Answer]  # ... and the client's retry under the same id, if any
    sync: str  # "once", "twice" (one after the other) or "concurrent"
    reply: str  # the text this client, and no other, must get back


class _Client:
    """One conversation: its user, its model (its provider queue) and its script."""

    def __init__(self, index: int, seed: int, turns: int, jwt_secret: str, salt: str) -> None:
        """``salt`` keeps ids apart from an earlier load on a database not emptied since."""
        import jwt

        from harness.provider import ErrorAnswer, Reply
        from harness.runner.client import ChatClient, Clock

        self.index = index
        rng = random.Random(f"{salt}{seed}/{index}")
        # two clients per user: a user's sessions are written to at the same time
        self.user_id = str(uuid.uuid5(USERS_NAMESPACE, f"{salt}{seed}/user-{index // 2}"))
        self.model = MODEL.format(index=index)
        self.client: ChatClient = ChatClient(
            session_id=f"conv_load{salt}_{seed}_{index:03d}",
            clock=Clock(START + timedelta(minutes=index)), rng=rng)
        self.token = jwt.encode({"sub": self.user_id, "exp": int(time.time()) + 24 * 3600},
                                jwt_secret, algorithm="HS256")
        kinds, weights = zip(*TURN_KINDS.items(), strict=True)
        self.turns: list[_Turn] = []
        for t in range(turns):
            kind = rng.choices(kinds, weights)[0]
            text = f"client {index} turn {t}: " + " ".join(
                rng.choice(("why", "how", "llm", "token", "bedrock", "retry", "sync"))
                for _ in range(rng.randint(2, 12)))
            reply = Reply(content=f"answer {index}.{t}: " + text[::-1])
            first: list[Answer]
            retry: list[Answer] = []
            if kind == "ok":
                first = [reply]
            elif kind == "retried-5xx":
                first = [ErrorAnswer(status=rng.choice((500, 502, 504))), reply]
            elif kind == "429":
                first, retry = [ErrorAnswer(status=429, retry_after=1)], [reply]
            else:  # every attempt fails: the backend answers 502, the client retries later
                first = [ErrorAnswer(status=502)] * (1 + BACKEND_RETRIES)
                retry = [reply]
            sync = rng.choices(("once", "twice", "concurrent"), (2, 1, 1))[0]
            self.turns.append(_Turn(kind, text, first, retry, sync, reply.content))

    def plan(self, provider: ProviderControl) -> None:
        """Queue every answer of the conversation for this client's model, in order."""
        for turn in self.turns:
            for answer in turn.answers + turn.retry_answers:
                provider.plan(answer, for_model=self.model)


class _Load:
    """Runs the clients against one HTTP client, recording every request."""

    def __init__(self, http: httpx.AsyncClient, report: LoadReport, timeout_s: float) -> None:
        self.http = http
        self.report = report
        self.timeout_s = timeout_s

    async def send(self, client: _Client, kind: str, method: str, path: str, *,
                   body: Any = None, params: dict[str, str] | None = None,
                   expected_5xx: bool = False, record: bool = True) -> tuple[int, Any]:
        import httpx

        headers = {"authorization": f"Bearer {client.token}"}
        started = time.perf_counter()
        status, parsed, error = 0, None, None
        try:
            response = await asyncio.wait_for(
                self.http.request(method, path, json=body, params=params, headers=headers),
                self.timeout_s)
            status = response.status_code
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
        except TimeoutError:
            error = f"no answer within {self.timeout_s:.0f} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if record:
            self.report.samples.append(Sample(kind, status, (time.perf_counter() - started)
                                              * 1000, expected_5xx and status >= 500, error))
        if error is not None:
            self.problem(client, f"{method} {path}: {error}")
        return status, parsed

    def problem(self, client: _Client, text: str) -> None:
        self.report.problems.append(f"client {client.index} ({client.client.session_id}): {text}")

    async def chat(self, client: _Client, turn: _Turn, msg: dict[str, Any], *,
                   retrying: bool) -> bool:
        """One POST /api/chat and its sync(s); whether the answer came."""
        c = client.client
        body = c.chat_body(msg, client.model, current_id=True)
        failing = not retrying and turn.kind in ("429", "5xx-passed-on")
        want = (429 if turn.kind == "429" else 502) if failing else 200
        status, answer = await self.send(client, "chat", "POST", "/api/chat", body=body,
                                         expected_5xx=failing)
        if status != want:
            self.problem(client, f"POST /api/chat of {msg['id']} answered {status}, "
                         f"expected {want} ({turn.kind}{', retry' if retrying else ''}): "
                         f"{str(answer)[:200]}")
        data = answer.get("data") if isinstance(answer, dict) and status == 200 else None
        if isinstance(data, dict):
            if data.get("request_id") != msg["id"]:
                self.problem(client, f"request_id {data.get('request_id')!r} does not name "
                             f"the message sent, {msg['id']}")
            if data.get("response") != turn.reply:
                self.problem(client, f"got the answer {str(data.get('response'))[:60]!r}, "
                             f"planned for it: {turn.reply[:60]!r}")
            _, batch = c.on_success(data, 0, clear_error=retrying)
        else:
            batch = [c.on_failure(msg, answer if isinstance(answer, dict) else {})]
        await self.sync(client, turn, {"messages": batch, "sessionId": c.session_id})
        return data is not None

    async def sync(self, client: _Client, turn: _Turn, body: dict[str, Any]) -> None:
        """Store the batch; again right after, or twice at once, as the turn says."""
        times = 1 if turn.sync == "once" else 2
        if turn.sync == "concurrent":
            results = await asyncio.gather(*(
                self.send(client, "sync", "POST", "/api/chat/messages", body=body)
                for _ in range(times)))
        else:
            results = [await self.send(client, "sync", "POST", "/api/chat/messages", body=body)
                       for _ in range(times)]
        for status, answer in results:
            if not 200 <= status < 300:
                ids = ", ".join(m["id"] for m in body["messages"])
                self.problem(client, f"sync of {ids} ({turn.sync}) answered {status}: "
                             f"{str(answer)[:200]}")

    async def conversation(self, client: _Client) -> None:
        c = client.client
        for t, turn in enumerate(client.turns):
            msg = c.user_message(turn.text, client.model, t)
            if not await self.chat(client, turn, msg, retrying=False) and turn.retry_answers:
                await self.chat(client, turn, msg, retrying=True)


# -- the audit -----------------------------------------------------------------------------


def _expected_stats(c: ChatClient) -> tuple[int, int]:
    ok = [m for m in c.history if not m.get("error")]
    tokens = sum(int(m.get("total_tokens") or 0) for m in ok if m["role"] == "assistant")
    return len(ok), tokens


async def _audit(load: _Load, clients: list[_Client], db: Database | None) -> None:
    report = load.report
    report.sessions = len(clients)
    rows_by_session: dict[str, list[dict[str, Any]]] = {}
    stats_by_session: dict[str, dict[str, Any]] = {}
    if db is not None:
        sessions = [cl.client.session_id for cl in clients]
        for row in db.query("SELECT id, session_id, role, content, error_message "
                            "FROM chat_messages WHERE session_id = ANY(%s)", [sessions]):
            rows_by_session.setdefault(row["session_id"], []).append(row)
        for row in db.query("SELECT id, user_id::text AS user_id, message_count, total_tokens "
                            "FROM chat_sessions WHERE id = ANY(%s)", [sessions]):
            stats_by_session[row["id"]] = row
    else:
        report.db_checked = False
    for cl in clients:
        c = cl.client
        held = {m["id"]: m for m in c.history}
        report.expected += len(held)
        count, tokens = _expected_stats(c)
        exact = True
        # the API: the conversation in order, each message once
        status, body = await load.send(cl, "read", "GET", "/api/chat/messages",
                                       params={"session_id": c.session_id}, record=False)
        items = body.get("messages") if isinstance(body, dict) else None
        if status != 200 or not isinstance(items, list):
            load.problem(cl, f"GET /api/chat/messages answered {status}: {str(body)[:200]}")
            items = []
        ids = [i.get("id") for i in items if isinstance(i, dict)]
        dup = [k for k, n in Counter(ids).items() if n > 1]
        if dup:
            report.duplicated += len(dup)
            load.problem(cl, f"the API lists {dup} more than once")
        if ids != [m["id"] for m in c.history]:
            load.problem(cl, f"the API lists {ids}, the client holds "
                         f"{[m['id'] for m in c.history]}")
        for item in items:
            if not isinstance(item, dict):
                continue
            mine = held.get(item.get("id"))
            if mine is not None and (item.get("content") != mine["content"]
                                     or item.get("error") is not bool(mine.get("error"))):
                load.problem(cl, f"the API returns {item.get('id')} with other content or "
                             "error flag than the client stored")
        # the database: the same rows, none lost, none extra
        if db is not None:
            rows = rows_by_session.get(c.session_id, [])
            report.stored += len(rows)
            stored = {r["id"]: r for r in rows}
            lost = sorted(set(held) - set(stored))
            extra = sorted(set(stored) - set(held))
            report.lost += len(lost)
            report.duplicated += len(extra)
            if lost:
                load.problem(cl, f"lost in the database: {lost}")
            if extra:
                load.problem(cl, f"in the database but never sent: {extra}")
            for mid in set(held) & set(stored):
                row, mine = stored[mid], held[mid]
                if (row["content"] != mine["content"]
                        or (row["error_message"] is not None) != bool(mine.get("error"))):
                    load.problem(cl, f"row {mid} differs from what the client stored")
            stats = stats_by_session.get(c.session_id)
            if stats is None:
                exact = False
                load.problem(cl, "no chat_sessions row")
            else:
                got = (stats["message_count"], int(stats["total_tokens"]))
                if got != (count, tokens):
                    exact = False
                    load.problem(cl, f"stats in the database: message_count, total_tokens = "
                                 f"{got}, expected {(count, tokens)}")
                if stats["user_id"] != cl.user_id:
                    load.problem(cl, f"session owned by {stats['user_id']}, not {cl.user_id}")
        else:
            report.stored += len(set(ids))
            report.lost += len(set(held) - set(ids))
        # the API's stats
        status, body = await load.send(cl, "read", "GET", "/api/chat/session",
                                       params={"id": c.session_id}, record=False)
        session = body.get("session") if isinstance(body, dict) else None
        got_api = ((session.get("message_count"), session.get("total_tokens"))
                   if isinstance(session, dict) else None)
        if got_api != (count, tokens):
            exact = False
            load.problem(cl, f"GET /api/chat/session: message_count, total_tokens = {got_api} "
                         f"(status {status}), expected {(count, tokens)}")
        report.stats_exact += exact


# -- the whole run ------------------------------------------------------------------------


async def _run(load: _Load, clients: list[_Client], db: Database | None) -> None:
    began = time.perf_counter()
    await asyncio.gather(*(load.conversation(cl) for cl in clients))
    load.report.wall_s = time.perf_counter() - began
    await _audit(load, clients, db)


def run_load(config: RunConfig, options: LoadOptions) -> LoadReport:
    """Start the database and the target as a run does, load it, audit it, stop it all."""
    from harness.runner.session import Harness

    # a database the harness did not create may hold an earlier load's ids
    salt = secrets.token_hex(3) if config.mode == "url" else ""
    clients = [_Client(i, options.seed, options.turns, config.jwt_secret, salt)
               for i in range(options.clients)]
    with Harness(config) as harness:
        harness.start()
        target = harness.target
        assert target is not None
        report = LoadReport(options.clients, options.turns, target.name)
        provider = target.provider
        provider.reset()
        for cl in clients:
            cl.plan(provider)
        load = _Load(target.client, report, options.request_timeout_s)
        harness.call(_run(load, clients, harness.db if harness.has_db else None))
        left = provider.pending()
        report.planned_left = len(left)
        if left:
            models = Counter(model for model, _ in left)
            report.problems.append(f"{len(left)} planned provider answers were never asked "
                                   f"for: {dict(models)}")
        provider.discard_pending()
    return report


# -- the command -----------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """``chat-harness load``: the options of ``run`` that say what to start, and the load's."""
    load = sub.add_parser("load", help="many concurrent simulated clients against a backend, "
                          "then an audit (lost, duplicated, 5xx, stats); exits 1 on a problem")
    defaults = LoadOptions()
    load.add_argument("--clients", type=int, default=defaults.clients,
                      help=f"concurrent clients ({defaults.clients})")
    load.add_argument("--turns", type=int, default=defaults.turns,
                      help=f"turns per conversation ({defaults.turns})")
    load.add_argument("--seed", type=int, default=defaults.seed,
                      help=f"seed of the clients' scripts ({defaults.seed})")
    load.add_argument("--mutant", action="append", default=[], metavar="NAME")
    load.add_argument("--db", default=None, choices=("auto", "embedded", "container", "url"))
    load.add_argument("--db-url", default=None, metavar="URL")
    load.add_argument("--db-image", default=None, metavar="IMAGE")
    load.add_argument("--target-cmd", default=None, metavar="CMD")
    load.add_argument("--target-url", default=None, metavar="URL")
    load.add_argument("--provider-port", default=None, type=int, metavar="N")
    load.add_argument("--no-schema", action="store_true")
    load.add_argument("--jwt-secret", default=None, metavar="SECRET")
    load.add_argument("--start-timeout", default=None, type=float, metavar="SECONDS")
    load.add_argument("--step-timeout", default=defaults.request_timeout_s, type=float,
                      metavar="SECONDS", help="how long one request may go unanswered "
                      f"({defaults.request_timeout_s:.0f})")
    load.add_argument("--reports", default=None, metavar="DIR",
                      help="where --target-cmd's log goes (default: reports)")


def main(args: argparse.Namespace) -> int:
    from harness.config import RunConfig
    from harness.errors import ConfigError

    if args.clients < 1 or args.turns < 1 or args.step_timeout <= 0:
        raise ConfigError(
            f"--clients {args.clients} --turns {args.turns} --step-timeout {args.step_timeout}: "
            "clients and turns must be at least 1, the step timeout above 0",
            hint="e.g. chat-harness load --clients 10 --turns 3")
    config = RunConfig.from_options(
        mutants=args.mutant, db=args.db, db_url=args.db_url, db_image=args.db_image,
        target_cmd=args.target_cmd, target_url=args.target_url,
        provider_port=args.provider_port, no_schema=args.no_schema,
        jwt_secret=args.jwt_secret, start_timeout_s=args.start_timeout,
        reports=args.reports,
    )
    report = run_load(config, LoadOptions(clients=args.clients, turns=args.turns,
                                          seed=args.seed, request_timeout_s=args.step_timeout))
    print(report.render())
    return 0 if report.ok else 1
