"""The oracle (what a correct backend answers) agrees with the reference, edge cases too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.contract import oracle
from harness.reference.timestamps import format_timestamp, parse_timestamp


@pytest.mark.parametrize(("ts", "text"), [
    (datetime(362, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "0362-01-02T03:04:05.006Z"),
    (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
    (datetime(2025, 8, 12, 14, 34, 8, 860999, tzinfo=UTC), "2025-08-12T14:34:08.860Z"),
])
def test_format_ts_is_the_wire_form_with_four_digit_years(ts: datetime, text: str) -> None:
    assert oracle.format_ts(ts) == text


@given(st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(UTC)))
def test_oracle_and_reference_format_and_parse_alike(ts: datetime) -> None:
    text = oracle.format_ts(ts)
    assert text == format_timestamp(ts)
    assert oracle.parse_ts(text) == parse_timestamp(text)
