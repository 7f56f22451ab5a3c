"""The reference backend: a correct implementation of the chat API contract (CONTRACT.md).

It is what the harness's scenarios are proven against, and, with mutants
(`Settings.mutants`), what proves that the scenarios catch real bugs; with benign
variants (`Settings.variants`), what proves that they accept other correct answers.

    from harness.reference import Settings, create_app
"""

from harness.reference.app import create_app
from harness.reference.mutants import MUTANTS
from harness.reference.settings import Settings
from harness.reference.variants import VARIANTS

__all__ = ["MUTANTS", "VARIANTS", "Settings", "create_app"]
