"""The expectations a scenario writes on a step, checked while the step runs.

``expect:`` on an answer (status, body, the field an error names, headers),
``expect.provider`` on what the backend sent the provider, the provider script
played out exactly (``provider_script``), the client's syncs (``sync``) and a
db step's rows (``db``). Each reads the run through :class:`RunView` and
reports with ``run.result.fail``; the step kinds ask for them through the
runner (``StepRun.expect`` and friends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.result import Check
from harness.scenario import template
from harness.scenario.match import Matcher, mismatches, status_matches
from harness.scenario.model import ParallelStep

if TYPE_CHECKING:
    from harness.provider import ProviderCall, StepEnd
    from harness.result import Exchange
    from harness.scenario.frontend import Sync
    from harness.scenario.model import DbStep, Expect, Step
    from harness.scenario.view import RunView

# clauses every route serves (the envelope, the token): an expectation stands for one
# only when its scenario is about nothing more specific
GENERIC_CLAUSES = frozenset({"C-ERR-1", "C-ERR-2", "C-AUTH-1"})


def _provider_clause(run: RunView, neutral: str | None = None) -> str | None:
    """What a failure about the provider's calls stands for: C-CHAT-3 under the contract;
    under another protocol the invariant (``neutral``), if one says it, else nothing."""
    return "C-CHAT-3" if run.protocol.contract_checks else neutral


def provider_expect(run: RunView, index: int, step: Step, calls: list[ProviderCall]) -> None:
    """A step's ``expect.provider``: what the backend sent the provider (C-CHAT-3, C-RUN-1)."""
    want = step.expect.provider if step.expect else None
    if want is None:
        return
    if want.calls is not None and len(calls) != want.calls:
        run.result.fail("expect", f"the backend called the provider {len(calls)} time(s), "
                        f"expected {want.calls}", step=index, expected=want.calls,
                        actual=[c.answer for c in calls], clause=_provider_clause(run))
    for c in calls:
        if want.model is not None and c.model != want.model:
            run.result.fail("expect", f"provider call {c.index + 1} asked for model "
                            f"{c.model!r}, expected {want.model!r}", step=index,
                            expected=want.model, actual=c.model, clause=_provider_clause(run))
        streamed = isinstance(c.body, dict) and c.body.get("stream") is True
        if want.stream is not None and streamed != want.stream:
            run.result.fail("expect", f"provider call {c.index + 1} had stream={streamed}",
                            step=index, expected=want.stream, actual=streamed,
                            clause=_provider_clause(run))
    for c in calls:
        if want.path is not None and not c.path.endswith(want.path):
            run.result.fail("expect", f"provider call {c.index + 1} went to {c.path!r}, "
                            f"expected {want.path!r}", step=index, expected=want.path,
                            actual=c.path, clause="C-RUN-1")
        for name, value in want.headers.items():
            value = template.render(value, run.variables, location=run.scenario.location(index),
                                    key=f"steps[{index}].expect.provider.headers.{name}")
            got = {k.lower(): v for k, v in c.headers.items()}.get(name.lower())
            if got != value:
                run.result.fail("expect", f"provider call {c.index + 1} had header {name}: "
                                f"{got!r}, expected {value!r}", step=index, expected=value,
                                actual=got, clause="C-RUN-1")
    if want.messages is not None and calls:
        expected = template.render(want.messages, run.variables,
                                   location=run.scenario.location(index),
                                   key=f"steps[{index}].expect.provider.messages")
        sent = calls[-1].messages
        if not run.protocol.contract_checks and isinstance(sent, list):
            # another protocol's SDK adds its system prompt and sends content as parts:
            # the roles and texts are what is compared
            from harness.checks.invariants import provider_text

            sent = [{"role": r, "content": t} for r, t in map(provider_text, sent)
                    if r not in ("system", "developer")]
        if sent != expected:
            run.result.fail("expect", "the provider was sent other messages than expected",
                            step=index, expected=expected, actual=sent,
                            clause=_provider_clause(run, "I-CONTEXT"))

def provider_script(run: RunView, index: int, end: StepEnd) -> None:
    """The backend called the provider as often as the step's script planned."""
    if not run.scenario.check_enabled(Check.PROVIDER_SCRIPT):
        return
    calls, pending = end
    unscripted = [c for c in calls if not c.scripted]
    if unscripted and not run.protocol.contract_checks and _fails_last(run, index):
        unscripted = []  # an SDK retrying a failed call (the AI SDK does, twice)
    step = run.scenario.steps[index]
    subs = step.parsed if isinstance(step, ParallelStep) else (step,)
    planned = sum(len(s.answers()) for s in subs)
    if unscripted:
        run.result.fail(
            "provider_script",
            f"the backend called the provider {len(calls)} time(s); the step planned "
            f"{planned} answer(s), so {len(unscripted)} call(s) got no scripted answer",
            step=index, expected=f"{planned} call(s)", actual=f"{len(calls)} call(s)",
            clause=_provider_clause(run),
        )
    if pending:
        run.result.fail(
            "provider_script",
            f"{len(pending)} planned provider answer(s) were never asked for "
            f"(the backend made {len(calls)} call(s))",
            step=index, expected=f"{planned} call(s)", actual=f"{len(calls)} call(s)",
            clause=_provider_clause(run),
        )

def _fails_last(run: RunView, index: int) -> bool:
    step = run.scenario.steps[index]
    answers = step.answers() if not isinstance(step, ParallelStep) else []
    return bool(answers) and answers[-1].reply is None


