"""The JSON Schema of scenario files: generated, shipped, and as strict as it can be.

Files are read here as a YAML language server reads them with the tags declared
(``yaml.customTags``, :data:`harness.scenario.schema.CUSTOM_TAGS`): a matcher is
its text, ``!repeat`` its mapping, a timestamp a string. Every shipped scenario and
every good file of the bad-scenario corpus (those refused only when they run) must
validate; every file the loader refuses for its shape must be refused by the schema
too, unless its reason is one a schema cannot see (``BEYOND``, each with why).
``check-jsonschema`` (the validator pre-commit hooks and CI use, on the same draft a
YAML language server reads) flags a misspelt step key.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from runs import ROOT
from test_corpus import LOADING, RUNNING, Case

from harness.cli import main
from harness.scenario import schema
from harness.scenario.load import load_file
from harness.scenario.model import ChatStep, Header, ProviderAnswer
from harness.scenario.steps import KINDS

SCHEMA = schema.generate()
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
SCENARIOS = sorted(p for p in (ROOT / "scenarios").rglob("*") if p.suffix in (".yaml", ".yml"))


class _EditorLoader(yaml.SafeLoader):
    """YAML as a language server with the tags declared reads it."""


for _tag in schema.CUSTOM_TAGS:
    name, shape = _tag.split()
    _EditorLoader.add_constructor(name, (lambda loader, node: loader.construct_scalar(node))
                                  if shape == "scalar" else
                                  (lambda loader, node: loader.construct_mapping(node, deep=True)))
_EditorLoader.add_constructor("tag:yaml.org,2002:timestamp",
                              lambda loader, node: loader.construct_scalar(node))


def editor_view(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_EditorLoader)


# load-time refusals a JSON Schema cannot express, by file name (tests/corpus/bad/)
BEYOND: dict[str, str] = {
    r"body-(binary|inf|key-\w+|nested-400-deep|set|timestamp-tag)|expect-body-nan|"
    r"duplicate-[\w-]+|yaml-alias-recursive|timestamp-tag-[\w-]+":
        "what YAML writes that JSON cannot hold: an editor's parser reads it its own way",
    r"repeat-(text-times-huge|twice-too-long)": "a bound on the whole file (!repeat's sum)",
    r"matcher-[\w-]+":
        "a matcher is text to an editor; where it may stand and its argument are the loader's",
    r"var-[\w-]+|template-[\w-]+|parallel-fresh-no-name|users-unknown-actor":
        "${...} variables: what earlier steps capture, which actors act",
    r"retry-(last-already-retried|names-http-step|nothing-failed|number-too-far|of-a-success|"
    r"zero)|parallel-retry-nothing-failed|(parallel-before-)?resync-first|"
    r"(parallel-)?chat-without-model|(parallel-)?for-model-(second-answer|typo|unused)|"
    r"expect-(code-)?contradicts-provider|parallel-different-scripts":
        "depends on other steps, the scenario's model or the provider script (lint)",
    r"(chat-at|start-at)-not-a-timestamp": "ISO-8601 is wider than JSON Schema's date-time",
    r"status-float": "JSON Schema's integer takes 429.0",
    r"retry-after-(negative|word)": "retry_after: seconds or an HTTP date, judged by the loader",
}


def _beyond(case: Case) -> str | None:
    return next((why for names, why in BEYOND.items()
                 if re.fullmatch(rf"(?:{names})\.ya?ml", case.path.name, re.IGNORECASE)), None)


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert json.loads(schema.SHIPPED.read_text(encoding="utf-8")) == SCHEMA, (
        "regenerate it: chat-harness schema -o harness/scenario/scenario.schema.json")
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_every_step_kind_matcher_tag_and_provider_answer_is_in_it() -> None:
    defs = SCHEMA["$defs"]
    step = defs["Step"]["else"]
    assert [r["required"] for r in step["oneOf"]] == [[k] for k in KINDS]
    for kind in KINDS.values():
        props = defs[kind.model.__name__]["properties"]
        assert kind.name in props and "as" in props and "kind" not in props, kind.name
    assert [r["required"] for r in defs["GroupStep"]["else"]["oneOf"]] == [
        [k.name] for k in KINDS.values() if k.parallel]
    answer = defs["ProviderAnswer"]["properties"]
    assert set(answer) == {f.alias or n for n, f in ProviderAnswer.model_fields.items()}
    assert {"!any", "!absent", "!type", "!re", "!instant", "!repeat"} == {
        t.split()[0] for t in schema.CUSTOM_TAGS}
    assert "customTags" in SCHEMA["description"]


def test_keys_carry_descriptions_and_examples() -> None:
    for model in (Header, ChatStep, ProviderAnswer):
        for name, field in model.model_fields.items():
            if name in ("kind", "parsed", "before_parsed", "lines"):
                continue
            assert field.description, f"{model.__name__}.{name} has no docstring"
    chat = SCHEMA["$defs"]["ChatStep"]["properties"]["chat"]
    assert chat["description"] and chat["examples"] == ["what is amazon bedrock?"]
    assert sum("examples" in p for d in SCHEMA["$defs"].values()
               for p in d.get("properties", {}).values()) >= 40


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.relative_to(ROOT).as_posix()
                                                 for p in SCENARIOS])
def test_every_shipped_scenario_validates(path: Path) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(editor_view(path))]
    assert not errors, errors[:3]


@pytest.mark.parametrize("case", RUNNING, ids=[c.path.stem for c in RUNNING])
def test_the_corpus_files_that_load_validate(case: Case) -> None:
    load_file(case.path)  # refused only when it runs: the file itself is good
    errors = [e.message for e in VALIDATOR.iter_errors(editor_view(case.path))]
    assert not errors, errors[:3]


@pytest.mark.parametrize("case", LOADING, ids=[c.path.stem for c in LOADING])
def test_a_file_refused_for_its_shape_is_refused_by_the_schema(case: Case) -> None:
    try:
        doc = editor_view(case.path)
    except (yaml.YAMLError, ValueError, LookupError):  # !!int '', not UTF-8, ...
        return  # not YAML to an editor either: its parser says so, before any schema
    valid = VALIDATOR.is_valid(doc)
    why = _beyond(case)
    if why is None:
        assert not valid, f"{case.path.name}: the loader refuses it ({case.phrase}), the " \
            "schema lets it through"
    else:  # the exceptions stay honest: one the schema learns to refuse leaves BEYOND
        assert valid, f"{case.path.name} is refused by the schema now: drop {why!r}"


def test_chat_harness_schema_prints_and_writes_it(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA
    out = tmp_path / "editor" / "scenario.schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == SCHEMA
    assert "yaml-language-server: $schema=" in capsys.readouterr().out


def _check_jsonschema() -> list[str]:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("check-jsonschema is a dev dependency: pip install -e '.[dev]'")
    return [found, "--schemafile", str(schema.SHIPPED)]


def test_check_jsonschema_flags_a_misspelt_step_key(tmp_path: Path) -> None:
    """What an editor shows under the key, from a validator that reads YAML itself."""
    plain = [p for p in SCENARIOS if not re.search(r"!\w", p.read_text(encoding="utf-8"))]
    assert len(plain) > 40  # the ones without tags (check-jsonschema knows none)
    ok = subprocess.run([*_check_jsonschema(), *map(str, plain)], capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: typo\nmodel: m/free\nsteps:\n  - chat: hello\n"
                    "    provder: {reply: hi}\n", encoding="utf-8")
    bad = subprocess.run([*_check_jsonschema(), str(typo)], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "$.steps[0]" in bad.stdout and "'provder' was unexpected" in bad.stdout, bad.stdout
