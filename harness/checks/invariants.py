"""The protocol-neutral invariants: what holds for any chat backend, after every turn.

Each has an id, like the contract's clauses (docs/protocols.md lists them):

- ``I-ORDER``   the stored conversation equals what the client saw, in order: every
  user message it sent (once), each followed by the answer it received; nothing
  else (no empty assistant row for a failed turn, no partial answer stored as one).
- ``I-PAIR``    each answer belongs to the turn that triggered it: it is the
  provider's answer to that turn, stored right after that turn's user message,
  under the id the backend announced.
- ``I-LOST``    nothing the client sent is lost: a user message the backend took
  (a 200, or a failure of its own: 5xx) is stored, even when the provider failed.
- ``I-RESEND``  resending a turn (the same message id, after a failure or a cut)
  neither fails (when the provider answers) nor duplicates anything.
- ``I-CONTEXT`` the provider receives the stored successful history and the new
  turn: no empty or duplicate turns, nothing the client did not see, in order
  (a failed user message may be left out or sent).
- ``I-OWNER``   another user gets nothing: a turn into someone else's chat is
  refused (4xx), stores nothing and calls no provider.

After a ``parallel:`` step the order among its concurrent turns is the backend's:
the client takes the stored order (as a reload), an answer is paired after its
user message, and a message sent twice at once may keep one answer
(docs/protocols.md says exactly what).

They read the protocol's view (``run.protocol.stored``, the client's turns, the
step's provider calls other than side calls); the contract protocol judges the
same properties through its clause checks (order, lost, pairing, context,
idempotent) and does not run these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.result import INVARIANTS, Check
from harness.scenario.match import short
from harness.scenario.model import ChatStep, ParallelStep, RetryStep

if TYPE_CHECKING:
    from harness.provider import ProviderCall
    from harness.scenario.frontend import Turn
    from harness.scenario.view import RunView

IDS = INVARIANTS
_CONVERSATION_KINDS = ("chat", "stream", "retry", "resync", "parallel")


async def check_step(run: RunView, index: int) -> None:
    """Every invariant, after step ``index`` (its turns, and the stored conversation)."""
    step = run.scenario.steps[index]
    if step.kind not in _CONVERSATION_KINDS:
        return
    turns = [t for t in run.client.turns if t.step == index]
    stored = run.protocol.stored(run)
    if stored is None:
        return
    calls = [c for c in run.step_calls.get(index, []) if not c.side]
    alone = not isinstance(step, ParallelStep) and len(turns) == 1
    if isinstance(step, ParallelStep):
        _adopt_order(run, index, stored)
    for turn in turns:
        if turn.actor != turn.owner:
            _owner(run, turn, stored, calls if alone else None)
            continue
        _lost(run, turn, stored)
        if turn.resent:
            _resend(run, turn, stored, step if alone else _retry_script(step))
        if alone and isinstance(step, ChatStep | RetryStep):
            _pair_answer(run, turn, step)
            _context(run, turn, calls)
    _order(run, index, stored)
    _pair_stored(run, index, stored)


def _adopt_order(run: RunView, index: int, stored: list[dict[str, Any]]) -> None:
    """After a ``parallel:`` step: the order among its concurrent turns is the backend's
    to choose, so the client takes the stored order of this step's messages, as a
    reload would (the messages of earlier steps keep their place before them; one the
    backend did not store stays last, for I-ORDER and I-LOST to name). A message
    answered more than once at once (a double submit) keeps the answers the backend
    stored, if it stored one: one answer per turn, the later replacing the earlier,
    is as right as all of them."""
    client = run.client
    at = {m["id"]: i for i, m in enumerate(stored)}
    mine = [m for m in client.history if client.step_of.get(m["id"]) == index]
    # the same message answered more than once at once: the answers the backend kept
    answered: dict[str, list[dict[str, Any]]] = {}
    for m in mine:
        if m["role"] == "assistant" and m.get("user_message_id"):
            answered.setdefault(m["user_message_id"], []).append(m)
    for answers in answered.values():
        kept = [m for m in answers if m["id"] in at]
        if len(answers) > 1 and kept:
            mine = [m for m in mine if m not in answers or m in kept]
    ordered = sorted(mine, key=lambda m: at.get(m["id"], len(stored)))
    client.history[:] = [m for m in client.history
                         if client.step_of.get(m["id"]) != index] + ordered


def _retry_script(step: Any) -> RetryStep | None:
    """The provider script that decides whether a resend inside a ``parallel:`` step
    must succeed: its retries', when every one of them ends in an answer."""
    from harness.scenario.protocols.aisdk import expected_success

    if not isinstance(step, ParallelStep):
        return None
    retries = [s for s in step.parsed if isinstance(s, RetryStep)]
    if retries and all(expected_success(s) for s in retries):
        return retries[0]
    return None


def _fail(run: RunView, check: str, message: str, *, step: int, expected: Any, actual: Any,
          key: str | None = None) -> None:
    """Report once: a wrong stored conversation stays wrong over the steps after it."""
    if key is not None:
        if key in run.client.reported:
            return
        run.client.reported.add(key)
    run.result.fail(check, message, step=step, expected=expected, actual=actual, clause=check)


