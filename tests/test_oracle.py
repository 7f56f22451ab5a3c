"""The oracle (what a correct backend answers) pinned down rule by rule, and agreeing with the
reference on timestamps.

Every table asserts whole results (the full Outcome, the exact words, the whole stats dict):
a change to any decision of harness/contract/oracle.py must fail one of these rows
(``python bench/mutation.py --only oracle`` measures it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.contract import oracle
from harness.contract.oracle import NotApplicable, Outcome
from harness.provider import Answer, ErrorAnswer, RawAnswer, Reply
from harness.reference.timestamps import format_timestamp, parse_timestamp

W = "the provider answered "
LONG = "a" * 36  # three chunks of the default 12 characters
GOOD_RAW = '{"choices": [{"message": {"content": "hi"}}]}'
ENDED = f"{W}a reply, its first token after PROVIDER_TIMEOUT_MS (1000 ms)"
LATE = ", after PROVIDER_TIMEOUT_MS (1000 ms)"


@pytest.fixture
def local_zone() -> Iterator[None]:
    """The machine's zone is UTC+05:30: results must still be in UTC (and naive means UTC)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "XST-05:30")
    time.tzset()
    try:
        yield
    finally:
        mp.undo()
        time.tzset()


# -- timestamps -------------------------------------------------------------------


@pytest.mark.parametrize(("ts", "text"), [
    (datetime(362, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "0362-01-02T03:04:05.006Z"),
    (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
    (datetime(2025, 8, 12, 14, 34, 8, 860999, tzinfo=UTC), "2025-08-12T14:34:08.860Z"),
])
def test_format_ts_is_the_wire_form_with_four_digit_years(ts: datetime, text: str) -> None:
    assert oracle.format_ts(ts) == text


@given(st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(UTC)))
def test_oracle_and_reference_format_and_parse_alike(ts: datetime) -> None:
    text = oracle.format_ts(ts)
    assert text == format_timestamp(ts)
    assert oracle.parse_ts(text) == parse_timestamp(text)


def test_format_ts_writes_utc_whatever_the_offset_or_the_machine_zone(local_zone: None) -> None:
    plus2 = timezone(timedelta(hours=2))
    assert oracle.format_ts(datetime(2025, 8, 12, 16, 34, 8, 5000, tzinfo=plus2)) == (
        "2025-08-12T14:34:08.005Z")
    assert oracle.format_ts(datetime(2025, 8, 12, 14, 34, 8, tzinfo=UTC)) == (
        "2025-08-12T14:34:08.000Z")


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("value", "want"), [
    pytest.param("2025-08-12T14:34:11.123Z", _utc(2025, 8, 12, 14, 34, 11, 123000), id="Z"),
    pytest.param("2025-08-12T14:34:11.123z", _utc(2025, 8, 12, 14, 34, 11, 123000),
                 id="lowercase-z-is-utc-too"),
    pytest.param("  2025-08-12T14:34:11.123Z \n", _utc(2025, 8, 12, 14, 34, 11, 123000),
                 id="blanks-around-ignored"),
    pytest.param("2025-08-12T16:34:11.123+02:00", _utc(2025, 8, 12, 14, 34, 11, 123000),
                 id="offset-turned-to-utc"),
    pytest.param("2025-08-12T14:34:11.123", _utc(2025, 8, 12, 14, 34, 11, 123000),
                 id="no-offset-means-utc"),
    pytest.param("2025-08-12T14:34:11.123999Z", _utc(2025, 8, 12, 14, 34, 11, 123000),
                 id="finer-digits-cut-not-rounded"),
    pytest.param("2025-08-12", _utc(2025, 8, 12), id="a-date-alone-is-midnight-utc"),
    pytest.param("2025-08-12Z", _utc(2025, 8, 12), id="a-date-with-Z-is-midnight-utc"),
    pytest.param("yesterday", None, id="not-iso-is-none"),
    pytest.param("", None, id="empty-is-none"),
    pytest.param(None, None, id="none-is-none"),
    pytest.param(1755009251000, None, id="a-number-is-none"),
    pytest.param(_utc(2025, 8, 12), None, id="a-datetime-is-not-text"),
])
def test_parse_ts_reads_iso_8601_as_utc_milliseconds(local_zone: None, value: Any,
                                                     want: datetime | None) -> None:
    got = oracle.parse_ts(value)
    assert got == want
    if want is not None:
        assert got is not None and got.tzinfo is UTC


