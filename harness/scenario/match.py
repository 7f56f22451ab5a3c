"""Partial matching of JSON answers against a scenario's ``expect.body``.

Besides plain values, an expectation may hold a :class:`Matcher`, written in
YAML with a tag: ``!any`` (present, any value), ``!absent`` (the key must not
be there), ``!type string`` (integer, number, boolean, list, object, null) and
``!re PATTERN`` (a string the pattern matches from its start) and ``!instant
TIMESTAMP`` (an ISO-8601 date and time, in any form, that is the same instant
to the millisecond: for timestamps whose form no clause fixes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "list": (list,), "object": (dict,), "null": (type(None),),
}


@dataclass(frozen=True)
class Matcher:
    """A value test that is not equality (``!any``, ``!absent``, ``!type``, ``!re``)."""

    kind: str  # any, absent, type, re, instant
    arg: str = ""

    def problem(self, actual: Any) -> str | None:
        """Why ``actual`` (a present value) does not match; ``None`` if it does."""
        if self.kind == "absent":
            return f"expected no such key, got {short(actual)}"
        if self.kind == "type":
            kinds = TYPES[self.arg]
            ok = isinstance(actual, kinds) and (
                self.arg == "boolean" or not isinstance(actual, bool))
            return None if ok else f"expected {self.arg}, got {short(actual)}"
        if self.kind == "re":
            if isinstance(actual, str) and re.match(self.arg, actual):
                return None
            return f"expected a string matching /{self.arg}/, got {short(actual)}"
        if self.kind == "instant":
            from harness.contract.oracle import parse_ts

            want = parse_ts(self.arg)
            if isinstance(actual, str) and _has_time(actual) and parse_ts(actual) == want:
                return None
            return f"expected the instant {self.arg} (in any ISO-8601 form), got {short(actual)}"
        return None

    def __repr__(self) -> str:
        return f"!{self.kind} {self.arg}".rstrip()


def _has_time(text: str) -> bool:
    """A date with a time of day (a date alone is no instant)."""
    return re.search(r"\d[T ]\d{2}", text) is not None


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mismatches(expected: Any, actual: Any, path: str = "body") -> list[str]:
    """Where ``actual`` differs from ``expected``; listed keys only, lists whole."""
    if isinstance(expected, Matcher):
        problem = expected.problem(actual)
        return [f"{path}: {problem}"] if problem else []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {short(actual)}"]
        out: list[str] = []
        for key, want in expected.items():
            if key not in actual:
                if not (isinstance(want, Matcher) and want.kind == "absent"):
                    out.append(f"{path}.{key}: missing (expected {short(want)})")
            else:
                out += mismatches(want, actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {short(actual)}"]
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}"]
        out = []
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            out += mismatches(want, got, f"{path}[{i}]")
        return out
    # bool is an int in Python: keep true and 1 apart, as JSON does
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{path}: expected {short(expected)}, got {short(actual)}"]
    return []


def status_matches(expected: int | str | list[int], status: int) -> bool:
    if isinstance(expected, list):
        return status in expected
    if isinstance(expected, str):
        return str(status)[0] == expected[0] and status >= 100
    return status == expected
