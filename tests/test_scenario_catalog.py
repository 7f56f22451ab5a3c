"""The scenario library reads well: each file named, with a one-line why, in its area."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.load import discover, load_file

ROOT = Path(__file__).resolve().parent.parent
AREAS = {"chat", "stream", "messages", "sessions", "auth", "errors", "seed", "run", "races",
         "ai-sdk"}
FILES = discover([ROOT / "scenarios"])


def test_the_library_is_large_and_grouped() -> None:
    assert len(FILES) >= 40
    assert {p.parent.name for p in FILES} == AREAS


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_scenario_says_what_and_why(path: Path) -> None:
    header = load_file(path)[0].header
    assert header.name == path.stem, "name the file after the scenario"
    assert header.why and "\n" not in header.why.strip(), "a one-line why"
    assert len(header.why) <= 120, "keep the why to one line a reviewer reads at a glance"
    assert header.covers, "list the contract clauses the scenario checks"