def _rows(stored: list[dict[str, Any]]) -> list[str]:
    return [f"{m['role']} {short(m['text'], 40)}" + ("" if m["text"] else " (empty)")
            for m in stored]


def _order(run: RunView, index: int, stored: list[dict[str, Any]]) -> None:
    taken = {t.message_id for t in run.client.turns if t.status == 200 or t.status >= 500}
    refused = {t.message_id for t in run.client.turns if 400 <= t.status < 500} - taken
    want = [(m["role"], m["content"]) for m in run.client.history if m["id"] not in refused]
    got = [(m["role"], m["text"]) for m in stored]
    if want == got:
        return
    extra = [m for m in stored if m["role"] == "assistant" and not m["text"]]
    why = ("an assistant message with no text is stored (a failed or cut turn stored as "
           "an answer)" if extra else "the stored conversation differs from what the client saw")
    _fail(run, Check.I_ORDER, f"I-ORDER: {why}", step=index,
          expected=[f"{r} {short(t, 40)}" for r, t in want], actual=_rows(stored),
          key=f"order:{got}")


def _lost(run: RunView, turn: Turn, stored: list[dict[str, Any]]) -> None:
    if not (turn.status == 200 or turn.status >= 500 or turn.resent):
        return  # refused before the backend took it (bad input, a limit): not its to keep
    found = [m for m in stored if m["id"] == turn.message_id]
    if not found:
        how = "failed" if not turn.ok else "was answered"
        _fail(run, Check.I_LOST, f"I-LOST: the user message {short(turn.text, 40)!r} "
              f"({turn.message_id}) {how} but is not stored", step=turn.step,
              expected=f"a stored user message {turn.message_id}", actual=_rows(stored),
              key=f"lost:{turn.message_id}")
    elif found[0]["role"] != "user" or found[0]["text"] != turn.text:
        _fail(run, Check.I_LOST, f"I-LOST: the user message {turn.message_id} is stored as "
              f"{found[0]['role']} {short(found[0]['text'], 40)!r}", step=turn.step,
              expected=f"user {short(turn.text, 40)}", actual=found[0],
              key=f"lost-text:{turn.message_id}")


def _resend(run: RunView, turn: Turn, stored: list[dict[str, Any]],
            step: Any | None) -> None:
    from harness.scenario.protocols.aisdk import expected_success

    if step is not None and expected_success(step) and not turn.ok:
        _fail(run, Check.I_RESEND, f"I-RESEND: resending the user message "
              f"{short(turn.text, 40)!r} under its own id failed ({turn.status or 'no answer'}"
              f" {short(turn.error, 80)}) although the provider answered", step=turn.step,
              expected="a complete answer", actual={"status": turn.status, "error": turn.error})
    same = [m for m in stored if m["role"] == "user" and m["text"] == turn.text]
    sent = {m["id"] for m in run.client.history
            if m["role"] == "user" and m["content"] == turn.text}
    if len(same) > len(sent):
        _fail(run, Check.I_RESEND, f"I-RESEND: the resent user message "
              f"{short(turn.text, 40)!r} is stored {len(same)} times", step=turn.step,
              expected=f"{len(sent)} time(s)", actual=_rows(stored),
              key=f"resend-dup:{turn.message_id}")


def _pair_answer(run: RunView, turn: Turn, step: ChatStep | RetryStep) -> None:
    """The answer the client got is the provider's answer to this turn."""
    from harness.scenario.protocols.aisdk import expected_success

    answers = step.answers()
    if not (turn.ok and expected_success(step)):
        return
    want = answers[-1].reply
    if turn.answer != want:
        _fail(run, Check.I_PAIR, "I-PAIR: the answer is not the provider's answer to this "
              "turn", step=turn.step, expected=short(want, 200), actual=short(turn.answer, 200))


def _pair_stored(run: RunView, index: int, stored: list[dict[str, Any]]) -> None:
    """Each answered turn's answer is stored right after its user message, under the id
    the backend announced in the stream (after it, for a turn of a ``parallel:`` step:
    concurrent turns into one chat may interleave)."""
    for turn in run.client.turns:
        if not turn.ok or turn.actor != turn.owner:
            continue
        at = next((i for i, m in enumerate(stored) if m["id"] == turn.message_id), None)
        if at is None:
            continue  # I-LOST says it
        if isinstance(run.scenario.steps[turn.step], ParallelStep):
            _pair_concurrent(run, index, turn, stored, at)
            continue
        after = stored[at + 1] if at + 1 < len(stored) else None
        if after is None or after["role"] != "assistant" or after["text"] != turn.answer:
            _fail(run, Check.I_PAIR, f"I-PAIR: the answer to {short(turn.text, 40)!r} is not "
                  "stored right after it", step=index,
                  expected=f"assistant {short(turn.answer, 60)}",
                  actual=_rows(stored[at:at + 3]), key=f"pair:{turn.message_id}")
        elif turn.answer_id and after["id"] != turn.answer_id:
            _fail(run, Check.I_PAIR, f"I-PAIR: the answer to {short(turn.text, 40)!r} is "
                  f"stored as {after['id']}, not under the id the stream announced",
                  step=index, expected=turn.answer_id, actual=after["id"],
                  key=f"pair-id:{turn.message_id}")


