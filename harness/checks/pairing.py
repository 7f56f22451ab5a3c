"""``request_id`` pairing (C-CHAT-2, C-MSG-10) and provider context (C-CHAT-3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.checks.conversation import stored
from harness.contract import oracle
from harness.scenario.match import short

if TYPE_CHECKING:
    from harness.checks.conversation import Snapshot
    from harness.scenario.frontend import Chat
    from harness.scenario.view import RunView


def _wanted_request_id(chat: Chat) -> tuple[bool, str | None]:
    """C-CHAT-2's answer: ``current_message_id`` when sent, else the last user message
    with the text by timestamp (which may not be the one the step sent: ``at:``)."""
    if chat.sent_id is not None and chat.body.get("current_message_id") == chat.sent_id:
        return True, chat.sent_id
    try:
        return True, oracle.expected_request_id(chat.body)
    except oracle.NotApplicable:
        return False, None


async def check_request_ids(run: RunView, state: Snapshot) -> None:
    for chat in run.client.chats:
        data = chat.data
        if data is None:
            continue
        known, want = _wanted_request_id(chat)
        got = data.get("request_id")
        if not known or got == want:
            continue
        what = run.client.describe(got)
        if chat.sent_id is None:
            what = _describe_in_body(chat.body, got)
        run.result.fail(
            "pairing",
            f"request_id named {got} ({what}) instead of {want}, "
            + ("the message this step sent" if want == chat.sent_id else
               "the last user message with this text"),
            step=chat.step, expected=want, actual=got, clause="C-CHAT-2",
        )


def _describe_in_body(body: dict[str, Any], message_id: Any) -> str:
    for i, m in enumerate(body.get("messages") or []):
        if isinstance(m, dict) and m.get("id") == message_id:
            failed = "failed " if m.get("error") else ""
            return f"the {failed}{m.get('role')} message at messages[{i}] " \
                   f"{short(m.get('content'), 40)}"
    return "no message of the request"


async def check_stored_pairing(run: RunView, state: Snapshot) -> None:
    """Every stored answer points at the user message its step sent."""
    session = run.client.session_id
    actor = next((s.actor for s in run.client.syncs
                  if s.accepted and s.body.get("sessionId") == session), None)
    if actor is None:
        return  # the client stored nothing into its session
    items = await stored(run, state, session, actor, check="pairing") or []
    by_id = {i.get("id"): i for i in items}
    for chat in run.client.chats:
        if chat.assistant_id is None or chat.assistant_id not in by_id:
            continue
        got = by_id[chat.assistant_id].get("user_message_id")
        if got != chat.sent_id:
            run.result.fail(
                "pairing",
                f"the stored answer {chat.assistant_id} is paired with {got} "
                f"({run.client.describe(got)}) instead of {chat.sent_id}, "
                "the message its step sent",
                step=chat.step, expected=chat.sent_id, actual=got, clause="C-MSG-10",
            )


def _last_content(messages: Any) -> Any:
    last = messages[-1] if isinstance(messages, list) and messages else None
    return last.get("content") if isinstance(last, dict) else None


def _shape(messages: Any) -> list[str]:
    if not isinstance(messages, list):
        return [short(messages)]
    return [f"{m.get('role')}: {short(m.get('content'), 40)}" if isinstance(m, dict)
            else short(m) for m in messages]


async def check_context(run: RunView, state: Snapshot) -> None:
    for chat in run.client.chats:
        try:
            want = oracle.expected_context(chat.body)
        except oracle.NotApplicable:
            continue
        calls = [c for c in run.step_calls.get(chat.step, ())
                 if c.path.endswith("/chat/completions")]  # not e.g. GET /models (section 7)
        if sum(1 for c in run.client.chats if c.step == chat.step) > 1:
            # a parallel step's chats (and rounds) share its calls, in any order: this
            # chat's call is one that asks for its context; else the calls for its text
            if any(c.messages == want and c.model == chat.body.get("model") for c in calls):
                continue
            calls = [c for c in calls if _last_content(c.messages) == chat.body.get("message")
                     ][-1:]
        for call in calls:
            if call.model != chat.body.get("model"):
                run.result.fail(
                    "context", f"the provider was asked for model {call.model!r}, "
                    f"the request named {chat.body.get('model')!r}",
                    step=chat.step, expected=chat.body.get("model"), actual=call.model,
                    clause="C-CHAT-3",
                )
            if call.messages == want:
                continue
            sent = call.messages if isinstance(call.messages, list) else []
            extra = [m for m in sent if isinstance(m, dict)
                     and {"role": m.get("role"), "content": m.get("content")} not in want]
            notes = []
            failed = [m for m in chat.body.get("messages") or [] if isinstance(m, dict)
                      and m.get("error") is True]
            for m in extra:
                if any(f.get("content") == m.get("content") for f in failed):
                    notes.append(f"it included a failed message ({short(m.get('content'), 40)})")
            if len(sent) == len(want) and not extra:
                notes.append("the messages were in another order, or carried extra fields")
            run.result.fail(
                "context",
                f"the backend sent the provider {len(sent)} message(s), expected {len(want)}"
                + (": " + "; ".join(notes) if notes else ""),
                step=chat.step, expected=_shape(want), actual=_shape(call.messages),
                clause="C-CHAT-3",
            )
