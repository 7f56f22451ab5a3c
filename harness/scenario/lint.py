"""What a scenario gets wrong that can be told before it runs.

The models check each key's shape; these rules check the steps against each
other and against the contract: a chat step needs a model; a retry needs an
earlier step whose provider script makes its message fail; a resync needs an
earlier sync; a variable needs a capture in an earlier step; an expectation
cannot contradict what the contract makes of the step's provider script; and
``covers:`` names clauses of the contract.

What fails here is the author's. What can only fail while the scenario runs
(the backend answered success where the script says failure, an answer lacks
a field a capture reads) is the backend's, and the runner reports it as a
failure at the step that caused it (:mod:`harness.scenario.steps`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from harness.contract import oracle
from harness.errors import Location, ScenarioError
from harness.scenario import template, yamlsource
from harness.scenario.model import (
    ChatStep,
    Header,
    HttpStep,
    ParallelStep,
    ResyncStep,
    RetryStep,
    Step,
    StreamStep,
)

# The provider timeout the rules assume; a run's own (C-RUN-1's PROVIDER_TIMEOUT_MS)
# only matters for answers scripted with a bare delay_ms near it.
TIMEOUT_MS = 1000
BUILTINS = ("session_id", "user_id", "provider_api_key", "round")
_CHAT_ROUTES = ("/api/chat", "/api/chat/stream")


def step_outcome(step: Step, timeout_ms: int = TIMEOUT_MS) -> oracle.Outcome | None:
    """What the contract makes of a step's provider script (None: not decided by it)."""
    if isinstance(step, ChatStep | RetryStep):
        stream = isinstance(step, StreamStep) or (isinstance(step, RetryStep) and step.streaming)
    elif isinstance(step, HttpStep) and _chat_route(step) is not None:
        stream = _chat_route(step) == "/api/chat/stream"
    else:
        return None
    answers = [spec.to_answer(timeout_ms) for spec in step.answers()]
    return oracle.expected_outcome(answers, timeout_ms=timeout_ms, stream=stream)


def _chat_route(step: HttpStep) -> str | None:
    method, _, path = step.http.partition(" ")
    route = path.strip().split("?")[0]
    return route if method == "POST" and route in _CHAT_ROUTES else None


def retry_target(steps: Sequence[Step], index: int, timeout_ms: int = TIMEOUT_MS) -> int | None:
    """The step whose message the retry at ``index`` resends, as the scripts decide.

    Steps are played in order: a chat whose script fails leaves its message
    failed; a retry whose script succeeds clears it. None: no message is
    failed at that point (or a script the contract does not decide came first,
    and anything may be).
    """
    failed: list[int] = []  # steps whose message is failed, in order
    for j, step in enumerate(steps[:index + 1]):
        if isinstance(step, RetryStep):
            target = _target(step, failed)
            if j == index:
                return target
            outcome = step_outcome(step, timeout_ms)
            if target is not None and outcome is not None and not outcome.failed:
                failed.remove(target)
        elif isinstance(step, ChatStep):
            outcome = step_outcome(step, timeout_ms)
            if outcome is None or outcome.failed:
                failed.append(j)
    return None


def _target(step: RetryStep, failed: list[int]) -> int | None:
    if step.retry == "last":
        return failed[-1] if failed else None
    return step.retry - 1 if step.retry - 1 in failed else None


