"""The comparison flow in plain pytest + httpx: the floor of the Tavern comparison.

Run by bench/vs_tavern.py with BENCH_BACKEND, BENCH_TOKEN and BENCH_COPIES.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=os.environ.get("BENCH_BACKEND", "http://127.0.0.1:8000"),
                      trust_env=False) as c:
        yield c


@pytest.mark.parametrize("n", [f"{i:02d}" for i in range(int(os.environ.get("BENCH_COPIES",
                                                                            "1")))])
def test_flow(client: httpx.Client, n: str) -> None:
    auth = {"authorization": f"Bearer {os.environ.get('BENCH_TOKEN', '')}"}
    assert client.get("/api/health").status_code == 200
    stored = client.post("/api/chat/messages", headers=auth, json={
        "sessionId": f"conv_bench_{n}",
        "message": {"id": f"msg_bench_{n}", "role": "user", "content": f"hello {n}",
                    "timestamp": "2025-08-12T14:00:00.000Z"}})
    assert stored.status_code == 201
    read = client.get("/api/chat/messages", headers=auth, params={"session_id": f"conv_bench_{n}"})
    assert read.status_code == 200
    body = read.json()
    assert body["count"] == 1
    assert body["messages"][0]["id"] == f"msg_bench_{n}"
    assert body["messages"][0]["content"] == f"hello {n}"
