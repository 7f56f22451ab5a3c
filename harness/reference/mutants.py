"""Deliberate bugs ("mutants") that prove the harness catches real mistakes.

A mutant is chosen with `Settings.mutants` (env `CHAT_HARNESS_MUTANT`,
comma-separated). Each one swaps exactly one strategy in `Strategies`; the
handlers only ever call the strategy, so no handler branches on a mutant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import HTTPException as FastAPIHTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.reference import conversation, errors, items, provider, races, store
from harness.reference.errors import ApiError
from harness.reference.models import ChatRequest
from harness.reference.timestamps import elapsed_ms, now

MUTANTS: dict[str, str] = {
    "request-id-first-match": (
        "request_id is the FIRST user message whose text equals `message` (the seed bug)"
    ),
    "request-id-first-message": "request_id is messages[0].id, whatever its role or text",
    "insert-not-upsert": (
        "storing a message id a second time is a plain INSERT: duplicate key → 500 (the seed's 500)"
    ),
    "retry-not-updated": (
        "storing a message id again is ON CONFLICT DO NOTHING: retries never update"
    ),
    "server-timestamp": "the stored timestamp is the server's clock, not the one sent",
    "order-by-storage": "GET /api/chat/messages orders by storage order only, ignoring timestamps",
    "batch-not-atomic": (
        "each message of a batch is committed on its own: a refused batch is half written"
    ),
    "context-keeps-failed": "failed (error: true) messages are sent to the provider as context",
    "rate-limit-as-502": "a provider 429 is answered 502 bad_gateway without retryAfter",
    "foreign-session-readable": "GET /api/chat/messages answers for another user's session",
    "stream-loses-newlines": "the streamed text drops newline characters",
    "since-ts-inclusive": (
        "GET /api/chat/messages?since_ts= filters with >=: the message at since_ts comes back"
    ),
    "retry-after-ignored": (
        "a provider 429/503 is answered with retryAfter 60, whatever its Retry-After said"
    ),
    "retries-client-errors": (
        "every provider error status is retried like a 5xx, 429 and other 4xx included"
    ),
    "stats-not-updated-on-upsert": (
        "a store that only updates stored messages leaves the session stats and updated_at stale"
    ),
    "foreign-session-writable": (
        "POST /api/chat/messages stores into another user's existing session (and renames it)"
    ),
    "framework-error-body": (
        'unknown routes (404) and wrong methods (405) get FastAPI\'s {"detail": ...} body'
    ),
    "pairing-off-by-one": (
        "an answer is stored paired with the user message before the one it names"
    ),
    "provider-gets-metadata": (
        "the provider is sent the client's messages whole (ids, timestamps, error flags)"
    ),
    "elapsed-ms-float": "POST /api/chat answers elapsed_ms in fractional milliseconds",
    "leaky-500": (
        "a plain INSERT (the seed's duplicate-key 500), and the 500 shows the database's error"
    ),
    # Race mutants (harness/reference/races.py): right one request at a time.
    "check-then-insert": (
        "race: a store SELECTs which message ids are stored before its lock, then INSERTs the "
        "absent ones: two posts of one new id at once → duplicate key, 500"
    ),
    "stats-read-modify-write": (
        "race: session stats computed from the messages loaded before the lock, written back "
        "after the batch: concurrent batches lose each other's counts (C-MSG-7)"
    ),
    "session-select-then-insert": (
        "race: a new session is SELECTed before its lock, then INSERTed; the loser of two tabs "
        "gets the duplicate key as 409 conflict, to the session's own owner"
    ),
    "stats-own-transaction": (
        "race: messages committed first, stats refreshed in a second transaction that reads "
        "without the lock: stats disagree with the rows in between, or for good"
    ),
    "unlocked-check-then-insert": (
        "race: no session lock, and a message is stored by SELECT then INSERT if absent: two "
        "first posts of one new id at once → duplicate key 500"
    ),
}

# the mutants that only concurrent requests reveal (the kill-probability runs: --repeat)
RACE_MUTANTS = ("check-then-insert", "session-select-then-insert", "stats-own-transaction",
                "stats-read-modify-write", "unlocked-check-then-insert")


def check_mutant_names(names: Iterable[str]) -> None:
    unknown = sorted(set(names) - MUTANTS.keys())
    if unknown:
        raise ValueError(
            f"Unknown mutant(s) {', '.join(map(repr, unknown))}. "
            f"Hint: choose from {', '.join(sorted(MUTANTS))}"
        )


def _keep_timestamp(sent: datetime) -> datetime:
    return sent


def _server_timestamp(sent: datetime) -> datetime:
    clock = now()
    return clock.replace(microsecond=clock.microsecond // 1000 * 1000)


def _owner_only(session: dict[str, Any], user_id: Any) -> bool:
    return bool(session["user_id"] == user_id)


def _anyone(session: dict[str, Any], user_id: Any) -> bool:
    return True


def _fractional_ms(seconds: float) -> float:
    return round(seconds * 1000, 3)  # as performance.now() differences come out


def _show_exception(exc: Exception) -> ApiError:
    return ApiError("internal_server_error", "An internal error occurred.",
                    details=f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")


def _keep_text(text: str) -> str:
    return text


def _drop_newlines(text: str) -> str:
    return text.replace("\n", "")


@dataclass(frozen=True)
class Strategies:
    """The swappable decisions of the backend; the defaults are the correct ones."""

    # C-CHAT-2: which user message triggered the completion.
    pick_trigger: Callable[[ChatRequest], conversation.Trigger] = (
        conversation.last_matching_user_message
    )
    # C-CHAT-3: the history sent upstream.
    provider_messages: Callable[[ChatRequest, conversation.Trigger], list[dict[str, str]]] = (
        conversation.provider_messages
    )
    # C-CHAT-5: provider status → error code.
    map_provider_status: provider.StatusMapper = provider.code_for_status
    # C-MSG-2 / C-MSG-5: how one message row is written.
    write_message: store.MessageWriter = store.upsert_message
    # C-MSG-4: the instant stored for a sent timestamp.
    stored_timestamp: Callable[[datetime], datetime] = _keep_timestamp
    # C-MSG-9: ORDER BY of the message list.
    message_order: str = store.ORDER_CONVERSATION
    # C-MSG-3: one transaction per batch (True) or per message (False).
    atomic_batches: bool = True
    # C-AUTH-2 for reading messages: may this user read this session?
    can_read_session: Callable[[dict[str, Any], Any], bool] = _owner_only
    # C-STREAM-1: what happens to each streamed text piece.
    stream_text: Callable[[str], str] = _keep_text
    # C-MSG-9: the since_ts condition of the message list.
    since_filter: str = store.SINCE_STRICT
    # C-CHAT-5: the provider's Retry-After → retryAfter seconds.
    retry_after: provider.RetryAfterReader = provider.retry_after_seconds
    # C-CHAT-3: which provider statuses get another attempt.
    should_retry: provider.RetryPolicy = provider.retryable
    # C-MSG-7: refreshing the session's stats after a store.
    refresh_stats: store.StatsRefresher = store.refresh_stats_after_store
    # C-MSG-2 / C-MSG-7 under concurrency: what a store reads before the session's lock
    # (nothing), and what it does after its transaction (nothing).
    read_before_lock: races.BeforeLock = races.read_nothing
    after_commit: races.AfterCommit = races.nothing_after
    # C-SES-2 / C-MSG-6 under concurrency: lock and read a session; create a missing one.
    open_session: races.SessionOpener = races.lock_and_find
    create_session: races.SessionCreator = store.insert_session
    # C-AUTH-2 for storing messages: may this user write into this existing session?
    can_write_session: Callable[[dict[str, Any], Any], bool] = _owner_only
    # C-ERR-1: the exception class whose errors (routing 404/405 among them) get the envelope.
    http_errors: type[Exception] = StarletteHTTPException
    # C-CHAT-4: elapsed seconds → data.elapsed_ms.
    elapsed_ms: Callable[[float], Any] = elapsed_ms
    # C-ERR-3: the answer to an unexpected exception.
    internal_error: Callable[[Exception], ApiError] = errors.internal_error
    # The rest are free choices the benign variants make differently (variants.py).
    # C-SES-1 / C-MSG-9: how a stored row reads in an answer.
    session_item: Callable[[dict[str, Any]], dict[str, Any]] = items.session_item
    message_item: Callable[[dict[str, Any]], dict[str, Any]] = items.message_item
    # C-ERR-1: the x-request-id of a request that sent none.
    new_request_id: Callable[[], str] = errors.new_request_id
    # C-CHAT-3: seconds waited before and after each provider call (outside its
    # timeout), and before retry number n (1, 2).
    provider_pause_s: float = 0.0
    retry_backoff_s: provider.Backoff = provider.no_backoff
    # C-CHAT-3 / C-RUN-1: the body and headers of a provider call, beyond what they must hold.
    provider_request: provider.RequestShaper = provider.as_is


_SWAPS: dict[str, dict[str, Any]] = {
    "request-id-first-match": {"pick_trigger": conversation.first_matching_user_message},
    "request-id-first-message": {"pick_trigger": conversation.first_message},
    "insert-not-upsert": {"write_message": store.insert_message},
    "retry-not-updated": {"write_message": store.insert_or_keep_message},
    "server-timestamp": {"stored_timestamp": _server_timestamp},
    "order-by-storage": {"message_order": store.ORDER_STORAGE},
    "batch-not-atomic": {"atomic_batches": False},
    "context-keeps-failed": {
        "provider_messages": partial(conversation.provider_messages, keep_failed=True)
    },
    "rate-limit-as-502": {"map_provider_status": provider.code_for_status_429_as_502},
    "foreign-session-readable": {"can_read_session": _anyone},
    "stream-loses-newlines": {"stream_text": _drop_newlines},
    "since-ts-inclusive": {"since_filter": store.SINCE_INCLUSIVE},
    "retry-after-ignored": {"retry_after": provider.retry_after_ignored},
    "retries-client-errors": {"should_retry": provider.retry_any_failure},
    "stats-not-updated-on-upsert": {"refresh_stats": store.refresh_stats_on_insert},
    "foreign-session-writable": {"can_write_session": _anyone},
    # A handler registered for FastAPI's HTTPException misses the router's
    # Starlette HTTPException, which then gets FastAPI's default body.
    "framework-error-body": {"http_errors": FastAPIHTTPException},
    "pairing-off-by-one": {"write_message": store.upsert_paired_one_back},
    "provider-gets-metadata": {
        "provider_messages": partial(conversation.provider_messages, whole=True)
    },
    "elapsed-ms-float": {"elapsed_ms": _fractional_ms},
    "leaky-500": {"write_message": store.insert_message, "internal_error": _show_exception},
    "check-then-insert": {"read_before_lock": races.check_ids_first},
    "stats-read-modify-write": {"read_before_lock": races.load_messages_first},
    "session-select-then-insert": {"open_session": races.find_then_lock,
                                   "create_session": races.insert_session_or_taken},
    "stats-own-transaction": {"refresh_stats": races.no_stats,
                              "after_commit": races.stats_after_commit},
    "unlocked-check-then-insert": {"open_session": store.find_session,
                                   "write_message": store.check_then_insert_message},
}

assert _SWAPS.keys() == MUTANTS.keys(), "every mutant needs a description and a swap"


def build_strategies(mutants: Iterable[str] = ()) -> Strategies:
    """The correct strategies with each named mutant swapped in; ValueError on unknown names."""
    names = sorted(set(mutants))
    check_mutant_names(names)
    swaps: dict[str, Any] = {}
    for name in names:
        swaps.update(_SWAPS[name])
    return dataclasses.replace(Strategies(), **swaps)