def _pair_concurrent(run: RunView, index: int, turn: Turn, stored: list[dict[str, Any]],
                     at: int) -> None:
    """A concurrent turn's answer: stored after its user message, under the announced id
    (if the stream announced one), with the text the client received. The same message
    sent more than once at once (a double submit) may keep one answer: one of theirs."""
    later = [m for m in stored[at + 1:] if m["role"] == "assistant"]
    same = [t for t in run.client.turns if t.step == turn.step and t.ok
            and t.message_id == turn.message_id and t.actor == turn.actor]
    for one in same:
        found = next((m for m in later if m["id"] == one.answer_id), None) if one.answer_id \
            else next((m for m in later if m["text"] == one.answer), None)
        if found is not None and found["text"] == one.answer:
            return
    where = " under the id the stream announced" if turn.answer_id else ""
    _fail(run, Check.I_PAIR, f"I-PAIR: the answer to {short(turn.text, 40)!r} is not "
          f"stored after it{where}", step=index,
          expected=[f"{t.answer_id or 'assistant'} {short(t.answer, 60)}" for t in same],
          actual=_rows(stored[at:]), key=f"pair:{turn.message_id}")


def provider_text(message: Any) -> tuple[str, str]:
    """(role, text) of a message the backend sent the provider (content a string, or a
    list of parts whose text parts count)."""
    if not isinstance(message, dict):
        return ("?", str(message))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content
                          if isinstance(p, dict) and p.get("type") == "text")
    return (str(message.get("role")), content if isinstance(content, str) else "")


def _context(run: RunView, turn: Turn, calls: list[ProviderCall]) -> None:
    """Every chat call of the turn carries the successful history, then the turn."""
    client = run.client
    before: list[tuple[str, str, bool]] = []  # role, text, may be left out
    for m in client.history:
        if m["id"] == turn.message_id:
            continue
        if m["role"] == "assistant" and client.step_of.get(m["id"]) == turn.step:
            continue  # this turn's own answer
        before.append((m["role"], m["content"], m["role"] == "user" and bool(m.get("error"))))
    want = [*before, ("user", turn.text, False)]
    for call in calls:
        got = [provider_text(m) for m in call.messages or [] if isinstance(m, dict)
               and m.get("role") not in ("system", "developer")]
        problem = _match(want, got)
        if problem:
            _fail(run, Check.I_CONTEXT, f"I-CONTEXT: provider call {call.index + 1} "
                  f"was sent other messages than the stored history and the turn: {problem}",
                  step=turn.step, expected=[f"{r} {short(t, 40)}" + (" (optional)" if o else "")
                                            for r, t, o in want],
                  actual=[f"{r} {short(t, 40)}" + ("" if t else " (empty)") for r, t in got])
            return


def _match(want: list[tuple[str, str, bool]], got: list[tuple[str, str]]) -> str | None:
    """Why ``got`` is not ``want`` (optional items may be absent); None if it is."""
    i = 0
    for role, text in got:
        while i < len(want) and want[i][2] and (want[i][0], want[i][1]) != (role, text):
            i += 1
        if i >= len(want):
            return f"an extra {role} message {short(text, 40)!r}" + (
                " (empty)" if not text else "")
        if (want[i][0], want[i][1]) != (role, text):
            return (f"{role} {short(text, 40)!r}" + (" (empty)" if not text else "")
                    + f" where {want[i][0]} {short(want[i][1], 40)!r} belongs")
        i += 1
    missing = [w for w in want[i:] if not w[2]]
    if missing:
        return f"{missing[0][0]} {short(missing[0][1], 40)!r} is missing"
    return None


def _owner(run: RunView, turn: Turn, stored: list[dict[str, Any]],
           calls: list[ProviderCall] | None) -> None:
    if not 400 <= turn.status < 500:
        _fail(run, Check.I_OWNER, f"I-OWNER: {turn.actor!r} sent a turn into {turn.owner!r}'s "
              f"chat and got {turn.status or 'no answer'}, not a refusal (4xx)",
              step=turn.step, expected="4xx (403)", actual=turn.status)
    if any(m["id"] == turn.message_id for m in stored):
        _fail(run, Check.I_OWNER, f"I-OWNER: {turn.actor!r}'s message is stored in "
              f"{turn.owner!r}'s chat", step=turn.step, expected="nothing stored",
              actual=_rows(stored))
    if calls:
        _fail(run, Check.I_OWNER, f"I-OWNER: {turn.actor!r}'s turn into {turn.owner!r}'s chat "
              f"called the provider {len(calls)} time(s)", step=turn.step, expected=0,
              actual=[c.answer for c in calls])