def check_expect(run: RunView, index: int, ex: Exchange, expect: Expect | None, *,
                 default: int | str | None, clause: str | None = None,
                 what: str = "") -> None:
    """A step's ``expect:`` on one answer: status, body, the field an error names, headers."""
    status = expect.status if expect and expect.status is not None else default
    ex.expected = status
    clause = clause or clause_for(run, ex)
    if ex.error:
        run.result.fail("expect", f"{what}{ex.method} {ex.path} got no answer: {ex.error}",
                        step=index, expected=status, actual=None, clause=clause)
        return
    if status is not None and not status_matches(status, ex.status):
        run.result.fail(
            "expect", f"{what}{ex.brief()}, expected status {status}",
            step=index, expected=status, actual={"status": ex.status, "body": ex.response_body},
            clause=clause,
        )
    if expect and expect.body is not None:
        body = render_expected(run, index, expect.body, "expect.body")
        diffs = mismatches(body, ex.response_body)
        if diffs:
            run.result.fail("expect", f"{what}" + "; ".join(diffs), step=index,
                            expected=body, actual=ex.response_body, clause=clause)
    if expect and expect.names_field is not None:
        texts = [ex.json().get(k) for k in ("error", "details")]
        said = " / ".join(t for t in texts if isinstance(t, str))
        if expect.names_field.lower() not in said.lower():
            run.result.fail(
                "expect", f"{what}the error should name the field {expect.names_field!r} "
                f"(in 'error' or 'details'); it said {said!r}", step=index,
                expected=expect.names_field, actual=ex.response_body, clause="C-ERR-3")
    for name, want in (expect.headers if expect else {}).items():
        got = ex.headers.get(name.lower())
        if isinstance(want, Matcher):
            problem = None if got is None and want.kind == "absent" else (
                f"missing (expected {want!r})" if got is None else want.problem(got))
        else:
            want = template.render(str(want), run.variables, location=run.scenario.location(index),
                                   key=f"steps[{index}].expect.headers.{name}")
            problem = None if got == want else f"expected {want!r}, got {got!r}"
        if problem:
            run.result.fail("expect", f"{what}header {name}: {problem}",
                            step=index, expected=want, actual=got, clause=clause)

def covered_clause(run: RunView) -> str | None:
    """What a scenario's own rows check stands for: its first specific covered clause."""
    covers = run.scenario.header.covers
    specific = [c for c in covers if c not in GENERIC_CLAUSES]
    chosen = specific or list(covers)
    return chosen[0] if chosen else None

def clause_for(run: RunView, ex: Exchange) -> str | None:
    """The clause an expectation on this answer stands for.

    The scenario's first covered clause that the route serves, else its first
    covered clause (a read that shows a refused batch was not written stands for
    C-MSG-3, which the read route does not serve); the envelope and auth clauses
    only when the scenario covers nothing more specific; else the route's own.
    """
    from harness.contract.openapi import operation_for

    op = operation_for(ex.method, ex.path)
    served = op.clauses if op is not None else ("C-ERR-2",)
    covers = run.scenario.header.covers
    specific = [c for c in covers if c not in GENERIC_CLAUSES]
    for choice in ([c for c in specific if c in served], specific,
                   [c for c in covers if c in served]):
        if choice:
            return choice[0]
    return op.clause if op is not None else "C-ERR-2"

def render_expected(run: RunView, index: int, value: Any, key: str) -> Any:
    """``value`` with its variables filled in, also inside matchers (``!instant ${t}``)."""
    if isinstance(value, Matcher):
        arg = template.render(value.arg, run.variables, location=run.scenario.location(index),
                              key=f"steps[{index}].{key}")
        return Matcher(value.kind, str(arg))
    if isinstance(value, dict):
        return {k: render_expected(run, index, v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_expected(run, index, v, f"{key}[{i}]")
                for i, v in enumerate(value)]
    return template.render(value, run.variables, location=run.scenario.location(index),
                           key=f"steps[{index}].{key}")


def check_sync(run: RunView, index: int, record: Sync, ex: Exchange,
               stored_before: set[Any]) -> None:
    """A sync the client made must be stored (C-MSG-8); a stored id again too (C-MSG-2)."""
    if ex.ok:
        return
    client = run.client
    again = [m for m in record.messages() if m.get("id") in stored_before]
    code = ex.json().get("code")
    got = f"{ex.status} {code}" if isinstance(code, str) else str(ex.status or ex.error)
    if again:
        what = ", ".join(f"{m['id']} ({client.describe(m['id'])})" for m in again)
        message = (f"storing the already stored message {what} again got {got}; "
                   "posting a stored id must update it, never fail")
        clause = "C-MSG-2"
    else:
        ids = ", ".join(str(m.get("id")) for m in record.messages())
        message = f"storing messages {ids} got {got}"
        clause = "C-MSG-8"
    run.result.fail(Check.SYNC, message, step=index, expected="2xx",
                    actual={"status": ex.status, "body": ex.response_body}, clause=clause)


def check_db_rows(run: RunView, index: int, step: DbStep, rows: list[dict[str, Any]]) -> None:
    """A db step's ``expect.row_count`` and ``expect.rows`` (partial per row)."""
    expect = step.expect
    where = run.scenario.location(index)
    if expect is not None and expect.row_count is not None and len(rows) != expect.row_count:
        run.result.fail(Check.DB, f"the query returned {len(rows)} row(s), expected "
                        f"{expect.row_count}", step=index, expected=expect.row_count,
                        actual=rows, clause=covered_clause(run))
    if expect is not None and expect.rows is not None:
        want = template.render(expect.rows, run.variables, location=where,
                               key=f"steps[{index}].expect.rows")
        diffs = mismatches(want, rows, "rows")
        if diffs:
            run.result.fail(Check.DB, "; ".join(diffs), step=index, expected=want, actual=rows,
                            clause=covered_clause(run))
