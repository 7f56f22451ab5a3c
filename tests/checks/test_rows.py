"""The ``rows`` check (C-MSG-9, C-MSG-10): the API shows exactly the session's rows.

``conversation.check_rows``: each conversation the checks read matches the
``chat_messages`` rows of its session (a :class:`FakeDb` here): the same ids
in the same order (``ORDER BY message_timestamp, seq``), the same role and
content, failed exactly when the row has an ``error_message``. A row the API
hides, an item with no row, another order or another field fails; the same
rows pass, also with more columns and other sessions' rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    Backend,
    FakeDb,
    Rows,
    clean,
    failures,
    flagged,
    loose_read,
    loose_store,
    run,
    scenario,
    with_items,
)

HEAD = "name: case\nmodel: m/x\n"
RETRIED = HEAD + """\
steps:
  - chat: first question
    provider: {reply: First answer.}
  - chat: this one fails
    provider: {status: 429}
  - retry: 2
    provider: {reply: Retried answer.}
"""
FAILED = HEAD + """\
steps:
  - chat: this one fails
    provider: {status: 429, retry_after: 3}
"""
TIES = HEAD + """\
steps:
  - chat: tie one
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer one.}
  - chat: tie two
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer two.}
"""


def second_row_for_a_retry(rows: Rows) -> Rows:
    """The retry was inserted as a new row; the API hides the old one."""
    retried = next(r for r in rows if r["content"] == "this one fails")
    return [*rows, {**retried, "id": "dup-1", "seq": 99, "error_message": "Message failed"}]


def no_row_for(content: str) -> Callable[[Rows], Rows]:
    return lambda rows: [r for r in rows if r["content"] != content]


def first_ties_swapped(rows: Rows) -> Rows:
    """The two tied user messages with each other's storage order."""
    u1, u2 = (r for r in rows if r["role"] == "user")
    u1["seq"], u2["seq"] = u2["seq"], u1["seq"]
    return rows


def content_of(old: str, new: str) -> Callable[[Rows], Rows]:
    return lambda rows: [{**r, "content": new} if r["content"] == old else r for r in rows]


def error_message_of(content: str, value: Any) -> Callable[[Rows], Rows]:
    return lambda rows: [{**r, "error_message": value} if r["content"] == content else r
                         for r in rows]


@dataclass
class Wrong:
    rule: str
    text: str
    change: Callable[[Rows], Rows]
    clause: str
    says: str


WRONG = [
    Wrong("the API shows every row of the session", RETRIED, second_row_for_a_retry,
          "C-MSG-9", "rows the API does not show: ['dup-1']"),
    Wrong("every message the API shows has a row", RETRIED, no_row_for("Retried answer."),
          "C-MSG-9", "API messages with no row: ['msg_"),
    Wrong("in the rows' order: by message_timestamp, then seq", TIES, first_ties_swapped,
          "C-MSG-9", "(by message_timestamp, then storage order): the same messages in "
          "another order"),
    Wrong("with the row's content", RETRIED, content_of("First answer.", "First answer"),
          "C-MSG-10", "the API and the row differ: content: row 'First answer', API "
                      "'First answer.'"),
    Wrong("with the row's role", RETRIED,
          lambda rows: [{**r, "role": "system"} if r["content"] == "first question" else r
                        for r in rows],
          "C-MSG-10", "the API and the row differ: role: row 'system', API 'user'"),
    Wrong("failed in the API exactly when the row has an error_message (a retry clears it)",
          RETRIED, error_message_of("this one fails", "Message failed"), "C-MSG-10",
          "error: row error_message 'Message failed', API error False"),
    Wrong("a failed message's row keeps its error_message", FAILED,
          error_message_of("this one fails", None), "C-MSG-10",
          "error: row error_message None, API error True"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_an_api_that_does_not_show_the_rows_fails(tmp_path: Path, wrong: Wrong) -> None:
    backend = Backend()
    result = run(scenario(tmp_path, wrong.text), backend, FakeDb(backend, wrong.change))
    failure = flagged(result, "rows", wrong.clause, wrong.says, step=None)
    assert failure.message.startswith(("session conv_", "message msg_"))


def test_only_the_database_sees_these(tmp_path: Path) -> None:
    # the client's view reads back right: order and lost find nothing, rows does
    backend = Backend()
    result = run(scenario(tmp_path, RETRIED), backend,
                 FakeDb(backend, second_row_for_a_retry))
    assert {f.check for f in result.failures} == {"rows"}


def test_both_lists_are_in_the_failure(tmp_path: Path) -> None:
    backend = Backend()
    result = run(scenario(tmp_path, TIES), backend, FakeDb(backend, first_ties_swapped))
    (failure,) = failures(result, "rows")
    assert sorted(failure.expected) == sorted(failure.actual)
    assert failure.expected != failure.actual


def _more(rows: Rows) -> Rows:
    """Rows as a real table holds them: more columns, another session's rows."""
    other = {**rows[0], "id": "other-1", "session_id": "someone-else", "seq": 1000,
             "message_timestamp": rows[0]["message_timestamp"] - timedelta(days=1)}
    return [other, *({**r, "metadata": {"k": 1}, "is_streaming": False} for r in rows)]


def _failed_with_its_own_text(rows: Rows) -> Rows:
    return [{**r, "error_message": "upstream says wait"} if r["error_message"] else r
            for r in rows]


RIGHT: dict[str, tuple[str, Callable[[], Backend], Callable[[Rows], Rows] | None]] = {
    "a retried exchange": (RETRIED, Backend, None),
    "a failed message with its error text": (FAILED, Backend, _failed_with_its_own_text),
    "ties in storage order": (TIES, Backend, None),
    "more columns, other sessions' rows": (RETRIED, Backend, _more),
    "answers written otherwise": (RETRIED, lambda: Backend(store=loose_store, read=loose_read),
                                  None),
}


@pytest.mark.parametrize(("text", "make", "change"), RIGHT.values(), ids=RIGHT.keys())
def test_an_api_showing_the_rows_passes_every_check(
        tmp_path: Path, text: str, make: Callable[[], Backend],
        change: Callable[[Rows], Rows] | None) -> None:
    backend = make()
    db = FakeDb(backend, change)
    clean(run(scenario(tmp_path, text), backend, db))
    assert any("WHERE session_id" in sql for sql, _ in db.queries)


def test_an_unreadable_session_is_not_compared(tmp_path: Path) -> None:
    def refuse(session: str, backend: Backend) -> httpx.Response:
        return httpx.Response(404, json={"error": "no", "code": "not_found",
                                         "timestamp": "2025-08-12T14:34:08Z"})

    backend = Backend(read=refuse)
    result = run(scenario(tmp_path, RETRIED), backend, FakeDb(backend))
    assert failures(result, "rows") == []
    flagged(result, "order", "C-MSG-9", "404 not_found")


def test_an_api_item_with_extra_fields_passes(tmp_path: Path) -> None:
    backend = Backend(read=with_items(lambda items: [{**i, "session_id": "s"} for i in items]))
    clean(run(scenario(tmp_path, RETRIED), backend, FakeDb(backend)))


def test_it_reads_the_conversation_itself(tmp_path: Path) -> None:
    text = RETRIED.replace("steps:", "checks: {order: false, lost: false}\nsteps:")
    backend = Backend()
    result = run(scenario(tmp_path, text), backend, FakeDb(backend, second_row_for_a_retry))
    flagged(result, "rows", "C-MSG-9", "rows the API does not show: ['dup-1']")
