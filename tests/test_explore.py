"""The conversation explorer: the reference holds, mutants are found, findings replay.

A finding is only worth something as a regression test: its YAML must load,
pass on the correct reference and fail on the mutant the way the explorer
saw it fail.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from harness import run_scenarios
from harness.cli import main
from harness.config import RunConfig
from harness.db import Database
from harness.explore.emit import scenario_yaml, step_data
from harness.explore.runner import Exploration, explore, explore_mutants
from harness.reporting.terminal import render_failure
from harness.scenario.load import load_file
from harness.scenario.model import (
    ChatStep,
    Expect,
    HttpStep,
    ParallelStep,
    ProviderAnswer,
    ResyncStep,
    RetryStep,
    Step,
    StreamStep,
)


def _explore(database: Database, config: RunConfig, *mutants: str) -> Exploration:
    return explore(dataclasses.replace(config, mutants=frozenset(mutants)), "ci", db=database)


def _save(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenarios" / "explored.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_reference_holds_the_contract_under_the_ci_profile(
        database: Database, config: RunConfig) -> None:
    result = _explore(database, config)
    assert result.passed, result.yaml
    assert "the contract held" in result.summary()


@pytest.mark.parametrize(("mutant", "checks"), [
    ("request-id-first-match", {"pairing", "context", "order"}),  # the seed's bug
    ("insert-not-upsert", {"sync", "idempotent", "expect"}),  # the seed's 500
    ("framework-error-body", {"expect", "envelope"}),  # an outdated client's stray request
])
def test_a_mutant_is_found_and_its_yaml_is_a_regression_test(
        database: Database, config: RunConfig, tmp_path: Path, mutant: str,
        checks: set[str]) -> None:
    result = _explore(database, config, mutant)
    assert not result.passed
    assert result.yaml is not None
    found = {f.check for f in result.failures}
    assert found & checks, result.yaml
    assert result.yaml.startswith(f"# Found by: chat-harness explore --profile ci --mutant "
                                  f"{mutant}\n")
    assert "\nname: explored\n" in result.yaml
    assert "\nsteps:\n- " in result.yaml
    assert 1 <= result.steps <= 4  # shrunk: a handful of steps, not the whole sequence

    path = _save(tmp_path, result.yaml)
    [scenario] = load_file(path)
    assert len(scenario.steps) == result.steps
    [on_reference] = run_scenarios([path], config, db=database)
    assert on_reference.passed, render_failure(on_reference)
    [on_mutant] = run_scenarios([path], dataclasses.replace(config, mutants=frozenset([mutant])),
                                db=database)
    assert found <= {f.check for f in on_mutant.failures}, render_failure(on_mutant)


def test_a_half_written_batch_is_found_and_its_yaml_is_a_regression_test(
        database: Database, config: RunConfig, tmp_path: Path) -> None:
    """batch-not-atomic: a batch refused halfway leaves its session behind.

    Two users post one new id into new sessions at once: the loser's batch is
    refused (409) after its session was committed. No built-in check reads a
    session nothing was stored into: the explorer's invariant does, and the
    YAML ends with it, in a form that holds whoever loses: no session of the
    race is left empty.
    """
    result = _explore(database, config, "batch-not-atomic")
    assert not result.passed
    assert result.yaml is not None
    assert {f.check for f in result.failures} == {"atomic"}, result.yaml
    assert result.yaml.startswith("# Found by: chat-harness explore --profile ci --mutant "
                                  "batch-not-atomic\n")
    assert "no session of the race is left empty" in result.yaml
    assert 1 <= result.steps <= 4

    path = _save(tmp_path, result.yaml)
    [scenario] = load_file(path)
    assert len(scenario.steps) == result.steps + 1  # the invariant, as a db step
    mutant = dataclasses.replace(config, mutants=frozenset(["batch-not-atomic"]))
    for _ in range(3):  # whoever wins the race
        [on_reference] = run_scenarios([path], config, db=database)
        assert on_reference.passed, render_failure(on_reference)
        [on_mutant] = run_scenarios([path], mutant, db=database)
        assert {f.check for f in on_mutant.failures} == {"db"}, render_failure(on_mutant)
        assert {f.step for f in on_mutant.failures} == {result.steps}  # the invariant


def test_a_stats_finding_carries_its_invariant_as_a_step(
        database: Database, config: RunConfig, tmp_path: Path) -> None:
    """Stats are no built-in check: the YAML says what they must be, in a step."""
    from harness.explore.driver import DEFAULT_MODEL, ExploreHarness, LiveRun
    from harness.explore.invariants import stats_step
    from harness.targets.inprocess import quiet as quiet_reference

    mutant = dataclasses.replace(config, mutants=frozenset(["retry-not-updated"]))
    with ExploreHarness(mutant, db=database) as harness, quiet_reference():
        live = LiveRun(harness)
        live.step(ChatStep(chat="hello", provider=ProviderAnswer(status=429)))
        assert live.check() == []
        live.step(RetryStep(retry=1, provider=ProviderAnswer(reply="hi")))
        failures = live.check()
        assert [f.check for f in failures] == ["stats"]
        assert "message_count 1, expected 2" in failures[0].message
        steps = [*live.steps, stats_step(live.run)]
    path = _save(tmp_path, scenario_yaml("explored", steps, model=DEFAULT_MODEL,
                                             failures=failures))
    [on_reference] = run_scenarios([path], config, db=database)
    assert on_reference.passed, render_failure(on_reference)
    [on_mutant] = run_scenarios([path], mutant, db=database)
    assert [f.check for f in on_mutant.failures] == ["expect"], render_failure(on_mutant)
    assert on_mutant.failures[0].step == 2


EVERY_KIND: list[Step] = [
    ChatStep(chat="  hello\nthere ", provider=ProviderAnswer(status=429, retry_after=7,
                                                              error="slow down"),
             model="openai/gpt-4o-mini", at="2025-08-12T14:34:08.861Z",
             current_message_id=False),
    StreamStep(stream="tell me ✨ a story\u2028",
               provider=ProviderAnswer(reply="Once", cut_after=1)),
    RetryStep(retry=1, streaming=True, provider=[ProviderAnswer(status=502, error="x"),
                                                 ProviderAnswer(reply="ok")]),
    ResyncStep(),
    ParallelStep(parallel=["resync", "resync"], parsed=(ResyncStep(), ResyncStep())),
    HttpStep(actor="bob", http="GET /api/chat/messages", query={"session_id": "${session_id}"},
             expect=Expect(status=404, body={"code": "not_found"})),
    HttpStep(title="again", http="POST /api/chat/messages",
             body={"sessionId": "s", "messages": [{"id": "m", "content": "x\n\ty"}]}),
]


def test_emitted_yaml_loads_back_into_the_same_steps(tmp_path: Path) -> None:
    text = scenario_yaml("explored", EVERY_KIND, model="google/gemini-2.0-flash-exp:free")
    [scenario] = load_file(_save(tmp_path, text))
    assert [step_data(s) for s in scenario.steps] == [step_data(s) for s in EVERY_KIND]
    assert [s for s in scenario.steps if not isinstance(s, ParallelStep)] == [
        s for s in EVERY_KIND if not isinstance(s, ParallelStep)]
    assert scenario.header.model == "google/gemini-2.0-flash-exp:free"
    assert "- resync\n" in text and "provider: {reply: Once, cut_after: 1}" in text


def test_the_command_prints_the_finding(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explore", "--mutant", "rate-limit-as-502", "--db", "embedded"])
    out = capsys.readouterr().out
    assert code == 1, out
    # 1 or 2 steps: how far Hypothesis shrinks depends on the machine's rules
    assert re.search(r"--mutant rate-limit-as-502\): broken in [12] step\(s\): outcome", out)
    assert "status: 429" in out and "\nsteps:\n- " in out and "\n- chat: " in out


def test_an_unknown_profile_is_a_usage_error(config: RunConfig) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown profile 'fast'"):
        explore(config, "fast")


def test_a_backend_whose_database_it_may_not_empty_is_a_usage_error() -> None:
    """Refused before anything starts: no connection to the URL, no PostgreSQL."""
    from harness.errors import ConfigError

    running = RunConfig.from_options(target_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="a database it can empty") as refused:
        explore(running, "ci")
    assert "--reset-db" in str(refused.value.hint)
    with pytest.raises(ConfigError, match="--mutants needs a backend the harness starts"):
        explore_mutants(running, "ci")


def test_explore_finds_a_race_by_itself_and_prints_it_as_a_parallel_group(
        database: Database, config: RunConfig, tmp_path: Path) -> None:
    """A mutant only two requests at once can catch (SELECT-then-INSERT, no lock): the
    second client finds it, shrinks it to one parallel group, and the YAML replays it."""
    mutant = "unlocked-check-then-insert"
    result = explore(dataclasses.replace(config, mutants=frozenset([mutant])), "ci",
                     db=database, max_examples=30)
    assert not result.passed
    assert result.yaml is not None
    assert result.steps == 1, result.yaml  # shrunk to the race alone
    assert "\nsteps:\n- parallel:\n  - title: " in result.yaml
    assert "500 internal_server_error" in result.yaml
    path = _save(tmp_path, result.yaml)
    [scenario] = load_file(path)
    [group] = scenario.steps
    assert isinstance(group, ParallelStep) and len(group.parsed) == 2
    assert all(isinstance(s, HttpStep) and s.http == "POST /api/chat/messages"
               for s in group.parsed)
    [on_reference] = run_scenarios([path], config, db=database)
    assert on_reference.passed, render_failure(on_reference)
    [on_mutant] = run_scenarios([path], dataclasses.replace(config, mutants=frozenset([mutant])),
                                db=database)
    assert not on_mutant.passed
    assert any(f.check == "expect" and "500" in f.message for f in on_mutant.failures), \
        render_failure(on_mutant)


def test_two_users_claiming_one_id_leave_exactly_one_row(
        database: Database, config: RunConfig, tmp_path: Path) -> None:
    """One post wins, the other is 409; an id nobody holds after its claim is a finding,
    and its YAML carries the check as a db step."""
    from harness.explore.driver import DEFAULT_MODEL, ExploreHarness, LiveRun
    from harness.explore.invariants import Claim, claim_steps
    from harness.explore.races import BOB_SESSION, parallel, sync
    from harness.targets.inprocess import quiet as quiet_reference

    message = {"id": "msg_claimed", "role": "user", "content": "mine",
               "timestamp": "2025-08-12T14:35:00.000Z"}
    either = Expect(status=[201, 409])
    with ExploreHarness(config, db=database) as harness, quiet_reference():
        live = LiveRun(harness)
        live.step(parallel(
            sync({"sessionId": "${session_id}", "message": message}, "alice", expect=either),
            sync({"sessionId": BOB_SESSION, "message": message}, "bob", actor="bob",
                 expect=either)))
        live.claims.append(Claim("msg_claimed", 0))
        assert live.check() == []
        assert sorted(s.status for s in live.run.client.syncs) == [201, 409]
        live.claims.append(Claim("msg_nobody_holds", 0))  # as if both had been refused
        failures = live.check()
        assert [(f.check, f.clause) for f in failures] == [("lost", "C-AUTH-3")], failures
        assert "msg_nobody_holds" in failures[0].message and "0 times" in failures[0].message
        steps = claim_steps(live.claims, failures)
    assert len(steps) == 2  # both claims of the failing step: the held one passes
    text = scenario_yaml("explored", steps, model=DEFAULT_MODEL, failures=failures)
    [scenario] = load_file(_save(tmp_path, text))
    assert len(scenario.steps) == 2


def test_two_tabs_racing_keep_the_contract_on_the_reference_and_break_the_mutant(
        database: Database, config: RunConfig) -> None:
    """Every race of the second client, as it builds them, holds on the reference round
    after round; the first posts of one new batch from two tabs break the mutant."""
    from harness.explore.driver import ExploreHarness, LiveRun
    from harness.explore.races import parallel, sync
    from harness.targets.inprocess import quiet as quiet_reference

    def turn(n: int, text: str = "hi") -> list[dict[str, object]]:
        user = {"id": f"msg_t{n}", "role": "user", "content": text,
                "timestamp": f"2025-08-12T14:{n:02d}:00.000Z"}
        answer = {"id": f"msg_t{n}_a", "role": "assistant", "content": "yo", "model": "m",
                  "timestamp": f"2025-08-12T14:{n:02d}:01.000Z", "user_message_id": user["id"],
                  "total_tokens": 5}
        return [user, answer]

    def body(messages: list[dict[str, object]]) -> dict[str, object]:
        return {"sessionId": "${session_id}", "messages": messages}

    with ExploreHarness(config, db=database) as harness, quiet_reference():
        live = LiveRun(harness)
        for r in range(5):
            n = 10 * r
            live.step(parallel(sync(body(turn(n + 1)), "tab 1"), sync(body(turn(n + 1)), "tab 2")))
            live.step(parallel(sync(body(turn(n + 2)), "tab 1"),
                               sync(body([*turn(n + 2), *turn(n + 3)[:1]]), "tab 2")))
            live.step(parallel(sync(body(turn(n + 4)), "tab 1"), sync(body(turn(n + 5)), "tab 2")))
            live.step(parallel(sync(body(turn(n + 6)), "tab 1"), sync(body(turn(n + 1)), "old")))
            live.step(parallel(sync(body(turn(n + 7)), "tab 1"), HttpStep(
                http="POST /api/chat/session", body={"id": "${session_id}", "title": "t"},
                expect=Expect(status=200))))
            assert live.check() == [], r
        assert live.check(final=True) == []

    mutant = dataclasses.replace(config, mutants=frozenset(["unlocked-check-then-insert"]))
    with ExploreHarness(mutant, db=database) as harness, quiet_reference():
        live = LiveRun(harness)
        live.step(sync(body(turn(1)), "the session exists"))
        live.step(parallel(sync(body(turn(2)), "tab 1"), sync(body(turn(2)), "tab 2")))
        failures = live.check()
        assert any("500" in f.message for f in failures), failures
