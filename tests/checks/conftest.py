"""``CHECKKIT_REMOVE=<check>`` removes that check for the run (remove_each_check.py)."""

from __future__ import annotations

import pytest
from remove_each_check import apply_from_environment


def pytest_configure(config: pytest.Config) -> None:
    apply_from_environment()
