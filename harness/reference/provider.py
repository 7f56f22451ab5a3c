"""The upstream LLM provider: attempts, retries, timeouts and error mapping (C-CHAT-3, C-CHAT-5).

Timeouts are enforced here with `asyncio.timeout` around each attempt rather
than with httpx's own timeouts, because an injected mock transport (how the
harness fakes the provider in-process) never enforces httpx timeouts.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from harness.reference.errors import ApiError
from harness.reference.timestamps import now

MAX_RETRIES = 2
DEFAULT_RETRY_AFTER = 60
# Keeps retryAfter a sane integer whatever a provider sends.
MAX_RETRY_AFTER = 2**31 - 1

StatusMapper = Callable[[int], str]
# `Retry-After` header value (or None) → whole seconds (C-CHAT-5).
RetryAfterReader = Callable[[str | None], int]
# Is a provider HTTP status worth another attempt (C-CHAT-3)?
RetryPolicy = Callable[[int], bool]
# Retry number n (1, 2) → seconds to wait before it.
Backoff = Callable[[int], float]
# (payload, headers) of a provider request → what is really sent.
RequestShaper = Callable[[dict[str, Any], dict[str, str]], tuple[dict[str, Any], dict[str, str]]]


def no_backoff(attempt: int) -> float:
    return 0.0


def as_is(payload: dict[str, Any], headers: dict[str, str]
          ) -> tuple[dict[str, Any], dict[str, str]]:
    return payload, headers


@dataclass(frozen=True)
class Completion:
    content: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    id: str | None
    model: str


def code_for_status(status: int) -> str:
    """C-CHAT-5: the provider's HTTP status (or a stream error's code) → our error code."""
    if status == 429:
        return "too_many_requests"
    if status == 503:
        return "service_unavailable"
    if status == 402:
        return "payment_required"
    if status == 400:
        return "bad_request"
    return "bad_gateway"


def code_for_status_429_as_502(status: int) -> str:
    """Mutant `rate-limit-as-502`: a rate limit looks like any other upstream failure."""
    return "bad_gateway" if status == 429 else code_for_status(status)


def retry_after_seconds(value: str | None, at: datetime | None = None) -> int:
    """`Retry-After` as whole seconds, rounded up: delta-seconds or an HTTP date; else 60."""
    if value is None or not value.strip():
        return DEFAULT_RETRY_AFTER
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and seconds >= 0:
            return min(math.ceil(seconds), MAX_RETRY_AFTER)
        return DEFAULT_RETRY_AFTER
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (at or now())).total_seconds()
    return min(max(0, math.ceil(delta)), MAX_RETRY_AFTER)


def retry_after_ignored(value: str | None, at: datetime | None = None) -> int:
    """Mutant `retry-after-ignored`: a hard-coded wait, whatever the provider asked for."""
    return DEFAULT_RETRY_AFTER


def provider_error(
    status: int,
    *,
    model: str,
    message: str | None,
    retry_after_header: str | None,
    mapper: StatusMapper = code_for_status,
    retry_after: RetryAfterReader = retry_after_seconds,
) -> ApiError:
    """The answer for a provider failure with `status` (HTTP status or stream error code)."""
    code = mapper(status)
    details = message or f"The provider answered HTTP {status}."
    if code == "too_many_requests":
        seconds = retry_after(retry_after_header)
        return ApiError(
            code,
            f"The model {model} is temporarily rate-limited. Please try again in a few "
            "moments or switch to a different model.",
            details=details,
            retry_after=seconds,
            suggestions=[
                f"Try again in {seconds} seconds",
                "Try a different model",
            ],
        )
    if code == "service_unavailable":
        return ApiError(
            code,
            f"The model {model} is temporarily unavailable.",
            details=details,
            retry_after=retry_after(retry_after_header),
        )
    if code == "payment_required":
        return ApiError(code, "The provider requires payment for this request.", details=details)
    if code == "bad_request":
        return ApiError(code, "The provider refused the request.", details=details)
    return ApiError(code, "The provider failed to answer.", details=details)


def bad_gateway(details: str) -> ApiError:
    return ApiError("bad_gateway", "The provider failed to answer.", details=details)


def gateway_timeout(timeout_ms: int) -> ApiError:
    return ApiError(
        "gateway_timeout",
        "The provider did not answer in time.",
        details=f"No answer within {timeout_ms} ms.",
    )


def error_message_of(body: Any) -> str | None:
    """`error.message` of an OpenRouter error body, if there is one."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return None


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    # A missing or odd count reads as 0 (C-CHAT-4), never as an error.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_counts(usage: Any) -> tuple[int, int, int]:
    if not isinstance(usage, dict):
        return 0, 0, 0
    return (
        _count(usage, "prompt_tokens"),
        _count(usage, "completion_tokens"),
        _count(usage, "total_tokens"),
    )