@pytest.mark.parametrize(("value", "want"), [
    pytest.param("2025-08-12T14:34:11.123456Z", _utc(2025, 8, 12, 14, 34, 11, 123456),
                 id="every-digit-kept"),
    pytest.param("2025-08-12T14:34:11.123456z", _utc(2025, 8, 12, 14, 34, 11, 123456),
                 id="lowercase-z"),
    pytest.param("2025-08-12Z", _utc(2025, 8, 12), id="a-date-with-Z"),
    pytest.param(" 2025-08-12T16:34:11+02:00 ", _utc(2025, 8, 12, 14, 34, 11),
                 id="offset-turned-to-utc"),
    pytest.param("2025-08-12T14:34:11", _utc(2025, 8, 12, 14, 34, 11), id="no-offset-is-utc"),
    pytest.param(datetime(2025, 8, 12, 14, 34, 11, 7), _utc(2025, 8, 12, 14, 34, 11, 7),
                 id="naive-datetime-is-utc"),
    pytest.param(datetime(2025, 8, 12, 16, 34, 11, tzinfo=timezone(timedelta(hours=2))),
                 _utc(2025, 8, 12, 14, 34, 11), id="aware-datetime-keeps-its-instant"),
    pytest.param("noon", None, id="not-iso"),
    pytest.param(5, None, id="a-number"),
    pytest.param(None, None, id="none"),
])
def test_exact_keeps_every_digit_in_utc(local_zone: None, value: Any,
                                        want: datetime | None) -> None:
    got = oracle._exact(value)
    assert got == want
    if want is not None:
        assert got is not None and got.tzinfo is UTC


@pytest.mark.parametrize(("sent", "stored", "same"), [
    pytest.param("2025-08-12T14:34:11.123Z", "2025-08-12T14:34:11.123Z", True, id="equal"),
    pytest.param("2025-08-12T16:34:11.123+02:00", _utc(2025, 8, 12, 14, 34, 11, 123000), True,
                 id="offset-vs-row"),
    pytest.param("2025-08-12T14:34:11.123", datetime(2025, 8, 12, 14, 34, 11, 123000), True,
                 id="naive-text-vs-naive-row-both-utc"),
    pytest.param("2025-08-12T14:34:11.123", "2025-08-12T14:34:11.123Z", True,
                 id="naive-text-is-utc"),
    pytest.param(datetime(2025, 8, 12, 16, 34, 11, tzinfo=timezone(timedelta(hours=2))),
                 "2025-08-12T14:34:11.000Z", True, id="aware-datetime-sent"),
    pytest.param("2025-08-12T14:34:11.123Z", "2025-08-12T14:34:11.124Z", False,
                 id="another-millisecond"),
    pytest.param("2025-08-12T14:34:11.123456Z", "2025-08-12T14:34:11.123456Z", True,
                 id="finer-digits-kept"),
    pytest.param("2025-08-12T14:34:11.123456Z", "2025-08-12T14:34:11.123Z", True,
                 id="finer-digits-cut"),
    pytest.param("2025-08-12T14:34:11.123400Z", "2025-08-12T14:34:11.124Z", False,
                 id="below-half-is-not-rounded-up"),
    pytest.param("2025-08-12T14:34:11.123500Z", "2025-08-12T14:34:11.124Z", True,
                 id="half-rounds-up"),
    pytest.param("2025-08-12T14:34:11.123500Z", "2025-08-12T14:34:11.123Z", True,
                 id="half-may-be-cut"),
    pytest.param("2025-08-12T14:34:11.001500Z", "2025-08-12T14:34:11.002Z", True,
                 id="rounding-reads-the-microseconds-of-the-millisecond"),
    pytest.param("2025-08-12T14:34:11.500400Z", "2025-08-12T14:34:11.500Z", True,
                 id="cut-keeps-the-milliseconds"),
    pytest.param("2025-08-12T14:34:11.999700Z", "2025-08-12T14:34:12.000Z", True,
                 id="rounding-carries-into-the-second"),
    pytest.param("garbage", "2025-08-12T14:34:11.123Z", False, id="sent-unreadable"),
    pytest.param("2025-08-12T14:34:11.123Z", "garbage", False, id="stored-unreadable"),
    pytest.param(None, None, False, id="neither-readable"),
    pytest.param("2025-08-12T14:34:11.123Z", 1755009251123, False, id="stored-a-number"),
])
def test_same_instant_to_the_millisecond(local_zone: None, sent: Any, stored: Any,
                                         same: bool) -> None:
    assert oracle.same_instant(sent, stored) is same


def test_item_fields_keeps_the_fields_the_contract_fixes_in_its_order() -> None:
    item = {"zz": 1, "timestamp": "t", "id": "m1", "session_id": "s", "content": "c",
            "error": False, "role": "user"}
    assert list(oracle.item_fields(item).items()) == [
        ("id", "m1"), ("role", "user"), ("content", "c"), ("timestamp", "t"), ("error", False)]
    assert oracle.item_fields("not an item") == "not an item"
    assert oracle.item_fields(None) is None


# -- stats (C-MSG-7) -------------------------------------------------------------


def _msg(role: str, content: str = "c", **more: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **more}


