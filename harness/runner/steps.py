"""What each kind of step does. The run (``ScenarioRun``) owns the state."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from harness.contract import oracle
from harness.errors import ScenarioError, Skip
from harness.provider import ErrorAnswer, RawAnswer, Reply
from harness.result import Exchange
from harness.runner.client import Chat, Sync
from harness.runner.match import mismatches, short, status_matches
from harness.scenario import lint, template
from harness.scenario.model import (
    ChatStep,
    DbStep,
    HttpStep,
    ParallelStep,
    ResyncStep,
    RetryStep,
    Step,
    StreamStep,
)

if TYPE_CHECKING:
    from harness.runner.run import ScenarioRun

FINAL, STREAM_ERROR = "__FINAL_METADATA__", "__STREAM_ERROR__"


async def execute(run: ScenarioRun, index: int, step: Step) -> None:
    if isinstance(step, ChatStep):  # StreamStep too
        await chat(run, index, step)
    elif isinstance(step, RetryStep):
        await retry(run, index, step)
    elif isinstance(step, ResyncStep):
        await resync(run, index, step)
    elif isinstance(step, HttpStep):
        await http(run, index, step)
    elif isinstance(step, DbStep):
        await db(run, index, step)
    elif isinstance(step, ParallelStep):
        await asyncio.gather(*(execute(run, index, sub) for sub in step.parsed))


# -- the simulated front end ---------------------------------------------------


async def chat(run: ScenarioRun, index: int, step: ChatStep) -> None:
    where = run.scenario.location(index)
    model = step.model or run.scenario.header.model
    if model is None:
        raise ScenarioError("a chat step needs a model", location=where,
                            key=f"steps[{index}].model",
                            hint="add 'model:' to the step or to the scenario")
    streaming = isinstance(step, StreamStep)
    raw_text = step.stream if isinstance(step, StreamStep) else step.chat
    text = template.render(raw_text, run.variables, location=where, key=f"steps[{index}].chat")
    if step.at is not None:
        at = oracle.parse_ts(step.at)
        if at is None:
            raise ScenarioError(f"expected an ISO-8601 timestamp, got {step.at!r}",
                                location=where, key=f"steps[{index}].at",
                                hint="e.g. 2025-08-12T14:35:45.281Z")
        run.client.clock.set(at)
    msg = run.client.user_message(str(text), model, index, tick=step.at is None)
    await _converse(run, index, step, msg, model, streaming=streaming, retrying=False)


async def retry(run: ScenarioRun, index: int, step: RetryStep) -> None:
    where = run.scenario.location(index)
    client = run.client
    if step.retry == "last":
        failed = [m for m in client.history if m["role"] == "user" and m.get("error")]
        if not failed:
            # the file names an earlier step whose provider fails (checked when it was
            # loaded): that step's answer was a success, which is the backend's fault
            _depends_on_failure(run, index, lint.retry_target(
                run.scenario.steps, index, run.ctx.provider_timeout_ms))
            return
        msg = failed[-1]
    else:
        sent = [c for c in client.chats if c.step == step.retry - 1 and c.sent_id]
        if not sent:
            raise ScenarioError(f"step {step.retry} sent no chat message", location=where,
                                key=f"steps[{index}].retry", hint="name an earlier chat step")
        found = client.find_user(sent[0].sent_id)
        assert found is not None
        if not found.get("error"):
            _depends_on_failure(run, index, step.retry - 1)
            return
        msg = found
    model = step.model or msg.get("originalModel") or run.scenario.header.model or ""
    await _converse(run, index, step, msg, str(model), streaming=step.streaming, retrying=True)


def _depends_on_failure(run: ScenarioRun, index: int, failing: int | None) -> None:
    """A retry whose message did not fail: blame the step that should have failed."""
    if failing is None:
        raise ScenarioError("retry needs an earlier failed message",
                            location=run.scenario.location(index), key=f"steps[{index}].retry",
                            hint="put a chat step whose provider fails before it")
    outcome = lint.step_outcome(run.scenario.steps[failing], run.ctx.provider_timeout_ms)
    if outcome is None:  # a script the contract does not decide (raw, no answer planned)
        raise ScenarioError(
            f"step {failing + 1}'s message did not fail, and its provider script does not "
            "make it fail", location=run.scenario.location(index),
            key=f"steps[{index}].retry",
            hint=f"give step {failing + 1} a provider script that fails, e.g. "
            "'provider: {status: 503}'")
    left = len(run.scenario.steps) - index - 1
    stop(run, f"step {failing + 1} should have failed ({outcome.why}; "
         f"{outcome.clause} makes that {outcome.describe()}) but the backend answered "
         f"success; step {index + 1} retries its message and was not run"
         + (f", nor the {left} step(s) after it" if left else ""), check="outcome",
         clause=outcome.clause, step=failing)


def stop(run: ScenarioRun, message: str, *, check: str, clause: str | None, step: int) -> None:
    """The steps from here on cannot run because of an answer: fail at ``step`` (the one
    whose answer it was), and run no more steps."""
    run.result.fail(check, message, step=step, clause=clause)
    run.stopped = message


async def _converse(run: ScenarioRun, index: int, step: ChatStep | RetryStep,
                    msg: dict[str, Any], model: str, *, streaming: bool, retrying: bool) -> None:
    client = run.client
    current = (step.current_message_id if step.current_message_id is not None
               else client.send_current_message_id)
    body = client.chat_body(msg, model, current_id=current)
    path = "/api/chat/stream" if streaming else "/api/chat"
    ex = await run.send(index, step.actor, "POST", path, body=body, purpose="chat",
                        token=step.token)
    data, error_text = check_outcome(run, index, step, ex, streaming=streaming)
    chat_record = Chat(step=index, actor=step.actor, body=body, data=data, sent_id=msg["id"])
    client.chats.append(chat_record)
    do_sync = getattr(step, "sync", True)
    if data is not None:
        assistant, batch = client.on_success(data, index, clear_error=retrying)
        chat_record.assistant_id = assistant["id"]
        if do_sync:
            await sync(run, index, step.actor, {"messages": batch, "sessionId": client.session_id})
    else:
        failed = client.on_failure(msg, {"error": error_text})
        if do_sync:
            await sync(run, index, step.actor, {"message": failed, "sessionId": client.session_id})
    capture(run, index, step, {"response": ex.response_body, "message": msg, "request": body,
                               "data": data or {}}, ex)


def parse_stream(ex: Exchange) -> tuple[str, dict[str, Any] | None, str | None]:
    """(text, final line object, problem) of a 200 stream (C-STREAM-1)."""
    if isinstance(ex.response_body, dict) and {FINAL, STREAM_ERROR} & set(ex.response_body):
        return "", ex.response_body, None
    body = ex.response_body if isinstance(ex.response_body, str) else ""
    text, sep, last = body.rpartition("\n")
    if not sep:
        return body, None, "the stream has no final line (no newline before it)"
    try:
        final = json.loads(last)
    except ValueError:
        return text, None, f"the final line is not JSON: {short(last, 80)}"
    if not isinstance(final, dict) or not ({FINAL, STREAM_ERROR} & set(final)):
        return text, None, f"the final line carries neither {FINAL} nor {STREAM_ERROR}"
    if FINAL in text or STREAM_ERROR in text:
        return text, final, "a marker appears inside the streamed text"
    return text, final, None


def check_outcome(run: ScenarioRun, index: int, step: Step, ex: Exchange, *, streaming: bool
                  ) -> tuple[dict[str, Any] | None, str]:
    """Judge a chat/stream answer; return (data on success, error text on failure).

    The provider script is an oracle: whatever the scenario's ``expect:`` says,
    the answer is held to what the contract makes of what the provider did
    (C-CHAT-3/4/5, C-STREAM-1..3), as the ``outcome`` check.
    """
    answers = run.answers(step)
    outcome = oracle.expected_outcome(answers, timeout_ms=run.ctx.provider_timeout_ms,
                                      stream=streaming)
    if not run.scenario.check_enabled("outcome"):
        outcome = None
    expect = step.expect
    if outcome is not None:
        _judge_status(run, index, ex, outcome, answers)
        if expect is not None and expect.status is not None and status_matches(
                expect.status, outcome.status):
            expect = expect.model_copy(update={"status": None})  # judged once, above
    if expect is not None or outcome is None:
        run.check_expect(index, ex, expect, default=None if outcome else "2xx")
    if outcome is not None:
        ex.expected = outcome.status if ex.expected is None else ex.expected
    if ex.status != 200:
        error = ex.json().get("error")
        return None, error if isinstance(error, str) and error else "Message failed"
    if not streaming:
        data = ex.json().get("data")
        if not isinstance(data, dict):
            run.result.fail("expect", "a 200 answer without a 'data' object", step=index,
                            expected="{data: {...}}", actual=ex.response_body, clause="C-CHAT-4")
            return None, "Message failed"
        _check_reply(run, index, data, answers, outcome, ex)
        return data, ""
    text, final, problem = parse_stream(ex)
    if problem:
        run.result.fail("stream", problem, step=index, expected="text, then one final line",
                        actual=short(ex.response_body, 300), clause="C-STREAM-1")
    if final is None:
        return None, "Message failed"
    if STREAM_ERROR in final:
        err = final[STREAM_ERROR] if isinstance(final[STREAM_ERROR], dict) else {}
        if outcome is not None and outcome.stream_error != err.get("code"):
            wanted = (f"{STREAM_ERROR} {outcome.stream_error!r}" if outcome.stream_error
                      else "a complete stream ending with __FINAL_METADATA__")
            run.result.fail(
                "outcome", f"{outcome.why}: {_clause_says(outcome)} {wanted}; the backend "
                f"ended the stream with {STREAM_ERROR} code {err.get('code')!r}",
                step=index, expected=outcome.stream_error or FINAL, actual=final,
                clause=outcome.clause)
        message = err.get("error")
        return None, message if isinstance(message, str) and message else "Message failed"
    data = final[FINAL] if isinstance(final[FINAL], dict) else {}
    if outcome is not None and outcome.stream_error:
        run.result.fail(
            "outcome", f"{outcome.why}: {_clause_says(outcome)} a stream ending with "
            f"{STREAM_ERROR} {outcome.stream_error!r}; the backend ended it with {FINAL} "
            "(a success)", step=index, expected=outcome.stream_error, actual=final,
            clause=outcome.clause)
    if data.get("response") != text:
        run.result.fail("stream", "the streamed text differs from __FINAL_METADATA__.response",
                        step=index, expected=short(data.get("response"), 300),
                        actual=short(text, 300), clause="C-STREAM-1")
    _check_reply(run, index, data, answers, outcome, ex)
    return data, ""


def _clause_says(outcome: oracle.Outcome) -> str:
    return f"{outcome.clause} makes that"


def _judge_status(run: ScenarioRun, index: int, ex: Exchange, outcome: oracle.Outcome,
                  answers: list[Any]) -> None:
    """The answer's status and error code against the oracle's (the ``outcome`` check)."""
    says = f"{outcome.why}: {_clause_says(outcome)} {outcome.describe()}"
    if ex.error:
        run.result.fail("outcome", f"{ex.method} {ex.path} got no answer: {ex.error} "
                        f"({says})", step=index, expected=outcome.status, actual=None,
                        clause=outcome.clause)
        return
    if ex.status != outcome.status:
        turned = (" (a success)" if 200 <= ex.status < 300 and outcome.status != 200
                  else "")
        run.result.fail("outcome", f"{says}; the backend answered {ex.brief()}{turned}",
                        step=index, expected=outcome.status,
                        actual={"status": ex.status, "body": ex.response_body},
                        clause=outcome.clause)
        return
    if outcome.code is None:
        return
    got_code = ex.json().get("code")
    if got_code != outcome.code:
        run.result.fail("outcome", f"{says}; the backend answered {ex.status} with code "
                        f"{got_code!r}", step=index, expected=outcome.code,
                        actual=ex.response_body, clause="C-ERR-2")
    last = answers[-1] if answers else None
    if isinstance(last, ErrorAnswer) and last.status in (429, 503):
        want = oracle.retry_after_seconds(last.retry_after)
        got = ex.json().get("retryAfter")
        header = ex.headers.get("retry-after")
        slack = 2 if isinstance(last.retry_after, str) and not last.retry_after.isdigit() else 0
        if not isinstance(got, int) or isinstance(got, bool) or abs(got - want) > slack:
            run.result.fail("outcome", f"{outcome.why}: C-CHAT-5 makes that retryAfter {want}; "
                            f"the backend sent {got!r}", step=index, expected=want, actual=got,
                            clause="C-CHAT-5")
        if header is None or not header.strip().isdigit() or abs(int(header) - want) > slack:
            run.result.fail("outcome", f"{outcome.why}: C-CHAT-5 makes that a Retry-After: "
                            f"{want} header; the backend sent {header!r}", step=index,
                            expected=want, actual=header, clause="C-CHAT-5")


def _check_reply(run: ScenarioRun, index: int, data: dict[str, Any], answers: list[Any],
                 outcome: oracle.Outcome | None, ex: Exchange) -> None:
    """C-CHAT-4: the answer is the provider's text and model, with its usage."""
    if outcome is None or outcome.failed:
        return
    last = answers[-1]
    if isinstance(last, Reply):
        text: str | None = last.content
    elif isinstance(last, RawAnswer):
        text = oracle.raw_completion_text(last.body)
    else:
        return
    what = f"{outcome.why}: "
    if data.get("response") != text:
        run.result.fail("outcome", f"{what}data.response is not the provider's text",
                        step=index, expected=short(text, 200),
                        actual=short(data.get("response"), 200), clause="C-CHAT-4")
    usage = data.get("usage")
    counts = ("prompt_tokens", "completion_tokens", "total_tokens")
    if not isinstance(usage, dict) or not all(
        isinstance(usage.get(k), int) and not isinstance(usage.get(k), bool) for k in counts
    ):
        run.result.fail("outcome", f"{what}data.usage needs three integer counts "
                        "(zeros where the provider sent none)", step=index,
                        expected=", ".join(counts), actual=usage, clause="C-CHAT-4")
    elif isinstance(last, Reply) and (last.omit_usage or last.usage is not None):
        want = {k: 0 if last.omit_usage else int((last.usage or {}).get(k, 0)) for k in counts}
        got = {k: usage.get(k) for k in counts}
        if got != want:
            run.result.fail("outcome", f"{what}data.usage {got} is not the provider's counts "
                            f"{want} (zeros for what it left out)", step=index, expected=want,
                            actual=usage, clause="C-CHAT-4")
    request = ex.request_body if isinstance(ex.request_body, dict) else {}
    if isinstance(last, Reply):
        model = last.model or request.get("model")
        if model is not None and data.get("model") != model:
            run.result.fail("outcome", f"{what}data.model is {data.get('model')!r}, expected "
                            f"{model!r} (the provider's model, else the request's)",
                            step=index, expected=model, actual=data.get("model"),
                            clause="C-CHAT-4")
        if last.id is not None and data.get("id") != last.id:
            run.result.fail("outcome", f"{what}data.id is {data.get('id')!r}, expected the "
                            f"provider's generation id {last.id!r}", step=index,
                            expected=last.id, actual=data.get("id"), clause="C-CHAT-4")


