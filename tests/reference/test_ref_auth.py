"""C-AUTH-1: bearer JWT identity; C-RUN-2: health needs none."""

from __future__ import annotations

import time

import jwt
import pytest
from refkit import ALICE, SECRET, Api, error_of, token

pytestmark = pytest.mark.anyio

ROUTES = [
    ("POST", "/api/chat"),
    ("POST", "/api/chat/stream"),
    ("GET", "/api/chat/messages?session_id=s1"),
    ("POST", "/api/chat/messages"),
    ("GET", "/api/chat/sessions"),
    ("POST", "/api/chat/sessions"),
    ("DELETE", "/api/chat/sessions?id=s1"),
    ("GET", "/api/chat/session?id=s1"),
    ("POST", "/api/chat/session"),
]


async def test_health_needs_no_auth(api: Api) -> None:
    response = await api.request("GET", "/api/health", user=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_chat_route_needs_a_token(api: Api, method: str, path: str) -> None:
    # Checked before the body is even read: an empty body still gets 401.
    response = await api.request(method, path, user=None)
    error_of(response, 401, "auth_required")


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", f"Token {token()}", token()],
)
async def test_missing_or_other_scheme_is_auth_required(api: Api, header: str) -> None:
    response = await api.request(
        "GET", "/api/chat/sessions", user=None, headers={"Authorization": header}
    )
    error_of(response, 401, "auth_required")


def _none_alg_token() -> str:
    return jwt.encode({"sub": str(ALICE)}, key=None, algorithm="none")


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(token(secret="another-secret-0123456789abcdef0123456789"), id="signature"),
        pytest.param(token(algorithm="HS512"), id="other-algorithm"),
        pytest.param(_none_alg_token(), id="alg-none"),
        pytest.param("not.a.jwt", id="malformed"),
        pytest.param("abc", id="garbage"),
        pytest.param(token("not-a-uuid"), id="sub-not-uuid"),
        pytest.param(token("11111111111141118111111111111111"), id="sub-bare-hex"),
        pytest.param(jwt.encode({"name": "x"}, SECRET, algorithm="HS256"), id="no-sub"),
        pytest.param(jwt.encode({"sub": 5}, SECRET, algorithm="HS256"), id="sub-int"),
        pytest.param(token(exp="tomorrow"), id="exp-not-number"),
    ],
)
async def test_bad_tokens_are_token_invalid(api: Api, bad_token: str) -> None:
    response = await api.request(
        "GET", "/api/chat/sessions", user=None, headers={"Authorization": f"Bearer {bad_token}"}
    )
    error_of(response, 401, "token_invalid")


async def test_expired_token_is_token_expired(api: Api) -> None:
    expired = token(exp=int(time.time()) - 3600)
    response = await api.request(
        "GET", "/api/chat/sessions", user=None, headers={"Authorization": f"Bearer {expired}"}
    )
    error_of(response, 401, "token_expired")


async def test_expired_token_with_bad_signature_is_token_invalid(api: Api) -> None:
    forged = token(secret="another-secret-0123456789abcdef0123456789", exp=1)
    response = await api.request(
        "GET", "/api/chat/sessions", user=None, headers={"Authorization": f"Bearer {forged}"}
    )
    error_of(response, 401, "token_invalid")


async def test_valid_tokens_are_accepted(api: Api) -> None:
    for good in [
        token(),
        token(exp=int(time.time()) + 3600),
        token(str(ALICE).upper()),
    ]:
        response = await api.request(
            "GET", "/api/chat/sessions", user=None, headers={"Authorization": f"bearer {good}"}
        )
        assert response.status_code == 200, response.text


async def test_uppercase_sub_is_the_same_user(api: Api) -> None:
    assert (
        await api.store(
            "s1", {"id": "m1", "role": "user", "content": "hi", "timestamp": "2025-01-01T00:00:00Z"}
        )
    ).status_code == 201
    upper = token(str(ALICE).upper())
    response = await api.read("s1", user=None, headers={"Authorization": f"Bearer {upper}"})
    assert response.status_code == 200
    assert response.json()["count"] == 1