def check(header: Header, steps: Sequence[Step], doc: yamlsource.Node, display: str) -> None:
    """Raise the first :class:`ScenarioError` of the rules above, located in the file."""
    raw_steps = doc["steps"]
    _covers(header, doc, display)
    _session(header, doc, display)
    known = set(BUILTINS)
    synced = False
    actors = {"alice"} | {s.actor for step in steps for s in _subs(step)}
    for index, step in enumerate(steps):
        raw = raw_steps[index]

        def where(key: str | None = None, raw: Any = raw, index: int = index) -> Location:
            line = raw.line_of(key) if key and isinstance(raw, yamlsource.Node) else 0
            return Location(display, line or raw_steps.line_of(index))

        key = f"steps[{index}]"
        _variables(step, known, where(), key, actors)
        for sub, sub_raw, sub_key, sub_line in _raw_subs(step, raw, key, raw_steps.line_of(index)):
            if isinstance(sub, ChatStep) and not (sub.model or header.model):
                raise ScenarioError("a chat step needs a model",
                                    location=Location(display, sub_line), key=f"{sub_key}.model",
                                    hint="add 'model:' to the step or to the scenario")
            _actor(sub, sub_raw, Location(display, sub_line), sub_key)
            _answers(sub, sub_raw, Location(display, sub_line), sub_key,
                     _models(sub, header, steps, index))
        if isinstance(step, ParallelStep):
            _group_retry(steps, index, step, where(), key)
        if isinstance(step, ChatStep) and step.at is not None and oracle.parse_ts(
                step.at) is None:
            raise ScenarioError(f"expected an ISO-8601 timestamp, got {step.at!r}",
                                location=where("at"), key=f"{key}.at",
                                hint="e.g. 2025-08-12T14:35:45.281Z")
        if isinstance(step, RetryStep):
            _retry(steps, index, step, where("retry"), key)
        subs = _subs(step)
        ahead, lonely = synced, False  # before: runs in order, then the group at once
        for sub in step.before_parsed if isinstance(step, ParallelStep) else ():
            lonely = lonely or (isinstance(sub, ResyncStep) and not ahead)
            ahead = ahead or _syncs(sub)
        resyncs = step.parsed if isinstance(step, ParallelStep) else subs
        if lonely or (any(isinstance(s, ResyncStep) for s in resyncs) and not ahead):
            raise ScenarioError("resync needs an earlier sync", location=where(), key=key,
                                hint="put a chat step (or an http POST /api/chat/messages) "
                                "before it")
        _expectation(step, where, key)
        synced = synced or any(_syncs(s) for s in subs)
        known.update(name for s in subs for name in s.capture)


def _group_retry(steps: Sequence[Step], index: int, step: ParallelStep, where: Location,
                 key: str) -> None:
    """A retry in a group resends a message that failed: in every round, one of ``before:``."""
    retries = [j for j, s in enumerate(step.parsed) if isinstance(s, RetryStep)]
    if not retries:
        return

    def fails(s: Step) -> bool:
        outcome = step_outcome(s)
        return isinstance(s, ChatStep) and outcome is not None and outcome.failed

    if any(fails(s) for s in step.before_parsed):
        return
    if step.rounds == 1 and any(fails(s) for s in steps[:index]):
        return
    raise ScenarioError(
        "a retry in a parallel group needs a message that failed before the group"
        + (f", in each of its {step.rounds} rounds" if step.rounds > 1 else ""),
        location=where, key=f"{key}.parallel[{retries[0]}]",
        hint="put a chat step whose provider fails into 'before:' (e.g. 'provider: "
        "{status: 503}' with 'sync: false'), so that every round has one to retry")


def _covers(header: Header, doc: yamlsource.Node, display: str) -> None:
    if not header.covers:
        return
    from harness.contract.clauses import UnknownClause, clause_ids, suggest
    from harness.result import INVARIANTS

    ids = [*clause_ids(), *INVARIANTS]
    for i, clause in enumerate(header.covers):
        if clause not in ids:
            raise UnknownClause(
                clause=clause, scenario=header.name or display,
                location=Location(display, doc["covers"].line_of(i)), key=f"covers[{i}]",
                suggestion=suggest(clause, ids),
            ).error()


def _syncs(step: Step) -> bool:
    """Whether the step makes the client store something (what a resync sends again)."""
    if isinstance(step, ChatStep):
        return True  # stored, or held back for a later resync (sync: false)
    if isinstance(step, RetryStep):
        return True
    if isinstance(step, HttpStep):
        method, _, path = step.http.partition(" ")
        return method == "POST" and path.strip().split("?")[0] == "/api/chat/messages"
    return isinstance(step, ResyncStep)


