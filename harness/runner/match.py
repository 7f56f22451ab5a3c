"""Partial matching of JSON answers against a scenario's ``expect.body``."""

from __future__ import annotations

from typing import Any


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mismatches(expected: Any, actual: Any, path: str = "body") -> list[str]:
    """Where ``actual`` differs from ``expected``; listed keys only, lists whole."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {short(actual)}"]
        out: list[str] = []
        for key, want in expected.items():
            if key not in actual:
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
