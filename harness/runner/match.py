"""Moved to :mod:`harness.scenario.match` (matchers are scenario language); kept for imports."""

from harness.scenario.match import TYPES, Matcher, mismatches, short, status_matches

__all__ = ["TYPES", "Matcher", "mismatches", "short", "status_matches"]