def _retry(steps: Sequence[Step], index: int, step: RetryStep, where: Location, key: str
           ) -> None:
    if step.retry != "last":
        n = step.retry
        if not 1 <= n <= index:
            raise ScenarioError(f"retry: {n} names no earlier step (this is step {index + 1})",
                                location=where, key=f"{key}.retry",
                                hint=f"name a chat step among steps 1 to {index}"
                                if index else "put a chat step whose provider fails first")
        if not isinstance(steps[n - 1], ChatStep | RetryStep):
            raise ScenarioError(f"retry: {n} names a {steps[n - 1].kind} step, which sends "
                                "no chat message", location=where, key=f"{key}.retry",
                                hint="name a chat or stream step whose provider fails")
    if retry_target(steps, index) is not None:
        return
    if step.retry == "last":
        raise ScenarioError(
            "retry: last needs an earlier failed message: no earlier step's provider "
            "script fails (or its failure was already retried)",
            location=where, key=f"{key}.retry",
            hint="put a chat step whose provider fails before it, e.g. "
            "'provider: {status: 429}'")
    outcome = step_outcome(steps[step.retry - 1])
    why = f" ({outcome.why})" if outcome is not None else ""
    raise ScenarioError(
        f"retry: {step.retry} resends the message of step {step.retry}, which does not "
        f"fail{why} or was already retried", location=where, key=f"{key}.retry",
        hint="give that step a provider script that fails, e.g. 'provider: {status: 503}'")


def _expectation(step: Step, where: Any, key: str) -> None:
    """An expectation that contradicts the contract's answer to the script cannot pass."""
    from harness.scenario.match import status_matches

    outcome = step_outcome(step)
    expect = step.expect
    if outcome is None or expect is None:
        return
    what = f"{outcome.why}, and {outcome.clause} makes that {outcome.describe()}"
    if expect.status is not None and not status_matches(expect.status, outcome.status):
        raise ScenarioError(
            f"expect.status {expect.status} contradicts the contract: {what}",
            location=where("expect"), key=f"{key}.expect.status",
            hint="leave the status out (the provider script decides it), or change the script")
    code = expect.body.get("code") if isinstance(expect.body, dict) else None
    if isinstance(code, str) and outcome.code is not None and code != outcome.code:
        raise ScenarioError(
            f"expect.body.code {code!r} contradicts the contract: {what}",
            location=where("expect"), key=f"{key}.expect.body.code",
            hint="leave the code out (the provider script decides it), or change the script")


def _variables(step: Step, known: set[str], where: Location, key: str,
               actors: set[str]) -> None:
    """Every ``${name}`` the step uses is a built-in or an earlier step's capture;
    ``${users.NAME}`` names an actor of the scenario."""
    for name in sorted(set(template.names(step.model_dump(exclude={"capture"})))):
        if name.startswith("users."):
            if name[6:] in actors:
                continue
            raise ScenarioError(
                f"${{{name}}}: {name[6:]!r} is no actor of this scenario", location=where,
                key=key, hint=f"its actors: {', '.join(sorted(actors))} (a step acts as "
                "another with 'as: NAME')")
        if name in known or (name.startswith("http_date.") and name[10:].isdigit()):
            continue
        if name.startswith("fresh.") and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name[6:]):
            continue  # a new id in each round (each step, outside parallel:)
        listed = ", ".join(sorted(known))
        raise ScenarioError(
            f"unknown variable ${{{name}}}", location=where, key=key,
            hint=f"capture it in an earlier step (capture: {{{name}: data.request_id}}); "
            f"known here: {listed}")


# -- single values the models cannot judge alone -------------------------------------

# a pinned session id goes into URLs (/api/chat/sessions/ID) and a user's name into
# ids and titles: plain words, so that '' or '../../etc' is not sent silently
SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
ACTOR = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def _subs(step: Step) -> tuple[Step, ...]:
    """The step, or a parallel step's ``before:`` steps and then its own."""
    return (*step.before_parsed, *step.parsed) if isinstance(step, ParallelStep) else (step,)


def _raw_subs(step: Step, raw: Any, key: str, line: int) -> list[tuple[Step, Any, str, int]]:
    """The step, or a parallel step's steps, with their YAML nodes, keys and lines."""
    if not isinstance(step, ParallelStep):
        return [(step, raw, key, line)]
    out = []
    for name, subs in (("before", step.before_parsed), ("parallel", step.parsed)):
        items = raw.get(name)
        if not isinstance(items, yamlsource.NodeList):
            continue
        out += [(sub, items[j], f"{key}.{name}[{j}]", items.line_of(j))
                for j, sub in enumerate(subs)]
    return out


