"""A broken scenario is a clear error: file, 1-based line, key, expectation, hint."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.load import load_file

GOOD_HEAD = """\
name: demo
model: m/free
steps:
"""


def _load(tmp_path: Path, text: str) -> ScenarioError:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ScenarioError) as info:
        load_file(path, display="scenarios/bad.yaml")
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        pytest.param(
            GOOD_HEAD + "  - chat: hello\n    provider: {reply: 'hi'\n",
            5, None, ["YAML syntax error"], id="yaml-syntax",
        ),
        pytest.param(
            GOOD_HEAD + "  - chat: hello\n  - caht: again\n",
            5, "steps[1]", ["unknown step kind 'caht'", "did you mean 'chat'"],
            id="unknown-step-kind",
        ),
        pytest.param(
            "name: demo\nmodel: m\n", 1, "steps", ["required key is missing", "add 'steps:'"],
            id="missing-steps",
        ),
        pytest.param(
            GOOD_HEAD + "  - chat: hello\n    provider:\n      status: '429'\n",
            6, "steps[0].provider.status", ["expected a valid integer", "'429'"],
            id="wrong-type",
        ),
        pytest.param(
            GOOD_HEAD + "  - chat: hello\n    provider: {reply: hi}\n    expcet: {status: 200}\n",
            6, "steps[0].expcet", ["unknown key", "did you mean 'expect'"],
            id="unknown-key-did-you-mean",
        ),
        pytest.param(
            GOOD_HEAD + "  - chat: 42\n", 4, "steps[0].chat", ["expected a valid string", "42"],
            id="message-not-a-string",
        ),
        pytest.param(
            GOOD_HEAD + "  - http: FETCH /api/chat\n", 4, "steps[0].http",
            ["expected 'METHOD /path'"], id="bad-http-line",
        ),
        pytest.param(
            "name: demo\ncovers: [C-MSG-2, msg2]\nsteps:\n  - resync\n", 2, "covers[1]",
            ["clause id"], id="bad-clause-id",
        ),
        pytest.param(
            GOOD_HEAD + "  - chat: hello\n    provider: {error: boom}\n", 5, "steps[0].provider",
            ["exactly one of 'reply'"], id="provider-answer-without-kind",
        ),
        pytest.param(
            "- chat: hello\n", 1, None, ["one mapping"], id="not-a-mapping",
        ),
        pytest.param(
            "name: demo\nsteps: []\n", 2, "steps", ["at least one step"], id="no-steps",
        ),
        pytest.param(
            "name: demo\nname: again\nsteps: [resync]\n", 2, None, ["duplicate key 'name'"],
            id="duplicate-key",
        ),
        pytest.param(
            GOOD_HEAD + "  - parallel:\n      - resync\n      - parallel: [resync, resync]\n", 6,
            "steps[0].parallel[1]", ["a parallel step cannot run inside another"],
            id="parallel-in-parallel",
        ),
        pytest.param(
            GOOD_HEAD + "  - parallel: [resync]\n", 4, "steps[0].parallel",
            ["at least two steps"], id="parallel-of-one",
        ),
        pytest.param(
            GOOD_HEAD + "  - chat: hi\n    token: {alg: RS256}\n", 5, "steps[0].token.alg",
            ["expected"], id="bad-token-alg",
        ),
    ],
)
def test_broken_scenario_names_place_and_expectation(
    tmp_path: Path, text: str, line: int, key: str | None, words: list[str]
) -> None:
    error = _load(tmp_path, text)
    rendered = error.render()
    assert error.location.line == line, rendered
    assert rendered.startswith(f"scenarios/bad.yaml:{line}: "), rendered
    if key is not None:
        assert error.key == key, rendered
    for word in words:
        assert word in rendered, rendered
    assert "Hint:" in rendered or error.hint is None, rendered
    assert "Traceback" not in rendered


def test_every_error_kind_carries_a_hint(tmp_path: Path) -> None:
    text = GOOD_HEAD + "  - chat: hello\n    provider: {reply: hi, delay_ms: -1}\n"
    error = _load(tmp_path, text)
    assert error.hint, error.render()
    assert "steps[0].provider.delay_ms" in error.render()


def test_collection_error_shows_no_traceback(pytester: pytest.Pytester) -> None:
    scenarios = pytester.mkdir("scenarios")
    text = GOOD_HEAD + "  - chat: hi\n    provider:\n      status: x\n"
    (scenarios / "broken.yaml").write_text(text)
    result = pytester.runpytest("scenarios")
    result.stdout.fnmatch_lines([
        "*scenarios/broken.yaml:6: steps[[]0].provider.status: expected a valid integer*",
        "Hint: *",
    ])
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run
