"""Property: the loader answers every file with scenarios or a located ScenarioError.

Hypothesis writes two kinds of files: YAML-ish text built from the characters and
words YAML and the scenario language give meaning to (so most of it is broken in
interesting ways), and scenario-shaped trees (the real keys at the right places,
with values of every type, matchers, !repeat, variables, aliases). Whatever
``load_file`` makes of them, it must be a list of :class:`Scenario` or a
:class:`ScenarioError` naming the file and a 1-based line, with a hint; never
another exception (a traceback in a user's run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ScenarioError
from harness.scenario.load import Scenario, load_file

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property") / "generated.yaml"


def _answer(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        scenarios = load_file(path, display="generated.yaml")
    except ScenarioError as error:
        assert error.location.file == "generated.yaml", error.render()
        assert error.location.line >= 1, error.render()
        assert error.hint, error.render()
        assert error.render().startswith(f"generated.yaml:{error.location.line}: ")
        return
    assert scenarios and all(isinstance(s, Scenario) for s in scenarios)


# -- YAML-ish text ------------------------------------------------------------------

WORDS = [
    "name", "steps", "model", "session", "chat", "http", "provider", "expect", "reply",
    "status", "body", "retry", "parallel", "db", "resync", "stream", "as", "capture",
    "matrix", "checks", "covers", "for_model", "retry_after", "GET /api/health",
    "POST /api/chat", "m/free", "hello", "429", "2xx", "-1", "1e400", ".inf", ".nan",
    "~", "null", "yes", "on", "!any", "!absent", "!type", "!type string", "!re", "!instant",
    "!repeat", "!repeat {text: ab, times: 3}", "!!set", "!!binary", "!!int", "!!float",
    "!!timestamp", "!!python/object", "!unknown", "&a", "*a", "&b", "*b", "<<", "${",
    "${session_id}", "${ x }", "$${", "}", "{", "[", "]", "---", "...", "%YAML 1.1",
    "? ", "|", ">", "'", '"', "#", "@", "`", ",", ":", ": ", "- ", "\t", "\n", "\n  ",
    "\n    ", "\n  - ", "\ufeff", "\x00", "😀", "\u2028",
]

# mostly printable: a control character is refused at once, and would hide the rest
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=6)
fragment = st.lists(st.one_of(st.sampled_from(WORDS), printable, printable), max_size=40).map(
    "".join)
# a whole file of fragments, or fragments where the first step's text goes
yamlish = st.one_of(fragment, fragment.map(
    lambda text: f"name: demo\nmodel: m/free\nsteps:\n  - chat: {text}\n  - {text}\n"))


@SETTINGS
@given(text=yamlish, encoding=st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
def test_yaml_text_is_a_scenario_or_a_located_error(scratch: Path, text: str,
                                                     encoding: str) -> None:
    _answer(scratch, text.encode(encoding, errors="replace"))


# -- scenario-shaped trees -------------------------------------------------------------


class Raw(str):
    """YAML written as is (a tag, an alias), not as a quoted string."""


PLAUSIBLE = [
    "hello", "m/free", "GET /api/health", "POST /api/chat", "POST /api/chat/messages",
    "GET /api/chat/sessions/${session_id}", "${session_id}", "${users.bob}", "${users.eve}",
    "${nope", "${ session_id }", "$${literal}", "last", "2xx", "4xx", "data.request_id",
    "conv_1", "../../etc", "", "bob", "select 1", "2025-08-12T14:34:08.861Z", "soon",
    "Wed, 21 Oct 2025 07:28:00 GMT", "first_token", "HS256", "C-MSG-2", "C-MSG-99",
    200, 201, 429, 503, 999, 0, -1, 1, 2, 20000, 10**30, 1.5, True, False, None,
    math.inf, math.nan,
]
TAGGED = [Raw(t) for t in (
    "!any", "!absent", "!type string", "!type nothing", "!re '^h'", "!re '('",
    "!instant 2025-08-12T14:34:08Z", "!instant never", "!repeat {text: ab, times: 3}",
    "!repeat {text: ab, times: -3}", "!repeat {text: abcdefgh, times: 9000000}",
    "!!set {a: null}", "!!binary aGk=", "!!timestamp 2025-08-12", "!!float abc",
    "!!int 12", "!unknown x", "*undefined",
)]

TOP_KEYS = ["name", "why", "covers", "model", "session", "start_at", "client", "matrix",
            "checks", "steps"]
STEP_KINDS = ["chat", "stream", "retry", "resync", "http", "db", "parallel"]
STEP_KEYS = ["title", "as", "token", "provider", "expect", "capture", "model",
             "current_message_id", "at", "sync", "streaming", "body", "body_file", "raw_body",
             "pad_to", "query", "headers", "auth", "params"]
ANSWER_KEYS = ["reply", "status", "error", "retry_after", "raw", "disconnect", "headers",
               "usage", "no_usage", "id", "model", "for_model", "delay_ms", "timeout",
               "chunk_chars", "gap_ms", "first_gap_ms", "processing", "cut_after",
               "stream_error", "done"]
EXPECT_KEYS = ["status", "body", "names_field", "headers", "provider", "rows", "row_count"]
TOKEN_KEYS = ["expired", "secret", "alg", "sub", "no_exp", "raw"]

leaf = st.one_of(st.sampled_from(PLAUSIBLE), st.sampled_from(PLAUSIBLE),
                 st.sampled_from(PLAUSIBLE), st.sampled_from(TAGGED), st.integers(),
                 st.floats(), st.text(max_size=12), st.booleans(), st.none())
anything = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(["on", "200", "null"])),
                    inner, max_size=4)), max_leaves=12)

# values a scenario would really hold at each key: most trees mix them with the
# anything above, so that the rules after the models (lint) are reached too
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "chat": st.sampled_from(["hello", "hi ${session_id}", "about ${rid}"]),
    "stream": st.sampled_from(["hello", "tell me"]),
    "http": st.sampled_from(["GET /api/health", "POST /api/chat/messages",
                             "GET /api/chat/sessions", "POST /api/chat"]),
    "retry": st.sampled_from(["last", 1, 2]),
    "resync": st.none(),
    "db": st.sampled_from(["select 1", "select * from chat_messages"]),
    "provider": st.one_of(st.sampled_from([
        {"reply": "hi"}, {"status": 429, "retry_after": 5}, {"status": 503},
        {"reply": "hi", "for_model": "m/free"}, {"status": 429, "retry_after": "soon"}]),
        st.lists(st.sampled_from([{"status": 503}, {"reply": "ok"}]), min_size=1, max_size=3)),
    "expect": st.sampled_from([{"status": 200}, {"status": "4xx"}, {"body": {"ok": Raw("!any")}},
                               {"headers": {"x-request-id": Raw("!any")}}, {"status": 999}]),
    "capture": st.sampled_from([{"rid": "data.request_id"}, {"sid": "sessionId"}]),
    "as": st.sampled_from(["bob", "alice", "eve", ""]),
    "model": st.sampled_from(["m/free", "m/paid"]),
    "body": st.sampled_from([{"messages": []}, {"message": "hi", "model": "m/free"},
                             {"sessionId": "${session_id}", "messages": []}]),
    "name": st.sampled_from(["demo", "x"]),
    "session": st.sampled_from(["conv_1", "", "a/b"]),
    "covers": st.sampled_from([["C-MSG-2"], ["C-MSG-99"], []]),
}


def value_for(key: str) -> st.SearchStrategy[Any]:
    good = GOOD.get(key)
    return anything if good is None else st.one_of(good, good, good, anything)


def _shaped(keys: list[str], value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), value, max_size=5)


answer = _shaped(ANSWER_KEYS, anything)
expect = st.fixed_dictionaries({}, optional={
    "status": anything, "body": anything, "headers": anything,
    "provider": _shaped(["calls", "model", "messages", "stream", "path", "headers"], anything),
    "rows": anything, "row_count": anything, "names_field": anything})


@st.composite
def step(draw: st.DrawFn, depth: int = 0, clean: bool = False) -> Any:
    """A step: its kind and up to three more keys; ``clean``: only values of GOOD."""
    if not clean and draw(st.integers(0, 19)) == 0:
        return draw(anything)  # not a step at all
    kind = draw(st.sampled_from(STEP_KINDS if depth == 0 or not clean else ["http", "resync"]))
    if kind == "parallel" and depth == 0:
        value: Any = draw(st.lists(step(depth=1, clean=clean), max_size=3))
    else:
        value = draw(GOOD[kind] if clean else value_for(kind))
    out: dict[str, Any] = {kind: value}
    keys = [k for k in STEP_KEYS if k in GOOD] if clean else STEP_KEYS
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        out[key] = draw(GOOD[key] if clean else st.one_of(value_for(key), {
            "provider": st.one_of(answer, st.lists(answer, max_size=3)),
            "expect": expect,
            "token": _shaped(TOKEN_KEYS, anything),
        }.get(key, anything)))
    return out


scenario = st.fixed_dictionaries(
    {"steps": st.one_of(st.lists(step(), min_size=1, max_size=5),
                        st.lists(step(), min_size=1, max_size=5), anything)},
    optional={k: value_for(k) for k in TOP_KEYS if k != "steps"})
# nearly right: a few steps of real values, some of which break a rule between steps
clean = st.fixed_dictionaries(
    {"name": GOOD["name"], "steps": st.lists(step(clean=True), min_size=1, max_size=5)},
    optional={"model": GOOD["model"], "session": GOOD["session"]})


def emit(value: Any) -> str:
    """YAML flow text for ``value``: strings in JSON quotes, Raw as written."""
    if isinstance(value, Raw):
        return f"{value} "  # a space, so that ', ' or '}' after a tag is not part of it
    if isinstance(value, dict):
        return "{" + ", ".join(f"{emit(k)}: {emit(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(emit(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def document(tree: dict[str, Any], block: bool) -> str:
    """Top-level keys one per line; steps as a block list when ``block``."""
    lines = []
    for key, value in tree.items():
        if key == "steps" and block and isinstance(value, list):
            lines.append("steps:")
            lines += [f"  - {emit(s)}" for s in value] or ["  []"]
        else:
            lines.append(f"{key}: {emit(value)}")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(tree=st.one_of(scenario, clean), block=st.booleans())
def test_scenario_shaped_trees_are_a_scenario_or_a_located_error(
        scratch: Path, tree: dict[str, Any], block: bool) -> None:
    _answer(scratch, document(tree, block).encode())


def test_the_emitter_writes_what_the_loader_reads_back(scratch: Path) -> None:
    """The trees are what the loader sees: a plain one comes back as itself."""
    tree = {"name": "demo", "model": "m/free",
            "steps": [{"chat": "hi ${session_id}", "provider": {"reply": "hi"}}]}
    scratch.write_text(document(tree, block=True))
    [loaded] = load_file(scratch)
    assert loaded.name == "demo" and loaded.steps[0].chat == "hi ${session_id}"