def _line(raw: Any, key: str, where: Location) -> Location:
    if isinstance(raw, yamlsource.Node) and key in raw:
        return Location(where.file, raw.line_of(key))
    return where


def _session(header: Header, doc: yamlsource.Node, display: str) -> None:
    if header.session is None or SESSION_ID.match(header.session):
        return
    raise ScenarioError(
        f"expected a session id of letters, digits, '_', '-', '.' and ':' (at most 200, "
        "starting with a letter or digit), "
        f"got {header.session!r}", location=Location(display, doc.line_of("session")),
        key="session", hint="the id goes into URLs such as /api/chat/sessions/ID; leave "
        "'session:' out and the run makes one (conv_...); to send an odd id on purpose, "
        "write it into an http step")


def _actor(step: Step, raw: Any, where: Location, key: str) -> None:
    if ACTOR.match(step.actor):
        return
    raise ScenarioError(
        f"expected an actor's name (a letter, then letters, digits, '_' or '-'), "
        f"got {step.actor!r}", location=_line(raw, "as", where), key=f"{key}.as",
        hint="e.g. 'as: bob'; leave 'as:' out for alice, the default")


def _models(step: Step, header: Header, steps: Sequence[Step], index: int) -> set[str] | None:
    """The models the step's requests ask for (C-CHAT-3: the provider is called with the
    request's model); None where a body the harness does not read decides it."""
    if isinstance(step, ChatStep):
        model = step.model or header.model
        return {model} if model else None  # no model: "a chat step needs a model" says so
    if isinstance(step, RetryStep):
        target = retry_target(steps, index)
        original = steps[target] if target is not None else None
        model = step.model or getattr(original, "model", None) or header.model
        return {model} if model else None
    if isinstance(step, HttpStep):
        model = step.body.get("model") if isinstance(step.body, dict) else None
        if isinstance(model, str) and "${" not in model:
            return {model}
    return None


def _answers(step: Step, raw: Any, where: Location, key: str, models: set[str] | None
             ) -> None:
    """``retry_after`` is seconds or an HTTP date; ``for_model`` a model the step asks for."""
    provider = raw.get("provider") if isinstance(raw, yamlsource.Node) else None
    for n, answer in enumerate(step.answers()):
        node = provider[n] if isinstance(provider, yamlsource.NodeList) else provider
        here = Location(where.file, provider.line_of(n)) if isinstance(
            provider, yamlsource.NodeList) else _line(raw, "provider", where)
        akey = f"{key}.provider" + (f"[{n}]" if isinstance(provider, list) else "")
        after = answer.retry_after
        if after is not None and not _retry_after(after):
            raise ScenarioError(
                f"expected seconds (a whole number >= 0) or an HTTP date, got {after!r}",
                location=_line(node, "retry_after", here), key=f"{akey}.retry_after",
                hint="e.g. 'retry_after: 30', 'retry_after: Wed, 21 Oct 2025 07:28:00 GMT' "
                "or '${http_date.90}' (a date 90 s ahead); for a malformed header on "
                "purpose, send it with 'raw:' and 'headers:'")
        if answer.for_model is not None and models is not None and (
                answer.for_model not in models):
            asked = ", ".join(sorted(models))
            raise ScenarioError(
                f"for_model {answer.for_model!r} names no model this step asks for "
                f"(it asks for {asked}), so the answer would never be used",
                location=_line(node, "for_model", here), key=f"{akey}.for_model",
                hint="the backend calls the provider with the request's model (C-CHAT-3): "
                f"write for_model: {sorted(models)[0]}, or leave "
                "it out")


def _retry_after(value: int | str) -> bool:
    if isinstance(value, int):
        return value >= 0
    text = value.strip()
    if text.isdigit() or re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_.]*\}", text):
        return True
    from email.utils import parsedate_to_datetime

    try:
        parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return False
    return True


__all__ = ["BUILTINS", "check", "retry_target", "step_outcome"]
