"""The seed bug report, both ways: the reference passes, the seed's bugs are caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import run_scenarios
from harness.config import RunConfig
from harness.db import Database
from harness.reporting.terminal import ordered, render_failure
from harness.result import ScenarioResult

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SEED = SCENARIOS / "seed" / "429-switch-model-resend.yaml"
REPLAY = SCENARIOS / "seed" / "replay-bug-report.yaml"


def _run(database: Database, config: RunConfig, *mutants: str) -> list[ScenarioResult]:
    cfg = dataclasses.replace(config, mutants=frozenset(mutants))
    return run_scenarios([SEED, REPLAY], cfg, db=database)


def test_reference_backend_passes_the_seed(database: Database, config: RunConfig) -> None:
    results = _run(database, config)
    assert [r.scenario_id for r in results] == [
        "429-switch-model-resend[current_message_id=true]",
        "429-switch-model-resend[current_message_id=false]",
        "replay-bug-report",
    ]
    for result in results:
        assert result.passed, render_failure(result)


def _seed_results(results: list[ScenarioResult]) -> list[ScenarioResult]:
    """The seed scenario's two runs (with and without current_message_id), never fewer."""
    seed = [r for r in results if r.scenario_id.startswith("429-switch-model-resend")]
    assert len(seed) == 2, [r.scenario_id for r in results]
    return seed


def test_first_match_request_id_is_caught(database: Database, config: RunConfig) -> None:
    results = _run(database, config, "request-id-first-match")
    for result in _seed_results(results):
        assert not result.passed
        pairing = [f for f in result.failures if f.check == "pairing" and f.step == 3]
        assert pairing, render_failure(result)
        message = pairing[0].message
        # it names the earlier failed message instead of the one just sent
        assert "the failed user message of step 3 'what is amazon bedrock?'" in message
        assert message.endswith("the message this step sent")
        assert pairing[0].actual != pairing[0].expected
    replay = next(r for r in results if r.scenario_id == "replay-bug-report")
    assert any(f.check == "pairing" and f.step == 2 for f in replay.failures), render_failure(
        replay)


def test_insert_not_upsert_is_caught(database: Database, config: RunConfig) -> None:
    results = _run(database, config, "insert-not-upsert")
    for result in _seed_results(results):
        syncs = [f for f in result.failures if f.check == "sync"]
        assert syncs, render_failure(result)
        assert "storing the already stored message" in syncs[0].message
        assert "got 500 internal_server_error" in syncs[0].message
        assert syncs[0].clause == "C-MSG-2"


@pytest.mark.parametrize("variant", [0, 1], ids=["current_message_id", "no_current_message_id"])
def test_the_seeds_backend_shows_the_seeds_symptoms_in_order(
    database: Database, config: RunConfig, variant: int
) -> None:
    result = _seed_results(_run(database, config, "request-id-first-match",
                                "insert-not-upsert"))[variant]
    failures = ordered(result)
    kinds = [f.check for f in failures]
    # 1. the wrong request_id, 2. the 500 on the sync, 3. the message missing
    wrong_id = kinds.index("pairing")
    sync_500 = kinds.index("sync")
    missing = next(i for i, f in enumerate(failures)
                   if f.check == "order" and "missing" in f.message)
    assert wrong_id < sync_500 < missing, render_failure(result)
    assert failures[wrong_id].step == failures[sync_500].step == 3
    assert "500" in failures[sync_500].message
    assert "(the user message of step 4 'what is amazon bedrock?')" in failures[missing].message
    assert render_failure(result).endswith(
        "Reproduce with:\n  chat-harness run "
        f"'{SEED}::{result.scenario_id}' "
        "--mutant insert-not-upsert --mutant request-id-first-match"
    )