# -- syncs -------------------------------------------------------------------------


async def sync(run: ScenarioRun, index: int, actor: str, body: dict[str, Any]) -> Exchange:
    client = run.client
    stored_before = {m.get("id") for s in client.syncs if s.accepted for m in s.messages()}
    ex = await run.send(index, actor, "POST", "/api/chat/messages", body=body, purpose="sync")
    record = Sync(step=index, actor=actor, body=body, status=ex.status)
    client.syncs.append(record)
    if not ex.ok:
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
        run.result.fail("sync", message, step=index, expected="2xx",
                        actual={"status": ex.status, "body": ex.response_body}, clause=clause)
    return ex


async def resync(run: ScenarioRun, index: int, step: ResyncStep) -> None:
    if not run.client.syncs:
        raise ScenarioError("resync needs an earlier sync", location=run.scenario.location(index),
                            key=f"steps[{index}]", hint="put a chat step before it")
    last = run.client.syncs[-1]
    ex = await sync(run, index, last.actor, last.body)
    if step.expect is not None:
        run.check_expect(index, ex, step.expect, default=None)


# -- raw requests and the database --------------------------------------------------


async def http(run: ScenarioRun, index: int, step: HttpStep) -> None:
    where, key = run.scenario.location(index), f"steps[{index}]"
    method, _, path = step.http.partition(" ")
    path = str(template.render(path.strip(), run.variables, location=where, key=f"{key}.http"))
    body = step.body
    if step.body_file is not None:
        body = run.load_fixture(index, step.body_file)
    body = template.render(body, run.variables, location=where, key=f"{key}.body")
    query = template.render(dict(step.query), run.variables, location=where, key=f"{key}.query")
    headers = template.render(dict(step.headers), run.variables, location=where,
                              key=f"{key}.headers")
    raw = None
    if step.raw_body is not None:
        raw = str(template.render(step.raw_body, run.variables, location=where,
                                  key=f"{key}.raw_body")).encode()
    if step.pad_to is not None:  # whitespace after the JSON: the same body, N bytes long
        raw = raw if raw is not None else json.dumps(body).encode()
        raw += b" " * max(0, step.pad_to - len(raw))
    ex = await run.send(index, step.actor, method, path, body=body, params=query or None,
                        headers=headers, auth=step.auth, purpose="raw", token=step.token,
                        raw=raw)
    route = path.split("?")[0]
    if method == "POST" and route in ("/api/chat", "/api/chat/stream") and isinstance(body, dict):
        data, _ = check_outcome(run, index, step, ex, streaming=route.endswith("/stream"))
        run.client.chats.append(Chat(step=index, actor=step.actor, body=body, data=data,
                                     sent_id=None))
    else:
        run.check_expect(index, ex, step.expect, default="2xx")
    if method == "POST" and route == "/api/chat/messages" and isinstance(body, dict):
        run.client.syncs.append(Sync(step=index, actor=step.actor, body=body, status=ex.status))
    capture(run, index, step, {"response": ex.response_body, "request": body}, ex)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return oracle.format_ts(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


async def db(run: ScenarioRun, index: int, step: DbStep) -> None:
    if run.ctx.db is None:
        raise Skip("needs database access (give --db-url to run DB-level checks)")
    where = run.scenario.location(index)
    params = template.render(list(step.params), run.variables, location=where,
                             key=f"steps[{index}].params")
    sql = str(template.render(step.db, run.variables, location=where, key=f"steps[{index}].db"))
    import psycopg

    try:
        rows = [{k: _plain(v) for k, v in r.items()}
                for r in run.ctx.db.query(sql, params or None)]
    except psycopg.Error as exc:
        raise ScenarioError(f"the query failed: {str(exc).strip()}", location=where,
                            key=f"steps[{index}].db",
                            hint="the tables are chat_sessions and chat_messages "
                            "(fixtures/schema.sql)") from None
    expect = step.expect
    if expect is not None and expect.row_count is not None and len(rows) != expect.row_count:
        run.result.fail("db", f"the query returned {len(rows)} row(s), expected "
                        f"{expect.row_count}", step=index, expected=expect.row_count,
                        actual=rows, clause=run.covered_clause())
    if expect is not None and expect.rows is not None:
        want = template.render(expect.rows, run.variables, location=where,
                               key=f"steps[{index}].expect.rows")
        diffs = mismatches(want, rows, "rows")
        if diffs:
            run.result.fail("db", "; ".join(diffs), step=index, expected=want, actual=rows,
                            clause=run.covered_clause())
    capture(run, index, step, {"response": rows, "rows": rows})


# what a capture may read that the client made itself (not the backend's answer)
_CLIENT_SIDE = ("message", "request")


def capture(run: ScenarioRun, index: int, step: Step, sources: dict[str, Any],
            answered: Exchange | None = None) -> None:
    for name, path in step.capture.items():
        root, _, rest = path.partition(".")
        if not (root in sources and rest):
            root, rest = "response", path
        value = template.dig(sources[root], rest)
        if not template.is_missing(value):
            run.variables[name] = value
            continue
        if root in _CLIENT_SIDE:
            raise ScenarioError(
                f"nothing at {path!r} in what the client sent, to capture as {name!r}",
                location=run.scenario.location(index), key=f"steps[{index}].capture.{name}",
                hint=f"it sent {short(sources[root], 200)}",
            )
        # the backend's answer lacks it: later steps that use it cannot run
        left = len(run.scenario.steps) - index - 1
        stop(run, f"the backend's answer has nothing at {path!r} to capture as {name!r} "
             f"(it answered {short(sources['response'], 200)}); later steps use it"
             + (f": the {left} step(s) after this one were not run" if left else ""),
             check="expect", clause=_clause_of(answered), step=index)
        return


def _clause_of(answered: Exchange | None) -> str | None:
    """The clause that fixes the shape of an answer (its route's)."""
    from harness.contract.openapi import operation_for

    op = operation_for(answered.method, answered.path) if answered is not None else None
    return op.clause if op is not None else None
