"""What must hold after every generated step: the built-in checks, and the stats.

The built-in checks (:data:`harness.checks.CHECKS`) are the invariants,
unchanged: a bug the explorer finds is one a scenario reports the same way.
:meth:`harness.explore.driver.LiveRun.check` runs them after every step, and
``idempotent`` once at the end of the sequence. On top comes
:func:`check_stats`: the session's stats (C-MSG-7) against what the client
stored. Cheap (one read), and the only invariant that sees a backend
forgetting to refresh them after an update. And :func:`check_refused`: a
session that only ever got refused batches does not exist (C-MSG-3, C-MSG-1:
nothing of a refused batch is stored, its session included). The built-in
checks read only the sessions something was stored into, so they cannot see
a refused batch that went elsewhere half written. Neither is a built-in check,
so a failure of either is written into the saved scenario as steps with an
``expect`` (:func:`invariant_steps`), so that the scenario fails the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harness.checks.conversation import final_versions, owners
from harness.contract import oracle
from harness.contract.oracle import parse_ts
from harness.scenario.model import DbStep, Expect, HttpStep

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.result import Failure
    from harness.runner.run import ScenarioRun
    from harness.scenario.model import Step

_FAR = datetime.max.replace(tzinfo=UTC)


def stored_messages(run: ScenarioRun, session: str) -> list[dict[str, Any]]:
    """The last stored version of each message of ``session``, in conversation order."""
    first: dict[str, int] = {}
    for n, sync in enumerate(run.client.syncs):
        if sync.accepted and sync.body.get("sessionId") == session:
            for k, m in enumerate(sync.messages()):
                first.setdefault(str(m.get("id")), n * 1000 + k)
    latest = {mid: msg for mid, (sid, msg, _) in final_versions(run).items() if sid == session}
    return sorted(latest.values(), key=lambda m: (parse_ts(m.get("timestamp")) or _FAR,
                                                  first.get(str(m.get("id")), 0)))


def expected_stats(run: ScenarioRun, session: str) -> dict[str, Any]:
    """C-MSG-7 from the client's side: over the messages it stored in ``session``."""
    return oracle.expected_stats(stored_messages(run, session))


async def check_stats(run: ScenarioRun) -> None:
    """The session's stats, as ``GET /api/chat/session`` reads them, are the expected ones."""
    session = run.client.session_id
    if not any(s.accepted and s.body.get("sessionId") == session for s in run.client.syncs):
        return
    ex = await run.send(None, "alice", "GET", "/api/chat/session", params={"id": session},
                        purpose="read")
    got = ex.json().get("session")
    if not ex.ok or not isinstance(got, dict):
        run.result.fail("stats", f"reading session {session} got {ex.brief()}",
                        expected="200 with the session", actual=ex.response_body,
                        clause="C-SES-3")
        return
    want = expected_stats(run, session)
    diffs = [f"{k} {got.get(k)!r}, expected {v!r}" for k, v in want.items() if got.get(k) != v]
    if diffs:
        run.result.fail("stats", f"session {session} has stale or wrong stats: "
                        + "; ".join(diffs), expected=want,
                        actual={k: got.get(k) for k in want}, clause="C-MSG-7")


def stats_step(run: ScenarioRun) -> HttpStep:
    """``check_stats`` as a scenario step: read the session, expect these stats."""
    return HttpStep(
        title="the session's stats count what was stored (C-MSG-7)",
        http="GET /api/chat/session", query={"id": "${session_id}"},
        expect=Expect(status=200, body={"session": expected_stats(run, run.client.session_id)}),
    )


def refused_only(run: ScenarioRun) -> dict[str, str]:
    """Sessions that only refused syncs went to: session -> the actor who posted there."""
    known = owners(run)
    out: dict[str, str] = {}
    for sync in run.client.syncs:
        sid = sync.body.get("sessionId")
        if not sync.accepted and isinstance(sid, str) and sid not in known:
            out.setdefault(sid, sync.actor)
    return out


