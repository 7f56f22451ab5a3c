"""The ``pairing`` check of stored answers (C-MSG-10): paired with their step's message.

``pairing.check_stored_pairing``: an assistant message the client stored reads
back with ``user_message_id`` = the user message its step sent. A backend
that stores or reads another pairing (another message, none), or a client
misled by a wrong ``request_id``, fails at the step of the answer; a right
pairing passes, however the answers are written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    Backend,
    Call,
    FakeDb,
    clean,
    contract_chat,
    failures,
    flagged,
    loose_read,
    loose_store,
    run,
    scenario,
    with_items,
)

from harness.contract import oracle

Items = list[dict[str, Any]]

HEAD = "name: case\nmodel: m/x\n"
THREE = HEAD + """\
steps:
  - chat: first question
    provider: {reply: First answer.}
  - stream: second question
    provider: {reply: Second answer., chunk_chars: 4}
  - chat: third question
    provider: {reply: Third answer.}
"""
RETRY_EARLIER = HEAD + """\
steps:
  - chat: will fail first
    provider: {status: 429}
  - chat: works
    provider: {reply: OK.}
  - retry: 1
    provider: {reply: Now it works.}
"""


def answers_paired_with(pick: Callable[[Items, dict[str, Any]], Any]
                        ) -> Callable[[str, Backend], httpx.Response]:
    """A read hook: every answer reads back paired with ``pick(items, answer)``."""
    def change(items: Items) -> Items:
        for item in items:
            if item["role"] == "assistant":
                item["user_message_id"] = pick(items, item)
        return items
    return with_items(change)


def first_user(items: Items, answer: dict[str, Any]) -> Any:
    return next(i["id"] for i in items if i["role"] == "user")


def unpaired(items: Items, answer: dict[str, Any]) -> Any:
    return None


def paired_with_the_latest_user_message(body: dict[str, Any], backend: Backend
                                        ) -> httpx.Response:
    """A store hook that pairs each answer with the session's latest user message."""
    batch = body.get("messages") or [body.get("message")]
    users = [r for r in backend.rows.values() if r["role"] == "user"
             and r["_session"] == body["sessionId"]] + [m for m in batch if m["role"] == "user"]
    latest = max(users, key=lambda m: oracle.parse_ts(m["timestamp"]))["id"] if users else None
    fixed = [{**m, "user_message_id": latest} if m["role"] == "assistant" else m for m in batch]
    return backend.stored({**body, "messages": fixed, "message": None})


def request_id_of_the_first_message(body: dict[str, Any], streaming: bool, call: Call
                                    ) -> httpx.Response:
    users = [m for m in body["messages"] if m["role"] == "user"]
    return contract_chat(body, streaming, call, request_id=users[0]["id"])


@dataclass
class Wrong:
    rule: str
    text: str
    backend: Callable[[], Backend]
    step: int
    says: str


WRONG = [
    Wrong("an answer reads back paired with another user message", THREE,
          lambda: Backend(read=answers_paired_with(first_user)), 1,
          "(the user message of step 1 'first question') instead of"),
    Wrong("an answer reads back paired with nothing", THREE,
          lambda: Backend(read=answers_paired_with(unpaired)), 2,
          "is paired with None (no message the client holds) instead of"),
    Wrong("the backend re-pairs a retried answer with the latest user message",
          RETRY_EARLIER, lambda: Backend(store=paired_with_the_latest_user_message), 2,
          "(the user message of step 2 'works') instead of"),
    Wrong("a wrong request_id stores a wrong pairing", THREE,
          lambda: Backend(chat=request_id_of_the_first_message), 2,
          "(the user message of step 1 'first question') instead of"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_wrong_stored_pairing_fails_at_the_answer_s_step(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), wrong.backend())
    failure = flagged(result, "pairing", "C-MSG-10", wrong.says, step=wrong.step)
    assert failure.message.startswith("the stored answer msg_")
    assert failure.message.endswith("the message its step sent")


def test_the_failure_names_what_it_read_and_what_it_wanted(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, THREE), Backend(read=answers_paired_with(unpaired)))
    found = [f for f in failures(result, "pairing") if f.clause == "C-MSG-10"]
    assert [f.step for f in found] == [0, 1, 2]  # one per answer
    assert all(f.actual is None and str(f.expected).startswith("msg_") for f in found)


RIGHT = {"answers, a stream among them": THREE, "a retry of an earlier message": RETRY_EARLIER}


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_pairing_passes_every_check(tmp_path: Path, text: str) -> None:
    backend = Backend()
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_pairing_written_otherwise_passes_every_check(tmp_path: Path,
                                                                text: str) -> None:
    backend = Backend(store=loose_store, read=loose_read)
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


def test_an_answer_that_does_not_read_back_is_lost_not_mispaired(tmp_path: Path) -> None:
    drop_answers = with_items(lambda items: [i for i in items if i["role"] != "assistant"])
    result = run(scenario(tmp_path, THREE), Backend(read=drop_answers))
    assert [f for f in failures(result, "pairing") if f.clause == "C-MSG-10"] == []
    flagged(result, "lost", "C-MSG-10", "does not read back")


def test_it_reads_the_conversation_itself(tmp_path: Path) -> None:
    text = THREE.replace("steps:", "checks: {order: false, lost: false}\nsteps:")
    result = run(scenario(tmp_path, text), Backend(read=answers_paired_with(unpaired)))
    flagged(result, "pairing", "C-MSG-10", "is paired with None")
