"""What must hold after every generated step: the built-in checks, and the stats.

The built-in checks (:data:`harness.checks.CHECKS`) are the invariants,
unchanged: a bug the explorer finds is one a scenario reports the same way.
:meth:`harness.explore.driver.LiveRun.check` runs them after every step, and
``idempotent`` once at the end of the sequence. On top comes
:func:`check_stats`: the session's stats (C-MSG-7) against what the client
stored. Cheap (one read), and the only invariant that sees a backend
forgetting to refresh them after an update. Because it is not a built-in
check, a failure of it is written into the saved scenario as a step with an
``expect`` (:func:`stats_step`), so that the scenario fails the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harness.checks.conversation import final_versions
from harness.contract import oracle
from harness.contract.oracle import parse_ts
from harness.scenario.model import Expect, HttpStep

if TYPE_CHECKING:
    from harness.runner.run import ScenarioRun

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
