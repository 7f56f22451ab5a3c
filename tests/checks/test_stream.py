"""The ``stream`` check (C-STREAM-1): a 200 stream is the text, a newline, one final line.

``checks.outcome.parse_stream`` and ``check_outcome`` read a 200 stream the way the
contract tells a client to (``text, _, last = body.rpartition("\\n")``): the
last line is JSON carrying ``__FINAL_METADATA__`` or ``__STREAM_ERROR__``, no
marker is inside the text, and the text is ``__FINAL_METADATA__.response``
exactly. Each break fails at its step; a right stream passes, also with
newlines in the text, extra metadata fields or a stream that ends in error.
"""

from __future__ import annotations

import json
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
    run,
    scenario,
    success,
)

Hook = Callable[[dict[str, Any], bool, Call], httpx.Response]

HEAD = "name: case\nmodel: m/x\n"
WORDS = HEAD + """\
steps:
  - stream: say something
    provider: {reply: Some other words., chunk_chars: 4}
"""


def rewritten(change: Callable[[str, str, str], str]) -> Hook:
    """A chat hook: the contract's stream, its body ``change(text, last)``-d."""
    def hook(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        answer = contract_chat(body, streaming, call)
        text, sep, last = answer.text.rpartition("\n")
        return httpx.Response(200, headers={"content-type": "text/plain; charset=utf-8"},
                              content=change(text, sep, last).encode())
    return hook


def _final(last: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(last)["__FINAL_METADATA__"]
    return doc


@dataclass
class Wrong:
    rule: str
    change: Callable[[str, str, str], str]
    says: str


WRONG = [
    Wrong("a final line after a newline", lambda t, s, last: t + last,
          "the stream has no final line (no newline before it)"),
    Wrong("the final line is JSON", lambda t, s, last: t + s + "META " + last,
          "the final line is not JSON: 'META {"),
    Wrong("no newline after the final line", lambda t, s, last: t + s + last + "\n",
          "the final line is not JSON: ''"),
    Wrong("the final line carries a marker",
          lambda t, s, last: t + s + json.dumps({"metadata": _final(last)}),
          "the final line carries neither __FINAL_METADATA__ nor __STREAM_ERROR__"),
    Wrong("no marker inside the text (one final line)", lambda t, s, last: t + s + last + s + last,
          "a marker appears inside the streamed text"),
    Wrong("the text is the response, not with the chunks trimmed",
          lambda t, s, last: t.replace(" ", "") + s + last,
          "the streamed text differs from __FINAL_METADATA__.response"),
    Wrong("the separating newline is not part of the text",
          lambda t, s, last: t + "\n" + s + last,
          "the streamed text differs from __FINAL_METADATA__.response"),
    Wrong("the text is the response, with Windows line ends neither",
          lambda t, s, last: t + "\r" + s + last,
          "the streamed text differs from __FINAL_METADATA__.response"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_malformed_stream_fails_at_its_step(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, WORDS), Backend(chat=rewritten(wrong.change)))
    flagged(result, "stream", "C-STREAM-1", wrong.says, step=0)


def test_a_json_answer_instead_of_a_stream_fails_at_its_step(tmp_path: Path) -> None:
    def not_streamed(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        call(body)
        return success(body, "Some other words.")  # POST /api/chat's answer

    result = run(scenario(tmp_path, WORDS), Backend(chat=not_streamed))
    flagged(result, "stream", "C-STREAM-1", "the stream has no final line", step=0)


def test_the_failure_shows_the_body(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, WORDS),
                 Backend(chat=rewritten(lambda t, s, last: t.replace(" ", "") + s + last)))
    (failure,) = failures(result, "stream")
    assert (failure.expected, failure.actual) == ("'Some other words.'", "'Someotherwords.'")


def _loose_final(text: str, sep: str, last: str) -> str:
    doc = json.loads(last)
    key, data = next(iter(doc.items()))
    return text + sep + json.dumps({"served_by": "x", key: {
        **dict(reversed(list(data.items()))), "cost": 0.001}})


RIGHT: dict[str, tuple[str, Hook | None]] = {
    "one line": (WORDS, None),
    "newlines in the text": (HEAD + "steps:\n  - stream: a poem\n    provider: "
                             "{reply: \"line one\\nline two\\n\\nline four\", chunk_chars: 3}\n",
                             None),
    "a text that ends with a newline": (HEAD + "steps:\n  - stream: end it\n    provider: "
                                        "{reply: \"ends here\\n\", chunk_chars: 3}\n", None),
    "a text that looks like JSON": (HEAD + "steps:\n  - stream: json please\n    provider: "
                                    "{reply: '{\"a\": 1}', chunk_chars: 3}\n", None),
    "metadata with extra fields, another order": (WORDS, rewritten(_loose_final)),
    "a stream that ends in __STREAM_ERROR__": (
        HEAD + "steps:\n  - stream: a story\n    provider: {reply: Once upon a time there "
        "was, chunk_chars: 5, cut_after: 2}\n", None),
    "a __STREAM_ERROR__ with extra fields": (
        HEAD + "steps:\n  - stream: a story\n    provider: {reply: Half of it then, "
        "chunk_chars: 5, stream_error: {after: 1, code: 429}}\n", rewritten(_loose_final)),
}


@pytest.mark.parametrize(("text", "hook"), RIGHT.values(), ids=RIGHT.keys())
def test_a_well_formed_stream_passes_every_check(tmp_path: Path, text: str,
                                                 hook: Hook | None) -> None:
    backend = Backend(chat=hook)
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))
