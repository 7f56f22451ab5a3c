"""Each benign variant answers differently, as its description says (and the registry is sound).

The mirror of test_ref_mutants.py: a variant that changed nothing would prove
nothing when the suite passes on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from refkit import (
    ALICE,
    Api,
    FakeProvider,
    backend,
    completion,
    error_chunk,
    error_of,
    failure,
    split_stream,
    sse,
    sse_then,
    token_chunk,
    user_msg,
)

from harness.reference import VARIANTS, Settings
from harness.reference import provider as provider_module
from harness.reference.mutants import Strategies
from harness.reference.variants import _LAYERS, _SWAPS, apply_strategies, server_options

pytestmark = pytest.mark.anyio

CHAT = {"message": "hi", "model": "asked/model"}


@asynccontextmanager
async def variant(db: str, *names: str, provider: FakeProvider | None = None
                  ) -> AsyncIterator[Api]:
    async with backend(db, provider, variants=frozenset(names)) as api:
        yield api


async def stream_final(api: Api) -> tuple[str, dict[str, Any]]:
    response = await api.request("POST", "/api/chat/stream", json=CHAT)
    assert response.status_code == 200, response.text
    return split_stream(response.text)


# -- the registry ---------------------------------------------------------------------


def test_registry_and_strategies_agree() -> None:
    assert apply_strategies(Strategies()) == Strategies()
    for name in _SWAPS:
        assert apply_strategies(Strategies(), [name]) != Strategies(), name
    for name in VARIANTS.keys() - _SWAPS.keys():  # the middleware's (or gzip's) alone
        assert apply_strategies(Strategies(), [name]) == Strategies(), name
    assert set(_LAYERS) <= set(VARIANTS)
    with pytest.raises(ValueError, match="no-such-variant"):
        apply_strategies(Strategies(), ["no-such-variant"])


def test_every_description_cites_the_contract() -> None:
    for name, text in VARIANTS.items():
        assert re.search(r"\bC-[A-Z]+-\d|top:", text), name


def test_settings_read_and_check_variants() -> None:
    base = {"DATABASE_URL": "postgresql://x", "OPENROUTER_BASE_URL": "http://p"}
    settings = Settings.from_env({**base, "CHAT_HARNESS_VARIANT": " gzip, reversed-keys ,"})
    assert settings.variants == {"gzip", "reversed-keys"}
    with pytest.raises(ValueError, match="Hint"):
        Settings.from_env({**base, "CHAT_HARNESS_VARIANT": "typo"})


def test_server_header_variant_turns_off_uvicorns_own() -> None:
    assert server_options(["server-header"]) == {"server_header": False}
    assert server_options(["gzip"]) == {}


# -- JSON fields and keys ---------------------------------------------------------------


async def test_extra_fields_in_every_object(db: str) -> None:
    provider = FakeProvider(completion("Hi"), sse(token_chunk("A"), token_chunk(finish="stop")))
    async with variant(db, "extra-fields", provider=provider) as api:
        created = (await api.request("POST", "/api/chat/sessions", json={"id": "s1"})).json()
        assert created["x_variant"] == "extra-fields" and "meta" in created
        assert created["session"]["x_variant"] == "extra-fields"
        await api.store("s1", user_msg("u1", "q", 0))
        listed = (await api.read("s1")).json()
        assert listed["messages"][0]["x_variant"] == "extra-fields"
        chat = (await api.chat(CHAT)).json()
        assert chat["data"]["x_variant"] == chat["data"]["usage"]["x_variant"] == "extra-fields"
        error = error_of(await api.read("nope"), 404, "not_found")
        assert error["x_variant"] == "extra-fields"
        _, final = await stream_final(api)
        assert final["x_variant"] == final["__FINAL_METADATA__"]["x_variant"] == "extra-fields"
        health = (await api.request("GET", "/api/health", user=None)).json()
        assert health["status"] == "ok" and set(health) == {"status", "x_variant", "meta"}


async def test_owner_fields(db: str) -> None:
    async with variant(db, "owner-fields") as api:
        stored = (await api.store("s1", user_msg("u1", "q", 0))).json()["messages"][0]
        assert stored["session_id"] == "s1" and stored["created_at"] == stored["timestamp"]
        session = (await api.session("s1")).json()["session"]
        assert session["user_id"] == str(ALICE)


async def test_both_model_fields(db: str) -> None:
    async with variant(db, "both-model-fields") as api:
        await api.store("s1", user_msg("u1", "q", 0, originalModel="m/u"))
        (item,) = await api.read_ok("s1")
        assert item["originalModel"] == item["model"] == "m/u"


async def test_up_to_date_always(db: str) -> None:
    async with variant(db, "up-to-date-always") as api:
        await api.store("s1", user_msg("u1", "q", 0))
        assert (await api.read("s1")).json()["up_to_date"] is False


async def test_reversed_keys(db: str) -> None:
    async with variant(db, "reversed-keys") as api:
        chat = (await api.chat(CHAT)).json()
        assert list(chat) == ["timestamp", "data"]
        keys = list(chat["data"])
        assert keys[0] == "model" and keys[-1] == "response"
        error = error_of(await api.read("nope"), 404, "not_found")
        assert list(error) == ["timestamp", "code", "error"]


# -- error texts and fields ----------------------------------------------------------------


async def test_other_error_texts(db: str) -> None:
    provider = FakeProvider(sse_then([token_chunk("A"), error_chunk(502)], None))
    async with variant(db, "other-error-texts", provider=provider) as api:
        body = error_of(await api.read("nope"), 404, "not_found")
        assert body["error"] == "Sorry, that did not work (not found)."
        bad = error_of(await api.chat({"message": " ", "model": "m"}), 400, "bad_request")
        assert bad["error"].startswith("The request was refused") and "message" in bad["error"]
        _, final = await stream_final(api)
        assert final["__STREAM_ERROR__"]["error"] == "Sorry, that did not work (bad gateway)."


async def test_other_details_no_details_and_suggestions(db: str) -> None:
    bad_token = {"Authorization": "Bearer x.y.z"}
    async with variant(db, "other-details", "suggestions-everywhere") as api:
        body = error_of(await api.read("nope", headers=bad_token), 401, "token_invalid")
        assert body["details"] == "See https://docs.example.invalid/errors#token_invalid"
        assert body["suggestions"] == ["Check the request.", "Try again later."]
    async with variant(db, "no-details") as api:
        body = error_of(await api.read("nope", headers=bad_token), 401, "token_invalid")
        assert "details" not in body


# -- headers ------------------------------------------------------------------------


async def test_headers(db: str) -> None:
    names = ("extra-headers", "server-header", "connection-close", "json-charset",
             "title-case-headers")
    async with variant(db, *names) as api:
        response = await api.read("nope")
        headers = response.headers
        assert headers["x-powered-by"] == "benign-variant/1.0"
        assert headers.get_list("x-served-by") == ["variant-a", "variant-b"]
        assert headers["server"] == "nginx/1.27.0" and headers["connection"] == "close"
        assert headers["content-type"] == "application/json; charset=utf-8"
        raw = [name for name, _ in headers.raw]
        assert b"X-Request-Id" in raw and b"x-request-id" not in raw


async def test_request_ids(db: str) -> None:
    async with variant(db, "ulid-request-id") as api:
        response = await api.request("GET", "/api/health", user=None)
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", response.headers["x-request-id"])
        echoed = await api.request("GET", "/api/health", user=None,
                                   headers={"x-request-id": "mine"})
        assert echoed.headers["x-request-id"] == "mine"
    async with variant(db, "long-request-id") as api:
        response = await api.request("GET", "/api/health", user=None)
        assert re.fullmatch(r"req_[0-9a-f]{64}", response.headers["x-request-id"])


# -- layout of the bytes ------------------------------------------------------------------


async def test_pretty_json(db: str) -> None:
    async with variant(db, "pretty-json") as api:
        response = await api.read("nope")
        assert response.text.startswith('{\n  "error"') and response.text.endswith("}\n")
        assert response.headers["content-length"] == str(len(response.content))
        _, final = await stream_final(api)  # the final line stays one line
        assert final["__FINAL_METADATA__"]["response"] == "Hello!"


async def test_escaped_json(db: str) -> None:
    provider = FakeProvider(sse(token_chunk("é/"), token_chunk(finish="stop")))
    async with variant(db, "escaped-json", provider=provider) as api:
        await api.store("s1", user_msg("u1", "café/bar", 0))
        response = await api.read("s1")
        assert b"caf\\u00e9\\/bar" in response.content and "é".encode() not in response.content
        assert response.json()["messages"][0]["content"] == "café/bar"
        raw = (await api.request("POST", "/api/chat/stream", json=CHAT)).content
        text, _, last = raw.rpartition(b"\n")
        assert text == "é/".encode() and b'"response":"\\u00e9\\/"' in last


async def test_gzip_when_asked(db: str) -> None:
    async with variant(db, "gzip") as api:
        asked = await api.read("nope", headers={"Accept-Encoding": "gzip"})
        assert asked.headers["content-encoding"] == "gzip"
        assert error_of(asked, 404, "not_found")
        plain = await api.read("nope", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        streamed = await api.request("POST", "/api/chat/stream", json=CHAT,
                                     headers={"Accept-Encoding": "gzip"})
        assert streamed.headers["content-encoding"] == "gzip"
        assert split_stream(streamed.text)[0] == "Hello!"


# -- chat answers --------------------------------------------------------------------------


async def test_offset_timestamps(db: str) -> None:
    async with variant(db, "offset-timestamps", "offset-session-times") as api:
        chat = (await api.chat(CHAT)).json()
        assert chat["timestamp"].endswith("+00:00")
        assert chat["data"]["timestamp"].endswith("+00:00")
        assert error_of(await api.read("nope"), 404, "not_found")["timestamp"].endswith("+00:00")
        _, final = await stream_final(api)
        assert final["__FINAL_METADATA__"]["timestamp"].endswith("+00:00")
        await api.store("s1", user_msg("u1", "q", 0))
        session = (await api.session("s1")).json()["session"]
        assert session["created_at"].endswith("+00:00")
        assert session["last_message_timestamp"].endswith("+00:00")
        # C-MSG-4 fixes the message items' form: untouched
        assert (await api.read_ok("s1"))[0]["timestamp"].endswith("Z")


async def test_text_content_type_and_coarse_elapsed(db: str) -> None:
    markdown = "**bold** and `code`"
    provider = FakeProvider(completion(markdown),
                            sse(token_chunk(markdown), token_chunk(finish="stop")))
    async with variant(db, "text-content-type", "coarse-elapsed-ms", provider=provider) as api:
        data = (await api.chat(CHAT)).json()["data"]
        assert data["contentType"] == "text" and data["elapsed_ms"] % 1000 == 0
        _, final = await stream_final(api)
        meta = final["__FINAL_METADATA__"]
        assert meta["contentType"] == "text" and meta["elapsed_ms"] % 1000 == 0
    async with backend(db, FakeProvider(completion(markdown))) as api:  # the reference
        assert (await api.chat(CHAT)).json()["data"]["contentType"] == "markdown"


# -- the provider calls ---------------------------------------------------------------------


async def test_slow_provider_and_retry_backoff_wait(db: str, monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    waits: list[float] = []

    async def recorded(seconds: float) -> None:
        if seconds > 0:
            waits.append(round(seconds, 3))

    monkeypatch.setattr(provider_module, "_sleep", recorded)
    async with variant(db, "slow-provider") as api:
        assert (await api.chat(CHAT)).status_code == 200
        assert waits == [0.2, 0.2]  # before the call, after its answer
        waits.clear()
        assert (await api.request("POST", "/api/chat/stream", json=CHAT)).status_code == 200
        assert waits == [0.2, 0.2]
    waits.clear()
    provider = FakeProvider(failure(500), failure(502))
    async with variant(db, "retry-backoff", provider=provider) as api:
        assert (await api.chat(CHAT)).status_code == 200
        assert waits == [0.1, 0.2] and len(provider.requests) == 3


async def test_provider_extras(db: str) -> None:
    provider = FakeProvider(completion(), sse(token_chunk("A"), token_chunk(finish="stop")))
    async with variant(db, "provider-extras", provider=provider) as api:
        assert (await api.chat(CHAT)).status_code == 200
        assert (await api.request("POST", "/api/chat/stream", json=CHAT)).status_code == 200
    plain, streamed = provider.requests
    assert json.loads(plain.content)["stream"] is False
    assert json.loads(streamed.content)["stream"] is True
    assert json.loads(plain.content)["usage"] == {"include": True}
    assert plain.headers["authorization"] == "Bearer sk-test-key"
    assert plain.headers["user-agent"] == "benign-variant/1.0"
    assert "http-referer" not in plain.headers and "x-title" not in plain.headers
    assert streamed.headers["accept"] == "text/event-stream"
