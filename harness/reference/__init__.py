"""The reference backend: a correct implementation of the chat API contract (CONTRACT.md).

It is what the harness's scenarios are proven against, and, with mutants
(`Settings.mutants`), what proves that the scenarios catch real bugs.

    from harness.reference import Settings, create_app
"""

from harness.reference.app import create_app
from harness.reference.mutants import MUTANTS
from harness.reference.settings import Settings

__all__ = ["MUTANTS", "Settings", "create_app"]
