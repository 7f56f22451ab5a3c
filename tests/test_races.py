"""The race language: ``parallel:`` with rounds, a barrier and ``before:``, and its checks.

A wrong answer to one of the concurrent requests fails at its round and request;
the loader takes every step kind into a group and refuses what cannot run.
"""

from __future__ import annotations

import json
from pathlib import Path

from runs import chat_harness

from harness.scenario.load import load_file
from harness.scenario.model import ChatStep, ParallelStep, ResyncStep
from harness.scenario.steps.parallel import fresh_names

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_group_takes_rounds_barrier_before_and_any_kind(tmp_path: Path) -> None:
    path = _write(tmp_path, "g.yaml", """name: g
model: m/free
steps:
  - parallel:
      - resync
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
      - db: SELECT 1 AS one
    before:
      - chat: "hi ${round}"
        provider: {reply: hi}
        sync: false
    rounds: 7
    barrier: true
""")
    (scenario,) = load_file(path)
    step = scenario.steps[0]
    assert isinstance(step, ParallelStep)
    assert (step.rounds, step.barrier) == (7, True)
    assert isinstance(step.before_parsed[0], ChatStep)
    assert isinstance(step.parsed[0], ResyncStep)
    assert step.lines == (5, 6, 8)
    assert fresh_names(step) == ["conv"]


def test_a_wrong_concurrent_answer_fails_at_its_round_and_request(tmp_path: Path) -> None:
    # two tabs create one new session at once: exactly one of them creates it (201),
    # the other finds it (200); expecting 201 of both must fail, in every round, at the
    # request that got the 200
    _write(tmp_path, "tabs.yaml", """name: tabs
covers: [C-SES-2]
steps:
  - parallel:
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
        expect: {status: 201}
      - http: POST /api/chat/sessions
        body: {id: "${fresh.conv}"}
        expect: {status: 201}
    rounds: 3
    barrier: true
""")
    done = chat_harness("run", str(tmp_path / "tabs.yaml"), "--reports", str(tmp_path / "r"),
                        tmp=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    messages = [f["message"] for s in results["scenarios"] for f in s["failures"]]
    assert len(messages) == 3, messages  # one per round
    for number in (1, 2, 3):
        assert any(m.startswith(f"round {number} of 3, request ") and "(line " in m
                   and "expected status 201" in m for m in messages), messages


def test_the_race_family_passes_on_the_reference(tmp_path: Path) -> None:
    done = chat_harness("run", str(ROOT / "scenarios" / "races"), "--reports",
                        str(tmp_path / "r"), tmp=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert len(results["scenarios"]) >= 10
