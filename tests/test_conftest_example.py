"""The repository's conftest.py is the example of a user's configuration: its custom
check (registered through ``pytest_chat_harness_checks``) judges both ways."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

from runs import ROOT

from harness.result import Check, Exchange, ScenarioResult

KEY = "sk-or-test-key-123"


def _conftest() -> Any:
    spec = importlib.util.spec_from_file_location("repo_conftest", ROOT / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(body: Any, headers: dict[str, str] | None = None) -> SimpleNamespace:
    result = ScenarioResult("s", "s.yaml", "reference")
    result.exchanges.append(Exchange(step=0, purpose="chat", actor="alice", method="POST",
                                     path="/api/chat", request_body={}, status=502,
                                     response_body=body, headers=headers or {},
                                     elapsed_ms=1.0))
    return SimpleNamespace(variables={"provider_api_key": KEY}, result=result)


def test_the_hook_hands_over_the_check() -> None:
    conftest = _conftest()
    assert conftest.pytest_chat_harness_checks(None) == [conftest.key_never_leaks]


def test_an_answer_carrying_the_key_fails_at_its_step() -> None:
    check = _conftest().key_never_leaks
    for run in (_run({"error": f"upstream refused Bearer {KEY}"}),
                _run({"error": "upstream refused"}, {"x-debug-auth": f"Bearer {KEY}"})):
        check(run)
        [failure] = run.result.failures
        assert failure.check is Check.CUSTOM and failure.step == 0
        assert "POST /api/chat -> 502: the answer carries the provider's API key" in (
            failure.message)


def test_an_answer_without_the_key_passes() -> None:
    check = _conftest().key_never_leaks
    run = _run({"error": "The provider refused the request.", "code": "bad_gateway"},
               {"content-type": "application/json"})
    check(run)
    assert run.result.failures == []

