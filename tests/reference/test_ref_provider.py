"""Unit tests of the pure parts of the provider client: Retry-After and status mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from harness.reference.provider import code_for_status, retry_after_seconds

AT = datetime(2025, 8, 12, 14, 35, 0, 300_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 60),
        ("", 60),
        ("0", 0),
        ("7", 7),
        (" 7 ", 7),
        ("1.2", 2),
        ("-3", 60),
        ("soon", 60),
        ("nan", 60),
        ("inf", 60),
        # 119.7 s after AT → 120
        ("Tue, 12 Aug 2025 14:37:00 GMT", 120),
        ("Tue, 12 Aug 2025 14:30:00 GMT", 0),
        ("Tue, 12 Aug 2025 16:37:00 +0200", 120),
    ],
)
def test_retry_after_seconds(header: str | None, expected: int) -> None:
    assert retry_after_seconds(header, AT) == expected


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "too_many_requests"),
        (503, "service_unavailable"),
        (402, "payment_required"),
        (400, "bad_request"),
        (401, "bad_gateway"),
        (500, "bad_gateway"),
        (418, "bad_gateway"),
    ],
)
def test_code_for_status(status: int, code: str) -> None:
    assert code_for_status(status) == code
