"""The ``pairing`` check of answers (C-CHAT-2): ``data.request_id`` names the trigger.

``pairing.check_request_ids``: ``request_id`` is ``current_message_id`` when
sent, else the LAST user message of ``messages`` whose trimmed text is the
trimmed ``message`` (by timestamp, then position), else ``null``. Each wrong
choice fails at its step under C-CHAT-2; the right one passes, also where it
is not the naive pick (an earlier position, text with spaces, extra fields).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import Backend, Call, clean, contract_chat, flagged, run, scenario

Pick = Callable[[dict[str, Any]], Any]


def naming(pick: Pick) -> Callable[[dict[str, Any], bool, Call], httpx.Response]:
    """A chat hook that answers as the contract says, but with ``request_id = pick(body)``."""
    def hook(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        return contract_chat(body, streaming, call, request_id=pick(body))
    return hook


def _users(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or [] if m.get("role") == "user"]


def first_with_text(body: dict[str, Any]) -> Any:
    """The FIRST user message with this text (the seed app's bug)."""
    return next(m["id"] for m in _users(body)
                if m["content"].strip() == body["message"].strip())


def last_by_position(body: dict[str, Any]) -> Any:
    """The last user message with this text by position, ignoring timestamps."""
    return [m["id"] for m in _users(body)
            if m["content"].strip() == body["message"].strip()][-1]


def last_user(body: dict[str, Any]) -> Any:
    """The last user message of the history, whatever its text."""
    return _users(body)[-1]["id"]


def nothing(body: dict[str, Any]) -> Any:
    return None


def invented(body: dict[str, Any]) -> Any:
    return "req-made-up"


HEAD = "name: case\nmodel: m/x\n"
SAME_TEXT = HEAD + """\
steps:
  - chat: same words
    provider: {reply: First.}
  - chat: other words
    provider: {reply: Second.}
  - chat: same words
    provider: {reply: Third.}
"""
# an older client: no current_message_id, the backend finds the message by its text
SAME_TEXT_NO_ID = SAME_TEXT.replace("steps:", "client: {current_message_id: false}\nsteps:")
RETRY_EARLIER = HEAD + """\
steps:
  - chat: will fail first
    provider: {status: 429}
  - chat: works
    provider: {reply: OK.}
  - retry: 1
    provider: {reply: Now it works.}
"""
# positions and timestamps disagree: the later instant comes first in the list
RAW_BY_TIME = HEAD + """\
steps:
  - http: POST /api/chat
    body:
      message: "  same  "
      model: m/x
      messages:
        - {id: u-late, role: user, content: same, timestamp: "2025-08-12T14:40:00.000Z"}
        - {id: a-1, role: assistant, content: Yes., timestamp: "2025-08-12T14:35:00.000Z",
           user_message_id: u-early}
        - {id: u-early, role: user, content: same, timestamp: "2025-08-12T14:30:00.000Z"}
    provider: {reply: Answered.}
"""
# a failed message can be the trigger: it is the last with this text
RAW_FAILED_TRIGGER = HEAD + """\
steps:
  - http: POST /api/chat
    body:
      message: again
      model: m/x
      messages:
        - {id: u-1, role: user, content: again, timestamp: "2025-08-12T14:30:00.000Z"}
        - {id: a-1, role: assistant, content: Done., timestamp: "2025-08-12T14:31:00.000Z",
           user_message_id: u-1}
        - {id: u-2, role: user, content: again, timestamp: "2025-08-12T14:32:00.000Z",
           error: true, error_message: Message failed}
    provider: {reply: Answered.}
"""
NO_HISTORY = HEAD + """\
steps:
  - http: POST /api/chat
    body: {message: hello, model: m/x}
    provider: {reply: Hi.}
  - http: POST /api/chat
    body: {message: hello, model: m/x, current_message_id: client-7}
    provider: {reply: Hi again.}
"""


@dataclass
class Wrong:
    rule: str  # the rule of C-CHAT-2 the answer breaks
    text: str  # the scenario
    pick: Pick
    step: int
    says: str  # a part of the failure's message


WRONG = [
    Wrong("current_message_id is the trigger, not the first message with its text",
          SAME_TEXT, first_with_text, 2,
          "(the user message of step 1 'same words') instead of"),
    Wrong("without current_message_id, the LAST user message with this text",
          SAME_TEXT_NO_ID, first_with_text, 2, "the message this step sent"),
    Wrong("a retry names the retried message, not the last of the history",
          RETRY_EARLIER, last_user, 2, "(the user message of step 2 'works')"),
    Wrong("the last by timestamp, then position (not by position alone)",
          RAW_BY_TIME, last_by_position, 0,
          "named u-early (the user message at messages[2] 'same') instead of u-late, "
          "the last user message with this text"),
    Wrong("a failed message with the text is the last one",
          RAW_FAILED_TRIGGER, first_with_text, 0, "named u-1 (the user message at"),
    Wrong("request_id is never left out when a message triggered it",
          SAME_TEXT, nothing, 0, "request_id named None (no message the client holds)"),
    Wrong("no messages, no current_message_id: null",
          NO_HISTORY, invented, 0, "named req-made-up (no message of the request) instead of "
          "None"),
    Wrong("no messages: current_message_id as given",
          NO_HISTORY, nothing, 1, "instead of client-7"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_wrong_request_id_fails_at_its_step(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), Backend(chat=naming(wrong.pick)))
    flagged(result, "pairing", "C-CHAT-2", wrong.says, step=wrong.step)


def test_the_whole_message_names_both_ids(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, RAW_BY_TIME), Backend(chat=naming(last_by_position)))
    failure = flagged(result, "pairing", "C-CHAT-2", "u-early", step=0)
    assert failure.message == ("request_id named u-early (the user message at messages[2] "
                               "'same') instead of u-late, the last user message with this "
                               "text")
    assert (failure.expected, failure.actual) == ("u-late", "u-early")


RIGHT = {
    "the current message among same texts": SAME_TEXT,
    "found by its text": SAME_TEXT_NO_ID,
    "the retried message": RETRY_EARLIER,
    "the latest instant, first in the list, text with spaces around": RAW_BY_TIME,
    "a failed trigger": RAW_FAILED_TRIGGER,
    "null, then current_message_id, without history": NO_HISTORY,
}


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_request_id_passes_every_check(tmp_path: Path, text: str) -> None:
    clean(run(scenario(tmp_path, text)))


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_request_id_in_an_answer_written_otherwise_passes(tmp_path: Path,
                                                                   text: str) -> None:
    def other(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        answer = contract_chat(body, streaming, call, contentType="markdown", trace="t-9",
                               elapsed_ms=1234)
        if answer.status_code != 200:
            return answer
        data = answer.json()["data"]  # keys in another order, the envelope's extra field
        doc = {"served_by": "other", "timestamp": "2025-08-12T16:34:08+02:00",
               "data": dict(reversed(list(data.items())))}
        return httpx.Response(200, json=doc)

    clean(run(scenario(tmp_path, text), Backend(chat=other)))


def test_without_current_message_id_the_latest_instant_wins(tmp_path: Path) -> None:
    text = HEAD + """\
client: {current_message_id: false}
steps:
  - chat: same words
    at: "2025-08-12T14:40:00.000Z"
    provider: {reply: First.}
  - chat: same words
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Second.}
"""
    result = run(scenario(tmp_path, text))  # the kit's backend answers as C-CHAT-2 says
    assert [f for f in result.failures if f.clause == "C-CHAT-2"] == []
