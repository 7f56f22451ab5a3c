"""Every answer of the run, whatever the step: error envelopes and server errors.

These checks read the exchanges the scenario already made (no new requests),
so they hold every error answer to C-ERR-1/C-ERR-2 without each scenario
having to spell the envelope out, and catch a 5xx that no step asked for.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from harness.contract.oracle import parse_ts
from harness.scenario.match import short, status_matches

if TYPE_CHECKING:
    from harness.checks.conversation import Snapshot
    from harness.result import Exchange
    from harness.scenario.view import RunView

# C-ERR-2: each code has one status
CODE_STATUS: dict[str, int] = {
    "bad_request": 400, "auth_required": 401, "token_invalid": 401, "token_expired": 401,
    "payment_required": 402, "not_found": 404, "method_not_allowed": 405, "conflict": 409,
    "payload_too_large": 413, "unprocessable_entity": 422, "too_many_requests": 429,
    "internal_server_error": 500, "bad_gateway": 502, "service_unavailable": 503,
    "gateway_timeout": 504,
}
# C-ERR-3: what a 500 must never show: SQL as databases print it (upper case: an error
# text in plain English may say "select another model from the list"), a Python
# traceback, a driver's exception names
LEAKS = re.compile(r"\b(INSERT INTO|SELECT \S.* FROM|UPDATE \S+ SET|DELETE FROM|psycopg|"
                   r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+)")


def envelope_problems(status: int, body: Any) -> list[str]:
    """How an error answer's body breaks C-ERR-1/C-ERR-2 (empty when it does not)."""
    if not isinstance(body, dict):
        return [f"the body is not a JSON object: {short(body)}"]
    out = []
    for key in ("error", "code"):
        if not isinstance(body.get(key), str):
            out.append(f"{key!r} is not a string: {short(body.get(key))}")
    stamp = body.get("timestamp")
    if not isinstance(stamp, str) or parse_ts(stamp) is None:
        out.append(f"'timestamp' is not an ISO-8601 time: {short(stamp)}")
    if "details" in body and not isinstance(body["details"], str):
        out.append(f"'details' is not a string: {short(body['details'])}")
    retry = body.get("retryAfter")
    if "retryAfter" in body and (not isinstance(retry, int) or isinstance(retry, bool)):
        out.append(f"'retryAfter' is not an integer: {short(retry)}")
    tips = body.get("suggestions")
    if "suggestions" in body and not (
            isinstance(tips, list) and all(isinstance(t, str) for t in tips)):
        out.append(f"'suggestions' is not a list of strings: {short(tips)}")
    code = body.get("code")
    if isinstance(code, str):
        paired = CODE_STATUS.get(code)
        if paired is None:
            out.append(f"code {code!r} is not one of the contract's codes")
        elif paired != status:
            out.append(f"code {code!r} goes with status {paired}, not {status}")
    return out


def _where(ex: Exchange) -> str:
    return f"{ex.method} {ex.path} ({ex.purpose})"


async def check_envelopes(run: RunView, state: Snapshot) -> None:
    """Every error answer has the envelope; every answer has ``x-request-id``."""
    for ex in run.result.exchanges:
        if ex.error:
            continue
        if "x-request-id" not in ex.headers:
            run.result.fail("envelope", f"{_where(ex)} -> {ex.status} has no x-request-id header",
                            step=ex.step, expected="x-request-id: <id>",
                            actual=sorted(ex.headers), clause="C-ERR-1")
        if ex.status < 400:
            continue
        problems = envelope_problems(ex.status, ex.response_body)
        if problems:
            state.reported.add(id(ex))
            run.result.fail(
                "envelope", f"{_where(ex)} -> {ex.status}: " + "; ".join(problems),
                step=ex.step, expected="{error, code, timestamp} with a code of that status",
                actual=ex.response_body,
                clause="C-ERR-2" if any("goes with" in p or "codes" in p for p in problems)
                else "C-ERR-1",
            )


def _already_reported(run: RunView, ex: Exchange) -> bool:
    return any(
        f.step == ex.step and isinstance(f.actual, dict) and f.actual.get("status") == ex.status
        for f in run.result.failures
    )


async def check_server_errors(run: RunView, state: Snapshot) -> None:
    """No 5xx that no expectation allowed; a 500 never shows SQL or a traceback."""
    for ex in run.result.exchanges:
        if ex.status < 500:
            continue
        text = ex.response_body if isinstance(ex.response_body, str) else repr(ex.response_body)
        leak = LEAKS.search(text) if ex.status == 500 else None
        if leak:
            run.result.fail("server_error", f"{_where(ex)} -> {ex.status} shows internals "
                            f"({leak.group(0)!r}) in its body", step=ex.step,
                            expected="no SQL, no traceback", actual=ex.response_body,
                            clause="C-ERR-3")
        allowed = ex.expected is not None and status_matches(ex.expected, ex.status)
        if allowed or _already_reported(run, ex):
            continue
        run.result.fail(
            "server_error", f"{_where(ex)} -> {ex.status}: a server error that nothing in the "
            "scenario calls for (valid input is served, bad input is a 4xx)",
            step=ex.step, expected="2xx or 4xx",
            actual={"status": ex.status, "body": ex.response_body}, clause="C-ERR-3",
        )


async def check_schema(run: RunView, state: Snapshot) -> None:
    """Every answer conforms to ``harness/contract/openapi.yaml`` (shape, types, headers).

    Answers are open: fields and headers beyond those a clause lists pass.
    Each failure names the clause the broken part answers to (the document's
    ``x-contract-clause`` nearest to it), one failure per answer and clause.
    """
    from harness.contract.openapi import check_answer

    for ex in run.result.exchanges:
        if (ex.error or id(ex) in run.conforming or id(ex) in state.reported
                or _already_reported(run, ex)):
            continue
        problems = check_answer(ex.method, ex.path, ex.status, ex.headers, ex.response_body)
        if not problems:
            run.conforming.add(id(ex))
            if run.strict_fields:
                _note_extras(run, ex)
            continue
        by_clause: dict[str, list[str]] = {}
        for problem in problems:
            by_clause.setdefault(problem.clause, []).append(problem.text)
        for clause, texts in by_clause.items():
            run.result.fail(
                "schema", f"{_where(ex)} -> {ex.status} does not match the contract's OpenAPI "
                "description: " + "; ".join(texts[:5])
                + (f"; and {len(texts) - 5} more" if len(texts) > 5 else ""),
                step=ex.step, expected="harness/contract/openapi.yaml",
                actual=ex.response_body, clause=clause,
            )


def _note_extras(run: RunView, ex: Exchange) -> None:
    """--strict-fields: the fields a conforming answer carries beyond its clause's list."""
    from harness.contract.openapi import check_answer, operation_for

    op = operation_for(ex.method, ex.path)
    route = f"{ex.method} {op.path if op else ex.path} -> {ex.status}"
    for problem in check_answer(ex.method, ex.path, ex.status, ex.headers, ex.response_body,
                                strict=True):
        where, _, what = problem.text.partition(": ")
        names = _EXTRA_NAMES.findall(what)
        if not names:
            continue
        place = _INDEX.sub("[]", where)  # one note for every item of a list
        note = f"{route}: {place} carries {', '.join(names)} beyond what {problem.clause} lists"
        if note not in run.result.notes:
            run.result.notes.append(note)


_EXTRA_NAMES = re.compile(r"'([^']+)'")
_INDEX = re.compile(r"\[\d+\]")
