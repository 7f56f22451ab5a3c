"""Which message triggered a completion (C-CHAT-2) and what the provider is sent (C-CHAT-3).

Pure functions over the validated request, so they are easy to test and easy
to swap for a mutant (see mutants.py). The seed bug lives exactly here: the
app answered with the FIRST user message whose text matched, so a message
resent after a failure was paired with the failed attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.reference.errors import ApiError, quoted
from harness.reference.models import ChatMessageIn, ChatRequest


@dataclass(frozen=True)
class Trigger:
    """`request_id` as answered, and the position in `messages` of that user message.

    `index` is None when there is no history to point into (no `messages`).
    """

    request_id: str | None
    index: int | None


def chronological(messages: list[ChatMessageIn]) -> list[int]:
    """Positions of `messages` by timestamp, then by position (a stable sort)."""
    return sorted(range(len(messages)), key=lambda i: messages[i].timestamp)


def _by_current_message_id(request: ChatRequest) -> Trigger | None:
    """`current_message_id` wins when given (C-CHAT-2); None when it is not given."""
    wanted = request.current_message_id
    if not wanted:
        # An empty string counts as absent, as it would for the original JS client.
        return None
    messages = request.messages or []
    if not messages:
        return Trigger(wanted, None)
    for i in reversed(chronological(messages)):
        if messages[i].role == "user" and messages[i].id == wanted:
            return Trigger(wanted, i)
    raise ApiError(
        "unprocessable_entity",
        f"current_message_id {quoted(wanted)} names no user message in 'messages'",
    )


def _no_match(request: ChatRequest) -> ApiError:
    return ApiError(
        "unprocessable_entity",
        "No user message in 'messages' has the content of 'message'",
        details="'messages' must end with the user message being sent now.",
    )


def last_matching_user_message(request: ChatRequest) -> Trigger:
    """The contract: the LAST user message (timestamp, then position) whose trimmed text matches."""
    given = _by_current_message_id(request)
    if given is not None:
        return given
    messages = request.messages or []
    if not messages:
        return Trigger(None, None)
    wanted = request.message.strip()
    for i in reversed(chronological(messages)):
        if messages[i].role == "user" and messages[i].content.strip() == wanted:
            return Trigger(messages[i].id, i)
    raise _no_match(request)


def first_matching_user_message(request: ChatRequest) -> Trigger:
    """Mutant `request-id-first-match`: the seed bug, the FIRST match by position.

    Like the seed's backend, it never reads `current_message_id`.
    """
    messages = request.messages or []
    if not messages:
        return Trigger(None, None)
    wanted = request.message.strip()
    for i, message in enumerate(messages):
        if message.role == "user" and message.content.strip() == wanted:
            return Trigger(message.id, i)
    raise _no_match(request)


def first_message(request: ChatRequest) -> Trigger:
    """Mutant `request-id-first-message`: whatever comes first in `messages`.

    It never reads `current_message_id` either.
    """
    messages = request.messages or []
    if not messages:
        return Trigger(None, None)
    return Trigger(messages[0].id, 0)


def provider_messages(
    request: ChatRequest, trigger: Trigger, *, keep_failed: bool = False,
    whole: bool = False,
) -> list[dict[str, Any]]:
    """The `messages` sent upstream (C-CHAT-3).

    Chronological; roles and contents only; failed messages dropped except the
    trigger itself (a retried failed message must be sent); nothing after the
    trigger, so the list ends with it. `keep_failed` is the
    `context-keeps-failed` mutant; `whole` (mutant `provider-gets-metadata`) sends
    each message as the client sent it, ids and timestamps included.
    """
    messages = request.messages or []
    if not messages or trigger.index is None:
        return [{"role": "user", "content": request.message}]
    out: list[dict[str, Any]] = []
    for i in chronological(messages):
        message = messages[i]
        if message.failed and not keep_failed and i != trigger.index:
            continue
        out.append(message.model_dump(mode="json", exclude_none=True, by_alias=True,
                                      warnings=False) if whole
                   else {"role": message.role, "content": message.content})
        if i == trigger.index:
            break
    return out
