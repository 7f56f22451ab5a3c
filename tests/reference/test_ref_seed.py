"""The seed bug report's flow, end to end, as its client played it.

1. chat → 429; 2. store the failed user message; 3. resend the same text under
a new id with another model → 200; 4. store the user message that request_id
names plus the answer paired with it. The new message must be the one synced.
"""

from __future__ import annotations

from typing import Any

import pytest
from refkit import (
    FAILED_ID,
    QUESTION,
    RESENT_ID,
    Api,
    assistant_msg,
    backend,
    completion,
    failure,
    seed_history,
)

pytestmark = pytest.mark.anyio

SESSION = "conv_1755009248860_gy5e5xlyt"


async def play_seed(api: Api) -> tuple[str, list[dict[str, Any]]]:
    history = seed_history()
    earlier, failed = history[:3] + history[4:5], history[3]
    assert (await api.store(SESSION, *earlier)).status_code == 201
    first_try = [m for m in history if m["id"] != RESENT_ID]
    first_try[3] = {k: v for k, v in failed.items() if k not in ("error", "error_message")}

    api.provider.script(failure(429, "rate-limited upstream"), completion("Amazon Bedrock is…"))
    response = await api.chat({"message": QUESTION, "messages": first_try, "model": "free"})
    assert response.status_code == 429
    assert (await api.store(SESSION, failed, single=True)).status_code == 201

    response = await api.chat({"message": QUESTION, "messages": history, "model": "paid"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    request_id = data["request_id"]
    # The client stores the message it believes was answered, and the answer.
    sent = next(m for m in history if m["id"] == request_id)
    answer = assistant_msg("msg_answer", data["response"], 171.783, request_id, model=data["model"])
    stored = await api.store(SESSION, {**sent, "error": False}, answer)
    assert stored.status_code == 201, stored.text
    return request_id, await api.read_ok(SESSION)


async def test_seed_flow_syncs_the_new_message(api: Api) -> None:
    request_id, items = await play_seed(api)
    assert request_id == RESENT_ID
    by_id = {m["id"]: m for m in items}
    assert by_id[FAILED_ID]["error"] is True
    assert by_id[RESENT_ID]["error"] is False
    assert by_id["msg_answer"]["user_message_id"] == RESENT_ID
    assert [m["id"] for m in items][-3:] == [FAILED_ID, RESENT_ID, "msg_answer"]
    assert [m["role"] for m in items] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "user",
        "assistant",
    ]


async def test_seed_flow_under_the_seed_bug(db: str) -> None:
    async with backend(db, mutants={"request-id-first-match"}) as api:
        request_id, items = await play_seed(api)
    assert request_id == FAILED_ID
    # The resent message was never synced: exactly the seed's symptom.
    assert RESENT_ID not in {m["id"] for m in items}
