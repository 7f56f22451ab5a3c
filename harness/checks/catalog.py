"""What each check asserts and the contract clauses it guards, in one table.

The documentation's reference of the checks is generated from :data:`ABOUT`
(with the mutants each check owns, :data:`harness.killmatrix.OWNERS`); a test
holds the table to :class:`harness.result.Check`: every check that judges a
backend is here, with clauses that exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.result import SWITCHABLE, Check


@dataclass(frozen=True)
class About:
    asserts: str  # what the check asserts, in one sentence
    clauses: tuple[str, ...]  # the clauses it guards
    when: str  # when it runs


_AFTER = "after the steps"
_DURING = "while a step runs"

ABOUT: dict[Check, About] = {
    Check.OUTCOME: About(
        "each chat, stream and retry step answers what the contract makes of its provider "
        "script", ("C-CHAT-3", "C-CHAT-4", "C-CHAT-5", "C-STREAM-1", "C-STREAM-2",
                   "C-STREAM-3"), _DURING),
    Check.PAIRING: About(
        "every successful chat is answered with the request_id C-CHAT-2 names; every stored "
        "answer points at the message its step sent", ("C-CHAT-2", "C-MSG-10"), _AFTER),
    Check.CONTEXT: About(
        "what the backend sent the provider: the history in order, roles and contents only, "
        "without failed messages except the one retried, ending with the trigger; the "
        "requested model", ("C-CHAT-3",), _AFTER),
    Check.ORDER: About(
        "GET /api/chat/messages returns the conversation as the client holds it, failed "
        "messages in place", ("C-MSG-9",), _AFTER),
    Check.LOST: About(
        "every message stored with a 2xx reads back with the same id, role, content, "
        "timestamp and pairing, in the API and in the chat_messages rows",
        ("C-MSG-4", "C-MSG-10"), _AFTER),
    Check.ROWS: About(
        "GET /api/chat/messages shows exactly the session's chat_messages rows, in their "
        "order, none hidden or invented", ("C-MSG-9", "C-MSG-10"), _AFTER),
    Check.IDEMPOTENT: About(
        "every accepted sync replayed, then replayed in reverse order, answers 2xx and leaves "
        "the same C-MSG-9 fields", ("C-MSG-2",), _AFTER),
    Check.PROVIDER_SCRIPT: About(
        "the backend made exactly the provider calls the script planned", ("C-CHAT-3",),
        _DURING),
    Check.ENVELOPE: About(
        "every error answer of the run has error, code, timestamp (and typed extras), with a "
        "code that goes with its status; every answer has x-request-id",
        ("C-ERR-1", "C-ERR-2"), _AFTER),
    Check.SERVER_ERROR: About(
        "no 5xx that no expectation or script asked for; a 500 never shows SQL, a traceback "
        "or the driver", ("C-ERR-3",), _AFTER),
    Check.SCHEMA: About(
        "every answer matches harness/contract/openapi.yaml, the contract as OpenAPI 3.1 "
        "(status, body, headers); open to extra fields", (), _AFTER),
    Check.EXPECT: About(
        "a step's own expectations: status, body, headers, the field an error names, what "
        "the provider was sent", (), _DURING),
    Check.SYNC: About(
        "the client's stores (POST /api/chat/messages after each chat) are accepted",
        ("C-MSG-1", "C-MSG-2"), _DURING),
    Check.STREAM: About(
        "the stream's framing: the text before the final line equals its response",
        ("C-STREAM-1",), _DURING),
    Check.DB: About("a db: step's rows are those its expect lists", (), _DURING),
    Check.STATS: About(
        "every session's stats are its messages' (message_count, total_tokens, latest)",
        ("C-MSG-7",), "after each round of a parallel: step, and in explore"),
    Check.ATOMIC: About(
        "a refused batch stored nothing", ("C-MSG-3",), "in explore"),
}

# not findings about the backend: the plugins' own, and errors of the scenario or harness
NOT_JUDGING = frozenset({Check.CUSTOM, Check.SCENARIO_ERROR, Check.HARNESS_ERROR})


def switchable(check: Check) -> bool:
    """Whether a scenario's ``checks:`` may switch ``check`` off."""
    return check.value in SWITCHABLE


__all__ = ["ABOUT", "NOT_JUDGING", "About", "switchable"]