@pytest.mark.parametrize(("messages", "stats"), [
    pytest.param([], {"message_count": 0, "total_tokens": 0, "last_message_preview": None,
                      "last_model": None}, id="no-messages"),
    pytest.param(
        [_msg("user", "q", originalModel="m/a"), _msg("assistant", "x" * 150, model="m/b",
                                                      total_tokens=10),
         _msg("user", "y" * 101, total_tokens=5),
         _msg("assistant", "failed", model="m/c", total_tokens=99, error=True)],
        {"message_count": 3, "total_tokens": 10, "last_message_preview": "y" * 100,
         "last_model": "m/b"},
        id="failed-ignored-user-tokens-ignored-preview-cut-at-100"),
    pytest.param(
        [_msg("assistant", "a", model="m/b", total_tokens=3),
         _msg("user", "u", originalModel="m/a")],
        {"message_count": 2, "total_tokens": 3, "last_message_preview": "u",
         "last_model": "m/a"},
        id="a-users-originalModel-counts"),
    pytest.param(
        [_msg("assistant", "a", model="", originalModel="m/x", total_tokens=2),
         _msg("assistant", "b", model=5, total_tokens=4, error=False)],
        {"message_count": 2, "total_tokens": 6, "last_message_preview": "b",
         "last_model": "m/x"},
        id="empty-model-falls-back-and-non-string-models-ignored"),
    pytest.param(
        [_msg("assistant", "a", total_tokens=True), _msg("assistant", "b", total_tokens="7"),
         _msg("assistant", "c"), _msg("assistant", "d", total_tokens=None)],
        {"message_count": 4, "total_tokens": 0, "last_message_preview": "d",
         "last_model": None},
        id="tokens-that-are-not-integers-count-zero"),
    pytest.param(
        [_msg("user", "z" * 100), _msg("user", "last", error=True)],
        {"message_count": 1, "total_tokens": 0, "last_message_preview": "z" * 100,
         "last_model": None},
        id="latest-is-the-last-without-error-and-100-characters-stay-whole"),
])
def test_expected_stats(messages: list[dict[str, Any]], stats: dict[str, Any]) -> None:
    assert oracle.expected_stats(messages) == stats


# -- the request id and the context (C-CHAT-2/3) ------------------------------------


def _u(mid: Any, content: str = "hi", ts: str | None = None, **more: Any) -> dict[str, Any]:
    out = {"id": mid, "role": "user", "content": content, **more}
    if ts is not None:
        out["timestamp"] = f"2025-01-01T00:00:0{ts}Z"
    return out


def _a(mid: str, content: str = "answer", ts: str | None = None,
       **more: Any) -> dict[str, Any]:
    return {**_u(mid, content, ts, **more), "role": "assistant"}


@pytest.mark.parametrize(("body", "want"), [
    pytest.param({"message": "hi"}, None, id="no-messages-no-current-is-null"),
    pytest.param({"message": "hi", "messages": []}, None, id="empty-messages-is-null"),
    pytest.param({"message": "hi", "current_message_id": "m9"}, "m9",
                 id="no-messages-current-as-given"),
    pytest.param({"message": "x", "messages": [], "current_message_id": 9}, "9",
                 id="current-as-text"),
    pytest.param({"message": "x", "messages": ["junk", _u("u1", "other"), _u("u2")],
                  "current_message_id": "u1"}, "u1", id="current-names-a-user-message"),
    pytest.param({"message": "hi", "messages": [_u("u1", ts="2"), _u("u2", ts="1")]}, "u1",
                 id="last-by-timestamp"),
    pytest.param({"message": "hi", "messages": [_u("u1", ts="1"), _u("u2", ts="1")]}, "u2",
                 id="ties-by-position"),
    pytest.param({"message": "hi", "messages": [_u("u1"), _u("u2", ts="1")]}, "u1",
                 id="no-timestamp-sorts-last"),
    pytest.param({"message": "  hi ", "messages": [_u("u1", "hi\n"), _u("u2", "bye")]}, "u1",
                 id="trimmed-contents-compared"),
    pytest.param({"message": "hi", "messages": [_u("u1", ts="1"), _a("a1", "hi", ts="2")]},
                 "u1", id="only-user-messages-match"),
    pytest.param({"messages": [{"id": "u1", "role": "user", "content": None}]}, "u1",
                 id="missing-texts-are-empty"),
    pytest.param({"message": None, "messages": [_u("u1", "")]}, "u1",
                 id="no-message-matches-empty-content"),
    pytest.param({"message": "hi", "messages": [_u(7)]}, "7", id="id-as-text"),
])
def test_expected_request_id(body: dict[str, Any], want: str | None) -> None:
    assert oracle.expected_request_id(body) == want


@pytest.mark.parametrize(("body", "words"), [
    pytest.param({"message": "hi", "messages": [_u("u1")], "current_message_id": "u9"},
                 "current_message_id names no user message (422)", id="current-unknown"),
    pytest.param({"message": "hi", "messages": [_u("u1"), _a("a1")],
                  "current_message_id": "a1"},
                 "current_message_id names no user message (422)",
                 id="current-names-an-assistant"),
    pytest.param({"message": "hi", "messages": [_u("u1", "bye"), _a("a1", "hi")]},
                 "no user message matches 'message' (422)", id="no-user-message-matches"),
])
def test_expected_request_id_refuses(body: dict[str, Any], words: str) -> None:
    with pytest.raises(NotApplicable) as info:
        oracle.expected_request_id(body)
    assert str(info.value) == words


def _ctx(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in pairs]


