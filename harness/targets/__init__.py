"""Targets: the backend under test, and how the harness reaches it."""

from harness.targets._base import Target

__all__ = ["Target"]
