"""Timestamps: parsing what clients send, formatting what the backend answers (C-MSG-4)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO-8601 timestamp into an aware UTC datetime at millisecond precision.

    No offset means UTC (C-MSG-4). Sub-millisecond digits are cut, not rounded,
    as JavaScript's `Date` does, so the stored instant is the one a JS client
    would see. Raises ValueError with a message fit for a 400 answer.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string but got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("expected an ISO-8601 timestamp but got an empty string")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO-8601 timestamp but got {_preview(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        # e.g. "0001-01-01T00:00:00+01:00" is before year 1 in UTC.
        raise ValueError(f"timestamp out of range: {_preview(value)}") from None
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def format_timestamp(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC (C-MSG-4, C-MSG-9)."""
    utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    # Built by hand: strftime("%Y") does not zero-pad years below 1000 on glibc.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def now() -> datetime:
    return datetime.now(UTC)


def now_iso() -> str:
    return format_timestamp(now())


def _preview(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def elapsed_ms(seconds: float) -> int:
    """C-CHAT-4's ``elapsed_ms``: whole milliseconds."""
    return int(seconds * 1000)