@pytest.mark.parametrize(("body", "want"), [
    pytest.param({"message": "hi"}, _ctx(("user", "hi")), id="no-messages-the-message"),
    pytest.param({"message": "hi", "messages": []}, _ctx(("user", "hi")),
                 id="empty-messages-the-message"),
    pytest.param({}, _ctx(("user", "")), id="nothing-an-empty-message"),
    pytest.param({"message": 5}, _ctx(("user", "5")), id="message-as-text"),
    pytest.param(
        {"message": "again", "messages": [
            _a("a1", "answer", ts="2"), _u("u1", "q", ts="1"),
            _u("f1", "bad", ts="3", error=True), _u("u2", "again", ts="4", error=True),
            _a("a2", "later", ts="5"), _u("u3", "after", ts="6")]},
        _ctx(("user", "q"), ("assistant", "answer"), ("user", "again")),
        id="chronological-failed-dropped-but-the-trigger-and-nothing-after-it"),
    pytest.param(
        {"message": "x", "current_message_id": "u1", "messages": [
            _a("u1", "same id", ts="1"), _u("u1", "q", ts="2"), _u("u2", "later", ts="3")]},
        _ctx(("assistant", "same id"), ("user", "q")), id="the-trigger-is-a-user-message"),
    pytest.param(
        {"message": "q", "messages": [_u("u0", "odd", ts="1", error=1),
                                      _u("u1", "q", ts="2")]},
        _ctx(("user", "odd"), ("user", "q")), id="only-error-true-drops"),
])
def test_expected_context(body: dict[str, Any], want: list[dict[str, str]]) -> None:
    assert oracle.expected_context(body) == want


# -- Retry-After and status mapping (C-CHAT-5) -------------------------------------

NOW = _utc(2015, 10, 21, 7, 27, 30)
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(("value", "now", "seconds"), [
    pytest.param(None, NOW, 60, id="none-is-60"),
    pytest.param(30, NOW, 30, id="an-int-as-is"),
    pytest.param(0, NOW, 0, id="zero-as-is"),
    pytest.param("45", NOW, 45, id="digits"),
    pytest.param(" 45 ", NOW, 45, id="digits-trimmed"),
    pytest.param("soon", NOW, 60, id="garbage-is-60"),
    pytest.param("", NOW, 60, id="empty-is-60"),
    pytest.param("-5", NOW, 60, id="negative-text-is-60"),
    pytest.param(DATE, NOW, 30, id="http-date-in-seconds"),
    pytest.param(DATE, NOW + timedelta(milliseconds=500), 30, id="http-date-rounded-up"),
    pytest.param(DATE, NOW - timedelta(milliseconds=500), 31, id="http-date-ceil"),
    pytest.param(DATE, NOW + timedelta(minutes=5), 0, id="http-date-past-is-zero"),
])
def test_retry_after_seconds(value: Any, now: datetime, seconds: int) -> None:
    assert oracle.retry_after_seconds(value, now=now) == seconds


def test_retry_after_seconds_counts_from_the_clock_without_now() -> None:
    assert oracle.retry_after_seconds(DATE) == 0  # 2015: past
    future = "Fri, 01 Jan 2100 00:00:00 GMT"
    when = parsedate_to_datetime(future)
    latest = math.ceil((when - datetime.now(UTC)).total_seconds())
    got = oracle.retry_after_seconds(future)
    earliest = math.ceil((when - datetime.now(UTC)).total_seconds())
    assert earliest <= got <= latest


@pytest.mark.parametrize(("value", "seconds"), [
    pytest.param("Wed, 21 Oct 2015 07:28:00 -0000", 30, id="minus-zero-offset-is-utc"),
    pytest.param("²", 60, id="superscript-digit-is-garbage"),
])
def test_retry_after_seconds_never_raises(value: str, seconds: int) -> None:
    assert oracle.retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize(("status", "mapped"), [
    (400, (400, "bad_request")), (402, (402, "payment_required")),
    (429, (429, "too_many_requests")), (503, (503, "service_unavailable")),
    (401, (502, "bad_gateway")), (404, (502, "bad_gateway")), (500, (502, "bad_gateway")),
    (504, (502, "bad_gateway")),
])
def test_map_provider_status(status: int, mapped: tuple[int, str]) -> None:
    assert oracle.map_provider_status(status) == mapped


# -- describing answers and outcomes ---------------------------------------------------


