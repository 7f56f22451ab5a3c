"""The plugin is a good citizen: installed next to someone else's tests it does nothing
until a scenario is collected, and ``-p harness.plugin`` loads it as people expect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

UNRELATED = """
import signal

def test_unrelated(request):
    print("plugin loaded:", request.config.pluginmanager.hasplugin("harness.plugin"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
"""


def _files(root: Path) -> set[str]:
    """What is in the project, but pytester's own (its basetemp, the captured output)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if "__pycache__" not in p.parts and not p.relative_to(root).parts[0].startswith(
                ("runpytest-", "stdout", "stderr"))}


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, set[str]]:
    before = _files(pytester.path)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
    return result, _files(pytester.path) - before


def test_a_project_without_scenarios_runs_as_without_the_plugin(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unrelated=UNRELATED)
    without, made_without = _run(pytester, "-p", "no:chat_harness")
    with_it, made_with = _run(pytester)
    assert "plugin loaded: False" in without.stdout.str()
    assert "plugin loaded: True" in with_it.stdout.str()  # installed: loaded, and silent
    for result in (without, with_it):  # the test's own asserts: handlers untouched
        assert result.ret == 0
        result.assert_outcomes(passed=1)
    assert made_with == made_without == set()  # no reports/, no junit.xml


@pytest.mark.parametrize("autoload", [True, False])
def test_loading_it_by_module_name_works(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                         autoload: bool) -> None:
    if not autoload:
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_unrelated=UNRELATED)
    result, made = _run(pytester, "-p", "harness.plugin")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert "already registered" not in result.stderr.str()
    assert "plugin loaded: True" in result.stdout.str()
    result.assert_outcomes(passed=1)
    assert made == set()


def test_a_collected_scenario_switches_it_on(pytester: pytest.Pytester) -> None:
    """A scenario file (here one that does not load: nothing needs starting) makes the
    session a chat-harness run: junit.xml and results.json under reports/."""
    pytester.makepyfile(test_unrelated=UNRELATED.replace("assert signal", "pass  # "))
    scenarios = pytester.mkdir("scenarios")
    (scenarios / "broken.yaml").write_text("name: broken\nsteps: 3\n", encoding="utf-8")
    result, made = _run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run
    assert {"reports/junit.xml", "reports/results.json"} <= made
    assert "broken.yaml" in (pytester.path / "reports" / "junit.xml").read_text()


def test_loading_it_imports_nothing_heavy() -> None:
    """What loading the plugin imports beyond pytest: the light modules only."""
    import subprocess
    import sys

    code = ("import sys; before = set(sys.modules); import harness.plugin, harness.fixtures;"
            "print(' '.join(sorted(m for m in set(sys.modules) - before"
            " if not m.startswith(('harness', '_pytest', 'pytest')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    loaded = set(out.stdout.split())
    heavy = {"fastapi", "psycopg", "httpx", "respx", "pydantic", "yaml", "jwt", "uvicorn",
             "hypothesis", "schemathesis", "rich", "jsonschema"}
    assert not loaded & heavy, loaded & heavy


def test_the_fixtures_work_in_a_project_of_ones_own(pytester: pytest.Pytester) -> None:
    """A user's project: the installed plugin gives its tests the fixtures."""
    pytester.makepyfile(test_mine="""
        def test_a_turn(chat_backend, chat_provider, chat_db):
            chat_provider.reply("hello")
            turn = chat_backend.chat("hi", model="m")
            assert turn.status == 200 and turn.json()["data"]["response"] == "hello"
            assert len(chat_db.query("SELECT id FROM chat_messages")) == 2
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--db", "embedded")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports" / "junit.xml").exists()  # not a scenario run
