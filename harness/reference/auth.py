"""Bearer-JWT identity (C-AUTH-1): who is calling, or which 401 to answer."""

from __future__ import annotations

import re
import uuid
import warnings

import jwt
from fastapi import Request

from harness.reference.errors import ApiError

# The canonical 8-4-4-4-12 form (any case). uuid.UUID() alone would also take
# "{…}", "urn:uuid:…" and 32 bare hex digits, which no client sends as `sub`.
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def authenticate(request: Request) -> uuid.UUID:
    """The caller's user id from `Authorization: Bearer <JWT>`; raises a 401 ApiError."""
    secret: str = request.app.state.settings.jwt_secret
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            "auth_required",
            "Authentication required",
            details="Send 'Authorization: Bearer <JWT>'.",
        )
    return user_from_token(token, secret)


def user_from_token(token: str, secret: str) -> uuid.UUID:
    try:
        with warnings.catch_warnings():
            # A short test secret is the harness's choice, not an error here.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={"require": ["sub"], "verify_exp": True},
            )
    except jwt.ExpiredSignatureError:
        raise ApiError("token_expired", "Token expired") from None
    except jwt.InvalidTokenError as exc:
        # Bad signature, another algorithm, malformed token, missing `sub`, …
        raise ApiError("token_invalid", "Invalid token", details=type(exc).__name__) from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _UUID.match(sub):
        raise ApiError("token_invalid", "Invalid token", details="claim 'sub' is not a UUID")
    return uuid.UUID(sub)