async def check_refused(run: ScenarioRun) -> None:
    """Nothing of a refused batch is stored: a session only refused ones went to is 404."""
    for session, actor in refused_only(run).items():
        ex = await run.read_messages(session, actor)
        if ex.status == 404:
            continue
        items = ex.json().get("messages")
        ids = [str(m.get("id")) for m in items if isinstance(m, dict)] if isinstance(
            items, list) else []
        held = f" holding {', '.join(ids)}" if ids else ""
        run.result.fail(
            "atomic", f"session {session} got only refused batches, yet {ex.brief()}{held}: "
            "a refused batch must store nothing, not its first messages, not its session",
            expected="404 not_found", actual={"status": ex.status, "body": ex.response_body},
            clause="C-MSG-3")


def refused_steps(run: ScenarioRun, claims: Sequence[Claim] = ()) -> list[Step]:
    """``check_refused`` as scenario steps: each such session reads back 404.

    A session a race's loser posted to is another matter: which post loses
    changes from run to run, so its step says what holds for either: no session
    of the race is left without a message (:func:`empty_sessions_step`).
    """
    raced = {s for c in claims for s in c.sessions}
    steps: list[Step] = []
    refused = refused_only(run)
    if raced & set(refused):
        steps.append(empty_sessions_step(run, sorted(raced)))
    for session, actor in refused.items():
        if session in raced:
            continue
        step = HttpStep(title="nothing of the refused batch was stored (C-MSG-3)",
                        http="GET /api/chat/messages",
                        query={"session_id": session.replace(run.client.session_id,
                                                             "${session_id}")},
                        expect=Expect(status=404, body={"code": "not_found"}))
        steps.append(step.model_copy(update={"actor": actor}) if actor != "alice" else step)
    return steps


@dataclass(frozen=True)
class Claim:
    """Two users posted one new message id at once (harness.explore.races): exactly one
    of them holds it after, whatever the order (C-AUTH-3)."""

    message_id: str
    step: int
    sessions: tuple[str, ...] = ()  # the sessions it was posted to (as the run named them)


async def check_claims(run: ScenarioRun, claims: Sequence[Claim]) -> None:
    """Each claimed id has exactly one row: one post won, the other was refused (409)."""
    if run.db is None:
        return
    for claim in claims:
        rows = run.db.query("SELECT session_id FROM chat_messages WHERE id = %s",
                            (claim.message_id,))
        if len(rows) != 1:
            run.result.fail(
                "lost", f"message {claim.message_id}, posted by two users at once, is stored "
                f"{len(rows)} times: exactly one post must win (the other 409)",
                step=claim.step, expected=1, actual=len(rows), clause="C-AUTH-3")


def empty_sessions_step(run: ScenarioRun, sessions: list[str]) -> DbStep:
    """The sessions of a race hold a message each or do not exist: the loser's batch,
    its new session included, is not stored (C-MSG-3), whoever lost."""
    named = [s.replace(run.client.session_id, "${session_id}") for s in sessions]
    return DbStep(
        title="no session of the race is left empty: nothing of the refused batch (C-MSG-3)",
        db="SELECT count(*)::int AS n FROM chat_sessions s WHERE s.id IN ("
        + ", ".join(["%s"] * len(named)) + ") AND NOT EXISTS "
        "(SELECT 1 FROM chat_messages m WHERE m.session_id = s.id)",
        params=named, expect=Expect(rows=[{"n": 0}]))


def claim_steps(claims: Sequence[Claim], failures: Sequence[Failure]) -> list[Step]:
    """``check_claims`` as scenario steps: the broken claims' ids have one row each."""
    broken = {f.step for f in failures if f.check == "lost" and f.clause == "C-AUTH-3"}
    return [DbStep(title="exactly one of the two posts won (C-AUTH-3)",
                   db="SELECT count(*)::int AS n FROM chat_messages WHERE id = %s",
                   params=[c.message_id], expect=Expect(rows=[{"n": 1}]))
            for c in claims if c.step in broken]


def invariant_steps(run: ScenarioRun, failures: Sequence[Failure],
                    claims: Sequence[Claim] = ()) -> list[Step]:
    """The steps a saved finding needs to fail as it did: this module's invariants."""
    broken = {f.check for f in failures}
    out: list[Step] = []
    if "stats" in broken:
        out.append(stats_step(run))
    if "atomic" in broken:
        out += refused_steps(run, claims)
    return out + claim_steps(claims, failures)
