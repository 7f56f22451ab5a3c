"""The error envelope of C-ERR-1, the codes of C-ERR-2, and the handlers that emit them.

Every error leaves the app as `{"error", "code", "timestamp", "details"?,
"retryAfter"?, "suggestions"?}`. Handlers raise `ApiError`; everything else
that can escape (routing 404/405, FastAPI validation, database outages, bugs)
is converted here, so no handler needs its own try/except for the envelope.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.reference.timestamps import now_iso

log = logging.getLogger("harness.reference")

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "auth_required": 401,
    "token_invalid": 401,
    "token_expired": 401,
    "payment_required": 402,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "unprocessable_entity": 422,
    "too_many_requests": 429,
    "internal_server_error": 500,
    "bad_gateway": 502,
    "service_unavailable": 503,
    "gateway_timeout": 504,
}

_CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "auth_required",
    402: "payment_required",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """An error answer. `code` is a C-ERR-2 code; the HTTP status follows from it."""

    def __init__(
        self,
        code: str,
        error: str,
        *,
        details: str | None = None,
        retry_after: int | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(
                f"unknown error code {code!r}; expected one of {sorted(STATUS_BY_CODE)}"
            )
        super().__init__(f"{code}: {error}")
        self.code = code
        self.error = error
        self.details = details
        self.retry_after = retry_after
        self.suggestions = suggestions

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "code": self.code, "timestamp": now_iso()}
        if self.details is not None:
            body["details"] = self.details
        if self.retry_after is not None:
            body["retryAfter"] = self.retry_after
        if self.suggestions is not None:
            body["suggestions"] = self.suggestions
        return body

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        all_headers = dict(headers or {})
        if self.retry_after is not None:
            all_headers["Retry-After"] = str(self.retry_after)
        return ApiJSONResponse(self.body(), status_code=self.status, headers=all_headers)


def quoted(value: str, limit: int = 80) -> str:
    """`repr` of a client-sent value for an error message, cut to a readable length."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


class ApiJSONResponse(JSONResponse):
    """JSON that never fails to encode.

    Client input with lone surrogates is refused, but a provider's answer may
    still carry one (`"\\ud800"` is valid JSON); plain UTF-8 cannot encode it,
    so such bodies fall back to ASCII escapes instead of turning into a 500.
    """

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


INTERNAL_ERROR = ApiError(
    "internal_server_error", "An internal error occurred.", details="An unexpected error occurred."
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def internal_error(exc: Exception) -> ApiError:
    """The 500 of an unexpected exception: no SQL, no stack (C-ERR-3)."""
    return INTERNAL_ERROR


def install_error_handlers(
    app: FastAPI,
    http_errors: type[Exception] = StarletteHTTPException,
    request_ids: Callable[[], str] = new_request_id,
    internal: Callable[[Exception], ApiError] = internal_error,
) -> None:
    """The envelope for every error.

    `http_errors` is the class whose instances `_http_exception` converts. It
    must be Starlette's `HTTPException`: the router raises that one for unknown
    routes (404) and wrong methods (405), and FastAPI's `HTTPException` is only
    a subclass of it (mutant `framework-error-body` registers the subclass).
    `request_ids` makes the `x-request-id` of a request that sent none;
    `internal` the answer to an unexpected exception (mutant `leaky-500` shows it).
    """
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(http_errors, _http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    # psycopg raises OperationalError when the server is gone (and for a broken
    # connection mid-transaction); the pool raises PoolTimeout when it cannot
    # hand out a connection in time. Both mean: database unreachable.
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_middleware(RequestIdMiddleware, new_id=request_ids, internal=internal)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return exc.response()


async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _CODE_BY_STATUS.get(
        exc.status_code, "bad_request" if exc.status_code < 500 else "internal_server_error"
    )
    if code == "not_found":
        message = f"No route {request.method} {request.url.path}"
    elif code == "method_not_allowed":
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    error = ApiError(code, message)
    headers = dict(exc.headers or {})
    if code == "method_not_allowed":
        # Starlette's `Allow` names the methods of the first route on the path
        # only; one path served by two routes (GET and POST) has both.
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return ApiJSONResponse(error.body(), status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the app serves on this path, from its (cached) OpenAPI document:
    a public view of the routes, whatever the framework does inside."""
    try:
        operations = request.app.openapi()["paths"].get(request.url.path) or {}
    except Exception:  # no OpenAPI (a bare Starlette app): keep Starlette's header
        return ""
    return ", ".join(sorted(m.upper() for m in operations if m != "parameters"))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
    return ApiError("bad_request", f"Invalid field '{field}': {first.get('msg')}").response()


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return ApiError(
        "service_unavailable",
        "The database is unavailable.",
        details="Try again shortly.",
    ).response()


class RequestIdMiddleware:
    """Sets `x-request-id` on every response and turns uncaught exceptions into a 500 envelope.

    A pure ASGI middleware rather than an `Exception` handler: Starlette sends
    the `Exception` handler's answer from its outermost middleware, past any
    header-adding middleware, and then re-raises the exception (which makes
    `httpx.ASGITransport` raise in the harness).
    """

    def __init__(self, app: ASGIApp, new_id: Callable[[], str] = new_request_id,
                 internal: Callable[[Exception], ApiError] = internal_error) -> None:
        self.app = app
        self.new_id = new_id
        self.internal = internal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or self.new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Logged with its stack for the operator; the client sees no SQL, no stack.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await self.internal(exc).response()(scope, receive, send_with_id)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text or None
    return None