@pytest.mark.parametrize(("answer", "stream", "words"), [
    pytest.param(ErrorAnswer(429, retry_after=30), False, "429 (Retry-After 30)",
                 id="error-with-retry-after"),
    pytest.param(ErrorAnswer(429, retry_after=0), False, "429 (Retry-After 0)",
                 id="error-with-retry-after-zero"),
    pytest.param(ErrorAnswer(503, retry_after=DATE), False, f"503 (Retry-After {DATE})",
                 id="error-with-http-date"),
    pytest.param(ErrorAnswer(500), False, "500", id="error-without-retry-after"),
    pytest.param(RawAnswer(cut=True), False, "a dropped connection", id="disconnect"),
    pytest.param(RawAnswer(status=500, body="{", cut=True), False, "a dropped connection",
                 id="disconnect-with-bytes"),
    pytest.param(RawAnswer(status=500), False, "a raw 500 body", id="raw-error"),
    pytest.param(RawAnswer(body="{}"), False, "a raw 200 body", id="raw-200"),
    pytest.param(Reply("x"), False, "a reply", id="reply"),
    pytest.param(Reply("x", omit_usage=True), False, "a reply without usage",
                 id="reply-without-usage"),
    pytest.param(Reply("x", error_after=1, error_code=429, cut_after=2), False, "a reply",
                 id="stream-parts-unsaid-without-stream"),
    pytest.param(Reply("x", error_after=1, error_code=429), True,
                 "a reply with an error chunk (code 429) after 1 chunk(s)", id="error-chunk"),
    pytest.param(Reply("x", cut_after=2), True, "a reply cut after 2 chunk(s)", id="cut"),
    pytest.param(Reply("x", error_after=0, cut_after=0, omit_usage=True), True,
                 "a reply with an error chunk (code 502) after 0 chunk(s) cut after 0 chunk(s) "
                 "without usage", id="everything-in-order"),
])
def test_describe_answer(answer: Answer, stream: bool, words: str) -> None:
    assert oracle.describe_answer(answer, stream=stream) == words


def test_describe_answer_is_not_streamed_by_default() -> None:
    assert oracle.describe_answer(Reply("x", error_after=1, cut_after=2)) == "a reply"


@pytest.mark.parametrize(("outcome", "words", "failed"), [
    pytest.param(Outcome(200), "200 with the provider's answer", False, id="success"),
    pytest.param(Outcome(200, None, "bad_gateway"),
                 "a 200 stream ending with __STREAM_ERROR__ bad_gateway", True,
                 id="stream-ending-in-error"),
    pytest.param(Outcome(429, "too_many_requests"), "429 too_many_requests", True,
                 id="error-status"),
    pytest.param(Outcome(201, "created"), "201 created", True, id="any-other-status"),
])
def test_outcome_describe_and_failed(outcome: Outcome, words: str, failed: bool) -> None:
    assert (outcome.describe(), outcome.failed) == (words, failed)


def test_outcome_defaults() -> None:
    assert Outcome(200) == Outcome(200, None, None, "C-CHAT-5", "")


# -- raw bodies (C-CHAT-5) --------------------------------------------------------------


@pytest.mark.parametrize(("body", "text"), [
    pytest.param(GOOD_RAW, "hi", id="a-completion"),
    pytest.param('{"choices": [{"message": {"content": "  hi\\n"}}], "x": 1}', "  hi\n",
                 id="content-as-sent"),
    pytest.param("not json", None, id="not-json"),
    pytest.param("[1]", None, id="not-an-object"),
    pytest.param('{"error": {"code": 500}, "choices": [{"message": {"content": "hi"}}]}',
                 None, id="an-error-in-the-body"),
    pytest.param("{}", None, id="no-choices"),
    pytest.param('{"choices": []}', None, id="empty-choices"),
    pytest.param('{"choices": {"message": {"content": "hi"}}}', None, id="choices-not-a-list"),
    pytest.param('{"choices": ["hi"]}', None, id="a-choice-not-an-object"),
    pytest.param('{"choices": [{}]}', None, id="no-message"),
    pytest.param('{"choices": [{"message": "hi"}]}', None, id="message-not-an-object"),
    pytest.param('{"choices": [{"message": {"content": " \\n "}}]}', None,
                 id="blank-content"),
    pytest.param('{"choices": [{"message": {"content": 5}}]}', None, id="content-not-text"),
])
def test_raw_completion_text(body: str, text: str | None) -> None:
    assert oracle.raw_completion_text(body) == text


# -- the outcome of a provider script (C-CHAT-3/5, C-STREAM-1..3) ---------------------


def _o(status: int, code: str | None, stream_error: str | None, clause: str,
       why: str) -> Outcome:
    return Outcome(status, code, stream_error, clause=clause, why=W + why)


E500, E429 = ErrorAnswer(500), ErrorAnswer(429, retry_after=30)