def parse_completion(body: Any, request_model: str) -> Completion:
    """A 200 body → Completion, or a 502 for anything that is not a usable answer."""
    if not isinstance(body, dict):
        raise bad_gateway("The provider's answer is not a JSON object.")
    if body.get("error") is not None:
        raise bad_gateway(error_message_of(body) or "The provider's answer carries an error.")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad_gateway("The provider's answer has no choices.")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        raise bad_gateway("The provider's answer is empty.")
    prompt, completion, total = usage_counts(body.get("usage"))
    generation_id = body.get("id")
    answered_model = body.get("model")
    return Completion(
        content=content,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        id=generation_id if isinstance(generation_id, str) else None,
        model=answered_model
        if isinstance(answered_model, str) and answered_model
        else request_model,
    )


def retryable(status: int) -> bool:
    """5xx other than 503 are retried (C-CHAT-3); 503 carries its own Retry-After."""
    return 500 <= status <= 599 and status != 503


def retry_any_failure(status: int) -> bool:
    """Mutant `retries-client-errors`: every non-2xx is retried, 429 and other 4xx included."""
    return not 200 <= status <= 299


class UpstreamClient:
    """The backend's upstream: one `httpx.AsyncClient` to `{base}/chat/completions`, shared
    by all requests (not the harness's scripted provider, which plays this upstream)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        api_key: str,
        timeout_ms: int,
        mapper: StatusMapper = code_for_status,
        retry_after: RetryAfterReader = retry_after_seconds,
        should_retry: RetryPolicy = retryable,
        pause_s: float = 0.0,
        backoff_s: Backoff = no_backoff,
        shape_request: RequestShaper = as_is,
    ) -> None:
        self.http = http
        self.url = url
        self.api_key = api_key
        self.timeout_ms = timeout_ms
        self.mapper = mapper
        self.retry_after = retry_after
        self.should_retry = should_retry
        self.pause_s = pause_s
        self.backoff_s = backoff_s
        self.shape_request = shape_request

    async def before_attempt(self, attempt: int) -> None:
        """Waits of the backend's own before attempt `attempt` (0 first), outside its timeout."""
        await _sleep((self.backoff_s(attempt) if attempt else 0.0) + self.pause_s)

    async def after_answer(self) -> None:
        """A wait of the backend's own once the provider answered, outside the timeout."""
        await _sleep(self.pause_s)

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "HTTP-Referer": "http://localhost/chat-harness",
            "X-Title": "chat-harness reference backend",
        }

    def request(self, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The JSON body and headers of one call to `{base}/chat/completions`."""
        return self.shape_request(payload, self.headers())

    def error_for(self, response: httpx.Response, model: str, body: Any) -> ApiError:
        return provider_error(
            response.status_code,
            model=model,
            message=error_message_of(body),
            retry_after_header=response.headers.get("retry-after"),
            mapper=self.mapper,
            retry_after=self.retry_after,
        )

    async def complete(self, model: str, messages: list[dict[str, str]]) -> Completion:
        """One completion: up to 1 + MAX_RETRIES attempts, each within the timeout."""
        payload, headers = self.request({"model": model, "messages": messages})
        last_failure = bad_gateway("The provider could not be reached.")
        for attempt in range(1 + MAX_RETRIES):
            await self.before_attempt(attempt)
            try:
                async with asyncio.timeout(self.timeout_s):
                    response = await self.http.post(self.url, json=payload, headers=headers)
            except (TimeoutError, httpx.TimeoutException):
                # Never retried: the client has already waited a full timeout.
                raise gateway_timeout(self.timeout_ms) from None
            except (httpx.RequestError, OSError) as exc:
                failed = type(exc).__name__
                last_failure = bad_gateway(f"Connection to the provider failed: {failed}")
                continue
            await self.after_answer()
            body = _json_or_none(response)
            if not 200 <= response.status_code <= 299:
                failure = self.error_for(response, model, body)
                if self.should_retry(response.status_code):
                    # Given up after the last retry: the last failure's answer
                    # (502 for the 5xx that are retried).
                    last_failure = failure
                    continue
                raise failure
            if body is None:
                raise bad_gateway("The provider's answer is not valid JSON.")
            return parse_completion(body, model)
        raise last_failure


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None
