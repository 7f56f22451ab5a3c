"""POST and GET /api/chat/messages (C-MSG-1..10, C-AUTH-2, C-AUTH-3)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from refkit import BOB, Api, assistant_msg, error_of, user_msg

pytestmark = pytest.mark.anyio


async def stored(api: Api, session: str, *messages: dict[str, Any], **kwargs: Any) -> Any:
    response = await api.store(session, *messages, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


# --- round trip (C-MSG-4, C-MSG-8, C-MSG-9, C-MSG-10) ---------------------------


async def test_full_round_trip(api: Api) -> None:
    user = user_msg("u1", "hello", 0, originalModel="google/free", input_tokens=278)
    answer = assistant_msg(
        "a1",
        "**hi**",
        1,
        "u1",
        model="google/paid",
        input_tokens=278,
        output_tokens=232,
        total_tokens=510,
        contentType="markdown",
        elapsed_ms=3000,
        completion_id="gen-1",
        unknown_field="ignored",
    )
    body = await stored(api, "s1", user, answer)
    assert body["success"] is True and body["count"] == 2
    expected = [
        {
            "id": "u1",
            "role": "user",
            "content": "hello",
            "originalModel": "google/free",
            "input_tokens": 278,
            "output_tokens": 0,
            "total_tokens": 0,
            "user_message_id": None,
            "contentType": "text",
            "elapsed_ms": 0,
            "completion_id": None,
            "timestamp": "2025-08-12T14:34:00.000Z",
            "error": False,
            "error_message": None,
        },
        {
            "id": "a1",
            "role": "assistant",
            "content": "**hi**",
            "model": "google/paid",
            "input_tokens": 278,
            "output_tokens": 232,
            "total_tokens": 510,
            "user_message_id": "u1",
            "contentType": "markdown",
            "elapsed_ms": 3000,
            "completion_id": "gen-1",
            "timestamp": "2025-08-12T14:34:01.000Z",
            "error": False,
            "error_message": None,
        },
    ]
    assert body["messages"] == expected
    assert await api.read_ok("s1") == expected
    assert api.rows("SELECT model FROM chat_messages WHERE id = 'u1'") == [{"model": "google/free"}]


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("2025-08-12T14:35:45.281Z", "2025-08-12T14:35:45.281Z"),
        ("2025-08-12T14:35:45.281", "2025-08-12T14:35:45.281Z"),
        ("2025-08-12T16:35:45.281+02:00", "2025-08-12T14:35:45.281Z"),
        ("2025-08-12T14:35:45.281999Z", "2025-08-12T14:35:45.281Z"),
        ("2025-08-12T14:35:45Z", "2025-08-12T14:35:45.000Z"),
        ("2025-08-12", "2025-08-12T00:00:00.000Z"),
    ],
)
async def test_timestamp_is_the_instant_sent(api: Api, sent: str, read: str) -> None:
    await stored(api, "s1", {"id": "u1", "role": "user", "content": "x", "timestamp": sent})
    assert (await api.read_ok("s1"))[0]["timestamp"] == read


async def test_null_optionals_read_back_as_defaults(api: Api) -> None:
    message = user_msg(
        "u1",
        "x",
        0,
        input_tokens=None,
        contentType=None,
        error=None,
        originalModel=None,
        completion_id=None,
    )
    item = (await stored(api, "s1", message))["messages"][0]
    assert item["input_tokens"] == 0 and item["contentType"] == "text" and item["error"] is False


# --- idempotency (C-MSG-2, C-MSG-5) ---------------------------------------------


async def test_replay_updates_in_place(api: Api) -> None:
    await stored(api, "s1", user_msg("u1", "first", 0), user_msg("u2", "second", 0))
    await stored(api, "s1", user_msg("u1", "edited", 0), single=True)
    await stored(api, "s1", user_msg("u1", "edited", 0), single=True)
    items = await api.read_ok("s1")
    # Same timestamp: order of FIRST storage, not of the last update.
    assert [(m["id"], m["content"]) for m in items] == [("u1", "edited"), ("u2", "second")]
    assert len(api.rows("SELECT id FROM chat_messages")) == 2


async def test_failed_then_successful_retry_is_updated(api: Api) -> None:
    failed = user_msg("u1", "q", 0, error=True, input_tokens=0, error_message="rate-limited")
    await stored(api, "s1", failed, single=True)
    item = (await api.read_ok("s1"))[0]
    assert item["error"] is True and item["error_message"] == "rate-limited"
    retried = user_msg("u1", "q", 0, error=False, input_tokens=762)
    answer = assistant_msg("a1", "answer", 1, "u1", total_tokens=9)
    await stored(api, "s1", retried, answer)
    items = await api.read_ok("s1")
    assert items[0]["error"] is False and items[0]["error_message"] is None
    assert items[0]["input_tokens"] == 762
    assert items[1]["user_message_id"] == "u1"


async def test_error_flag_and_error_message_agree(api: Api) -> None:
    await stored(
        api,
        "s1",
        user_msg("u1", "q", 0, error=True),
        user_msg("u2", "q", 1, error=False, error_message="stale"),
        user_msg("u3", "q", 2, error_message="no flag"),
    )
    items = await api.read_ok("s1")
    assert [(m["error"], m["error_message"]) for m in items] == [
        (True, "Message failed"),
        (False, None),
        (False, None),
    ]


async def test_seed_step_4_batch_after_failure_is_accepted(api: Api) -> None:
    failed = user_msg("msg_f", "what is amazon bedrock?", 105, error=True, error_message="429")
    await stored(api, "conv", failed, single=True)
    answer = assistant_msg("msg_a", "Amazon Bedrock is", 171, "msg_f", model="google/lite")
    body = await stored(api, "conv", failed, answer)
    assert body["count"] == 2
    assert len(await api.read_ok("conv")) == 2


async def test_concurrent_first_posts_of_one_message(api: Api) -> None:
    message = user_msg("u1", "hello", 0)
    responses = await asyncio.gather(*(api.store("new-session", message) for _ in range(12)))
    assert [r.status_code for r in responses] == [201] * 12
    assert api.rows("SELECT count(*) AS n FROM chat_messages") == [{"n": 1}]
    assert api.rows("SELECT count(*) AS n FROM chat_sessions") == [{"n": 1}]


async def test_concurrent_replays_in_any_order_leave_the_same_rows(api: Api) -> None:
    batches = [
        [user_msg(f"u{i}", f"q{i}", i), assistant_msg(f"a{i}", f"r{i}", i + 0.5, f"u{i}")]
        for i in range(5)
    ]
    posts = [b for b in batches for _ in range(3)]
    random.Random(7).shuffle(posts)
    responses = await asyncio.gather(*(api.store("s1", *batch) for batch in posts))
    assert {r.status_code for r in responses} == {201}
    items = await api.read_ok("s1")
    assert [m["id"] for m in items] == [x for i in range(5) for x in (f"u{i}", f"a{i}")]
    session = (await api.session("s1")).json()["session"]
    assert session["message_count"] == 10


async def test_concurrent_claims_of_one_id_by_two_sessions(api: Api) -> None:
    # One of them wins, the other is a clean 409: never a 500, never a moved row.
    results = await asyncio.gather(
        api.store("s1", user_msg("x", "a", 0), user_msg("y", "b", 1)),
        api.store("s2", user_msg("y", "b", 1), user_msg("x", "a", 0)),
    )
    assert sorted(r.status_code for r in results) == [201, 409]
    rows = api.rows("SELECT DISTINCT session_id FROM chat_messages")
    assert len(rows) == 1


# --- atomicity and ownership (C-MSG-3, C-AUTH-2, C-AUTH-3) ----------------------


async def test_foreign_message_id_is_409_and_nothing_is_written(api: Api) -> None:
    await stored(api, "bobs", user_msg("taken", "bob's", 0), user=BOB)
    await stored(api, "mine", user_msg("m0", "before", 0))
    response = await api.store("mine", user_msg("m1", "new", 1), user_msg("taken", "mine!", 2))
    error_of(response, 409, "conflict")
    assert [m["id"] for m in await api.read_ok("mine")] == ["m0"]
    assert (await api.read_ok("bobs", user=BOB))[0]["content"] == "bob's"


async def test_id_of_my_other_session_is_409(api: Api) -> None:
    await stored(api, "s1", user_msg("m1", "here", 0))
    error_of(await api.store("s2", user_msg("m1", "there", 0)), 409, "conflict")
    assert api.rows("SELECT session_id, content FROM chat_messages") == [
        {"session_id": "s1", "content": "here"}
    ]
    assert api.rows("SELECT id FROM chat_sessions") == [{"id": "s1"}]


async def test_foreign_session_is_404_everywhere(api: Api) -> None:
    await stored(api, "bobs", user_msg("b1", "secret", 0), user=BOB, title="Bob's")
    error_of(await api.read("bobs"), 404, "not_found")
    error_of(
        await api.store("bobs", user_msg("a1", "intrusion", 1), title="Mine"), 404, "not_found"
    )
    assert [m["id"] for m in await api.read_ok("bobs", user=BOB)] == ["b1"]
    assert (await api.session("bobs", user=BOB)).json()["session"]["title"] == "Bob's"
    error_of(await api.read("missing"), 404, "not_found")


# --- pairing (C-MSG-10) ---------------------------------------------------------


async def test_unpaired_assistant_is_422_and_batch_refused(api: Api) -> None:
    await stored(api, "s1", assistant_msg("a0", "hello", 0))  # no user_message_id: fine
    response = await api.store("s1", user_msg("u1", "q", 1), assistant_msg("a1", "r", 2, "nope"))
    assert "nope" in error_of(response, 422, "unprocessable_entity")["error"]
    assert [m["id"] for m in await api.read_ok("s1")] == ["a0"]


async def test_pairing_with_stored_or_same_batch_user(api: Api) -> None:
    await stored(api, "s1", user_msg("u1", "q", 0))
    await stored(api, "s1", assistant_msg("a1", "r", 1, "u1"))
    await stored(api, "s1", assistant_msg("a2", "r2", 3, "u2"), user_msg("u2", "q2", 2))
    assert len(await api.read_ok("s1")) == 4


async def test_pairing_needs_a_user_message_of_the_same_session(api: Api) -> None:
    await stored(api, "s1", user_msg("u1", "q", 0), assistant_msg("a1", "r", 1, "u1"))
    await stored(api, "s2", user_msg("v1", "q", 0))
    for session, ref in [("s1", "a1"), ("s2", "u1"), ("new", "u1")]:
        error_of(
            await api.store(session, assistant_msg("x", "r", 5, ref)), 422, "unprocessable_entity"
        )
    assert api.rows("SELECT id FROM chat_sessions ORDER BY id") == [{"id": "s1"}, {"id": "s2"}]


# --- order and since_ts (C-MSG-9) -----------------------------------------------


async def test_order_is_timestamp_then_first_storage(api: Api) -> None:
    await stored(api, "s1", user_msg("late", "3", 30))
    await stored(api, "s1", user_msg("tie-b", "2b", 20), user_msg("tie-a", "2a", 20))
    await stored(api, "s1", user_msg("early", "1", 10))
    await stored(api, "s1", user_msg("tie-b", "2b again", 20))  # an update keeps its place
    ids = [m["id"] for m in await api.read_ok("s1")]
    assert ids == ["early", "tie-b", "tie-a", "late"]
    assert [m["id"] for m in await api.read_ok("s1")] == ids


async def test_since_ts(api: Api) -> None:
    await stored(api, "s1", user_msg("u1", "a", 10), user_msg("u2", "b", 20))
    newer = (await api.read("s1", params={"since_ts": "2025-08-12T14:34:10.000Z"})).json()
    assert [m["id"] for m in newer["messages"]] == ["u2"] and newer["up_to_date"] is False
    assert newer["count"] == 1
    none = (await api.read("s1", params={"since_ts": "2025-08-12T14:34:20.000Z"})).json()
    assert none["messages"] == [] and none["up_to_date"] is True
    plain = (await api.read("s1")).json()
    assert "up_to_date" not in plain


# --- titles and stats (C-MSG-6, C-MSG-7) ----------------------------------------


async def session_of(api: Api, session_id: str) -> dict[str, Any]:
    response = await api.session(session_id)
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()["session"]
    return session


@pytest.mark.parametrize(
    ("batch", "title", "expected"),
    [
        ([user_msg("u1", "hi there", 0)], "Chosen", "Chosen"),
        ([user_msg("u1", "hi there", 0)], "   ", "hi there"),
        ([user_msg("u2", "second", 5), user_msg("u1", "first", 1)], None, "first"),
        ([user_msg("u1", "x" * 51, 0)], None, "x" * 50 + "..."),
        ([user_msg("u1", "y" * 50, 0)], None, "y" * 50),
        ([user_msg("u1", "failed one", 0, error=True)], None, "failed one"),
        ([assistant_msg("a1", "only me", 0)], None, "New Chat"),
        ([user_msg("u1", "t", 0)], "z" * 255, "z" * 255),
    ],
)
async def test_title_of_a_new_session(
    api: Api, batch: list[dict[str, Any]], title: str | None, expected: str
) -> None:
    await stored(api, "s1", *batch, title=title)
    assert (await session_of(api, "s1"))["title"] == expected


async def test_existing_session_is_renamed_only_by_a_new_title(api: Api) -> None:
    await stored(api, "s1", user_msg("u1", "first", 0))
    await stored(api, "s1", user_msg("u2", "second", 1))
    assert (await session_of(api, "s1"))["title"] == "first"
    await stored(api, "s1", user_msg("u3", "third", 2), title="Renamed")
    assert (await session_of(api, "s1"))["title"] == "Renamed"


async def test_stats_count_only_messages_without_error(api: Api) -> None:
    await stored(
        api,
        "s1",
        user_msg("u1", "q1", 0, originalModel="user/model"),
        assistant_msg("a1", "r1", 1, "u1", model="answer/model", total_tokens=100),
        user_msg("u2", "q2", 2, error=True, originalModel="failed/model"),
        assistant_msg("a2", "r2", 3, "u2", model="failed/answer", total_tokens=1000, error=True),
        user_msg("u3", "p" * 150, 4, originalModel="latest/model"),
    )
    session = await session_of(api, "s1")
    assert session["message_count"] == 3
    assert session["total_tokens"] == 100
    assert session["last_message_preview"] == "p" * 100
    assert session["last_model"] == "latest/model"
    assert session["last_message_timestamp"] == "2025-08-12T14:34:04.000Z"


async def test_latest_is_by_timestamp_not_storage(api: Api) -> None:
    await stored(api, "s1", assistant_msg("a2", "newest", 10, model="m-new"))
    await stored(api, "s1", user_msg("u1", "older", 5, originalModel="m-old"))
    session = await session_of(api, "s1")
    assert session["last_message_preview"] == "newest"
    assert session["last_model"] == "m-new"
    assert session["last_message_timestamp"] == "2025-08-12T14:34:10.000Z"


async def test_last_model_skips_messages_without_model(api: Api) -> None:
    await stored(api, "s1", assistant_msg("a1", "r", 1, model="m1"), user_msg("u2", "q", 2))
    assert (await session_of(api, "s1"))["last_model"] == "m1"


async def test_stats_follow_a_successful_retry(api: Api) -> None:
    await stored(api, "s1", user_msg("u1", "q", 0, error=True))
    assert (await session_of(api, "s1"))["message_count"] == 0
    await stored(
        api, "s1", user_msg("u1", "q", 0), assistant_msg("a1", "r", 1, "u1", total_tokens=7)
    )
    session = await session_of(api, "s1")
    assert (session["message_count"], session["total_tokens"]) == (2, 7)