CALLS = [
    pytest.param([Reply("hi")], _o(200, None, None, "C-CHAT-4", "a reply"), id="reply-is-200"),
    pytest.param([Reply(" \n ")], _o(502, "bad_gateway", None, "C-CHAT-5", "a reply"),
                 id="blank-reply-is-502"),
    pytest.param([Reply("hi", omit_usage=True)],
                 _o(200, None, None, "C-CHAT-4", "a reply without usage"),
                 id="reply-without-usage-is-200"),
    pytest.param([Reply("hi", error_after=0, cut_after=0)],
                 _o(200, None, None, "C-CHAT-4", "a reply"),
                 id="stream-faults-mean-nothing-without-stream"),
    pytest.param([E429], _o(429, "too_many_requests", None, "C-CHAT-5",
                            "429 (Retry-After 30)"), id="429-as-429"),
    pytest.param([ErrorAnswer(503)], _o(503, "service_unavailable", None, "C-CHAT-5", "503"),
                 id="503-as-503-not-retried"),
    pytest.param([ErrorAnswer(402)], _o(402, "payment_required", None, "C-CHAT-5", "402"),
                 id="402-as-402"),
    pytest.param([ErrorAnswer(400)], _o(400, "bad_request", None, "C-CHAT-5", "400"),
                 id="400-as-400"),
    pytest.param([ErrorAnswer(401), Reply("hi")],
                 _o(502, "bad_gateway", None, "C-CHAT-5", "401, then a reply"),
                 id="other-4xx-is-502-not-retried"),
    pytest.param([E500, Reply("hi")], _o(200, None, None, "C-CHAT-3", "500, then a reply"),
                 id="5xx-then-reply-is-200"),
    pytest.param([ErrorAnswer(502), E500, Reply("hi")],
                 _o(200, None, None, "C-CHAT-3", "502, then 500, then a reply"),
                 id="two-retries-then-reply-is-200"),
    pytest.param([E500, E500, E500], _o(502, "bad_gateway", None, "C-CHAT-3",
                                        "500, then 500, then 500"), id="5xx-x3-is-502"),
    pytest.param([E500, E500, E500, Reply("hi")],
                 _o(502, "bad_gateway", None, "C-CHAT-3",
                    "500, then 500, then 500, then a reply"), id="no-third-retry"),
    pytest.param([E500], _o(502, "bad_gateway", None, "C-CHAT-3", "500"),
                 id="script-ran-out-while-retrying-is-502"),
    pytest.param([E500, ErrorAnswer(429, retry_after=5)],
                 _o(429, "too_many_requests", None, "C-CHAT-5", "500, then 429 (Retry-After 5)"),
                 id="failure-after-retry-keeps-its-clause"),
    pytest.param([E500, Reply("  ")],
                 _o(502, "bad_gateway", None, "C-CHAT-5", "500, then a reply"),
                 id="blank-after-retry-is-502"),
    pytest.param([RawAnswer(cut=True), Reply("hi")],
                 _o(200, None, None, "C-CHAT-3", "a dropped connection, then a reply"),
                 id="disconnect-is-retried"),
    pytest.param([RawAnswer(cut=True), RawAnswer(status=429, cut=True), Reply("hi")],
                 _o(200, None, None, "C-CHAT-3",
                    "a dropped connection, then a dropped connection, then a reply"),
                 id="disconnect-whatever-its-status"),
    pytest.param([RawAnswer(cut=True)] * 3,
                 _o(502, "bad_gateway", None, "C-CHAT-3", ", then ".join(
                     ["a dropped connection"] * 3)), id="disconnect-x3-is-502"),
    pytest.param([RawAnswer(status=500, body="oops"), Reply("hi")],
                 _o(200, None, None, "C-CHAT-3", "a raw 500 body, then a reply"),
                 id="raw-5xx-is-retried"),
    pytest.param([RawAnswer(status=429, body="{}")],
                 _o(429, "too_many_requests", None, "C-CHAT-5", "a raw 429 body"),
                 id="raw-429-as-429"),
    pytest.param([RawAnswer(status=503)],
                 _o(503, "service_unavailable", None, "C-CHAT-5", "a raw 503 body"),
                 id="raw-503-as-503"),
    pytest.param([RawAnswer(status=404), Reply("hi")],
                 _o(502, "bad_gateway", None, "C-CHAT-5", "a raw 404 body, then a reply"),
                 id="raw-4xx-is-502"),
    pytest.param([RawAnswer(body=GOOD_RAW)], _o(200, None, None, "C-CHAT-4", "a raw 200 body"),
                 id="raw-completion-is-200"),
    pytest.param([E500, RawAnswer(body=GOOD_RAW)],
                 _o(200, None, None, "C-CHAT-3", "500, then a raw 200 body"),
                 id="raw-completion-after-retry-is-200"),
    pytest.param([RawAnswer(body='{"error": {"code": 500}}'), Reply("hi")],
                 _o(502, "bad_gateway", None, "C-CHAT-5", "a raw 200 body, then a reply"),
                 id="raw-200-with-error-is-502-not-retried"),
    pytest.param([RawAnswer(body='{"choices": []}')],
                 _o(502, "bad_gateway", None, "C-CHAT-5", "a raw 200 body"),
                 id="raw-200-without-choices-is-502"),
    pytest.param([RawAnswer(body="")], _o(502, "bad_gateway", None, "C-CHAT-5",
                                          "a raw 200 body"), id="raw-blank-is-502"),
    pytest.param([Reply("hi", delay_ms=1000)],
                 _o(504, "gateway_timeout", None, "C-CHAT-5", "a reply" + LATE),
                 id="late-at-the-timeout-is-504"),
    pytest.param([Reply("hi", delay_ms=999)], _o(200, None, None, "C-CHAT-4", "a reply"),
                 id="just-in-time-is-200"),
    pytest.param([ErrorAnswer(500, delay_ms=5000), Reply("hi")],
                 _o(504, "gateway_timeout", None, "C-CHAT-5", "500, then a reply" + LATE),
                 id="timeout-is-not-retried"),
    pytest.param([E500, Reply("hi", delay_ms=1000)],
                 _o(504, "gateway_timeout", None, "C-CHAT-5", "500, then a reply" + LATE),
                 id="timeout-on-the-retry-is-504"),
]


@pytest.mark.parametrize(("answers", "outcome"), CALLS)
def test_expected_outcome_of_a_call(answers: list[Answer], outcome: Outcome) -> None:
    assert oracle.expected_outcome(answers, timeout_ms=1000) == outcome


def test_expected_outcome_without_answers_is_undecided() -> None:
    assert oracle.expected_outcome([], timeout_ms=1000) is None
    assert oracle.expected_outcome([], timeout_ms=1000, stream=True) is None


def test_expected_outcome_is_not_streamed_by_default() -> None:
    assert oracle.expected_outcome([Reply(LONG, error_after=1)], timeout_ms=1000) == _o(
        200, None, None, "C-CHAT-4", "a reply")


STREAMS = [
    pytest.param([Reply(LONG)], _o(200, None, None, "C-STREAM-1", "a reply"),
                 id="reply-streams-to-the-end"),
    pytest.param([Reply("  ")], _o(502, "bad_gateway", None, "C-CHAT-5", "a reply"),
                 id="blank-reply-is-502"),
    pytest.param([E429], _o(429, "too_many_requests", None, "C-STREAM-2",
                            "429 (Retry-After 30)"), id="429-before-the-stream"),
    pytest.param([ErrorAnswer(402)], _o(402, "payment_required", None, "C-STREAM-2", "402"),
                 id="402-before-the-stream"),
    pytest.param([E500, Reply(LONG)], _o(200, None, None, "C-CHAT-3", "500, then a reply"),
                 id="5xx-then-stream-is-200"),
    pytest.param([E500, Reply(LONG, error_after=1)],
                 _o(200, None, "bad_gateway", "C-STREAM-3",
                    "500, then a reply with an error chunk (code 502) after 1 chunk(s)"),
                 id="a-failing-stream-after-retry-keeps-its-clause"),
    pytest.param([RawAnswer(body=GOOD_RAW)], None, id="raw-200-on-a-stream-is-undecided"),
    pytest.param([RawAnswer(status=429)],
                 _o(429, "too_many_requests", None, "C-STREAM-2", "a raw 429 body"),
                 id="raw-429-before-the-stream"),
    pytest.param([RawAnswer(status=404)],
                 _o(502, "bad_gateway", None, "C-STREAM-2", "a raw 404 body"),
                 id="raw-4xx-before-the-stream"),
    pytest.param([Reply(LONG, delay_ms=1000)],
                 _o(504, "gateway_timeout", None, "C-STREAM-2", "a reply" + LATE),
                 id="late-headers-are-504"),
    pytest.param([Reply(LONG, first_gap_ms=1000)],
                 Outcome(504, "gateway_timeout", clause="C-STREAM-2", why=ENDED),
                 id="late-first-token-is-504"),
    pytest.param([Reply(LONG, first_gap_ms=999)], _o(200, None, None, "C-STREAM-1", "a reply"),
                 id="first-token-just-in-time"),
    pytest.param([Reply(LONG, gap_ms=1000)],
                 Outcome(504, "gateway_timeout", clause="C-STREAM-2", why=ENDED),
                 id="the-gap-is-the-first-token's-too"),
    pytest.param([Reply("hi", gap_ms=1000, first_gap_ms=0)],
                 _o(200, None, None, "C-STREAM-1", "a reply"),
                 id="one-chunk-has-no-gap"),
    pytest.param([Reply(LONG, gap_ms=1000, first_gap_ms=0)],
                 _o(200, None, "gateway_timeout", "C-STREAM-3", "a reply"),
                 id="a-gap-at-the-timeout-ends-in-gateway_timeout"),
    pytest.param([Reply("a" * 24, gap_ms=1000, first_gap_ms=0)],
                 _o(200, None, "gateway_timeout", "C-STREAM-3", "a reply"),
                 id="two-chunks-have-a-gap"),
    pytest.param([Reply(LONG, gap_ms=999, first_gap_ms=0)],
                 _o(200, None, None, "C-STREAM-1", "a reply"), id="a-gap-just-in-time"),
    pytest.param([Reply(LONG, error_after=0, error_code=429)],
                 _o(429, "too_many_requests", None, "C-STREAM-2",
                    "a reply with an error chunk (code 429) after 0 chunk(s)"),
                 id="error-chunk-first-mapped-like-a-status"),
    pytest.param([Reply(LONG, error_after=0, error_code=503)],
                 _o(503, "service_unavailable", None, "C-STREAM-2",
                    "a reply with an error chunk (code 503) after 0 chunk(s)"),
                 id="error-chunk-first-503"),
    pytest.param([Reply(LONG, error_after=0, error_code=401)],
                 _o(502, "bad_gateway", None, "C-STREAM-2",
                    "a reply with an error chunk (code 401) after 0 chunk(s)"),
                 id="error-chunk-first-4xx-is-502"),
    pytest.param([Reply(LONG, error_after=0, error_code=500), Reply("hi")], None,
                 id="retryable-error-chunk-first-is-undecided"),
    pytest.param([Reply(LONG, cut_after=0), Reply("hi")], None, id="cut-at-0-is-undecided"),
    pytest.param([Reply(LONG, error_after=1)],
                 _o(200, None, "bad_gateway", "C-STREAM-3",
                    "a reply with an error chunk (code 502) after 1 chunk(s)"),
                 id="error-chunk-midway"),
    pytest.param([Reply(LONG, error_after=2, error_code=429)],
                 _o(200, None, "too_many_requests", "C-STREAM-3",
                    "a reply with an error chunk (code 429) after 2 chunk(s)"),
                 id="error-chunk-midway-mapped"),
    pytest.param([Reply(LONG, error_after=3)],
                 _o(200, None, None, "C-STREAM-1",
                    "a reply with an error chunk (code 502) after 3 chunk(s)"),
                 id="error-chunk-after-the-last-chunk-is-never-sent"),
    pytest.param([Reply("hi", error_after=1)],
                 _o(200, None, None, "C-STREAM-1",
                    "a reply with an error chunk (code 502) after 1 chunk(s)"),
                 id="short-text-is-one-chunk"),
    pytest.param([Reply("abc", chunk_chars=1, error_after=2)],
                 _o(200, None, "bad_gateway", "C-STREAM-3",
                    "a reply with an error chunk (code 502) after 2 chunk(s)"),
                 id="one-character-chunks"),
    pytest.param([Reply("abc", chunk_chars=0, error_after=2)],
                 _o(200, None, "bad_gateway", "C-STREAM-3",
                    "a reply with an error chunk (code 502) after 2 chunk(s)"),
                 id="chunks-of-at-least-one-character"),
    pytest.param([Reply("abcd", chunk_chars=2, error_after=2)],
                 _o(200, None, None, "C-STREAM-1",
                    "a reply with an error chunk (code 502) after 2 chunk(s)"),
                 id="chunks-are-the-text-divided"),
    pytest.param([Reply(LONG, cut_after=1)],
                 _o(200, None, "bad_gateway", "C-STREAM-3", "a reply cut after 1 chunk(s)"),
                 id="cut-midway"),
    pytest.param([Reply(LONG, cut_after=3)],
                 _o(200, None, "bad_gateway", "C-STREAM-3", "a reply cut after 3 chunk(s)"),
                 id="cut-after-the-text-before-finish-is-a-cut"),
    pytest.param([Reply(LONG, cut_after=9)],
                 _o(200, None, "bad_gateway", "C-STREAM-3", "a reply cut after 9 chunk(s)"),
                 id="cut-beyond-the-text"),
    pytest.param([Reply(LONG, cut_after=1, error_after=2, error_code=429)],
                 _o(200, None, "bad_gateway", "C-STREAM-3", "a reply with an error chunk "
                    "(code 429) after 2 chunk(s) cut after 1 chunk(s)"),
                 id="the-earlier-of-cut-and-error"),
    pytest.param([Reply(LONG, cut_after=2, error_after=1, error_code=429)],
                 _o(200, None, "too_many_requests", "C-STREAM-3", "a reply with an error chunk "
                    "(code 429) after 1 chunk(s) cut after 2 chunk(s)"),
                 id="the-earlier-of-error-and-cut"),
    pytest.param([Reply(LONG, gap_ms=1000, first_gap_ms=0, error_after=2, error_code=429)],
                 _o(200, None, "gateway_timeout", "C-STREAM-3",
                    "a reply with an error chunk (code 429) after 2 chunk(s)"),
                 id="the-gap-before-a-later-error"),
    pytest.param([Reply(LONG, gap_ms=1000, first_gap_ms=0, cut_after=2)],
                 _o(200, None, "gateway_timeout", "C-STREAM-3", "a reply cut after 2 chunk(s)"),
                 id="the-gap-before-a-later-cut"),
    pytest.param([Reply(LONG, gap_ms=1000, first_gap_ms=0, cut_after=1)],
                 _o(200, None, "bad_gateway", "C-STREAM-3", "a reply cut after 1 chunk(s)"),
                 id="a-cut-comes-without-the-gap"),
]


@pytest.mark.parametrize(("answers", "outcome"), STREAMS)
def test_expected_outcome_of_a_stream(answers: list[Answer], outcome: Outcome | None) -> None:
    assert oracle.expected_outcome(answers, timeout_ms=1000, stream=True) == outcome


def test_the_gap_comes_before_an_error_chunk_after_it() -> None:
    answers = [Reply(LONG, gap_ms=1000, first_gap_ms=0, error_after=1)]
    assert oracle.expected_outcome(answers, timeout_ms=1000, stream=True) == _o(
        200, None, "gateway_timeout", "C-STREAM-3",
        "a reply with an error chunk (code 502) after 1 chunk(s)")


def test_a_cut_before_the_first_token_ignores_its_planned_first_gap() -> None:
    answers = [Reply(LONG, first_gap_ms=2000, cut_after=0), Reply("hi")]
    assert oracle.expected_outcome(answers, timeout_ms=1000, stream=True) is None
