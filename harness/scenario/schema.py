"""The JSON Schema of scenario files, generated from the models and the step-kind table.

Nothing here is written by hand but the few rules a model checks in a validator
(one provider answer kind, one request body) and how YAML tags look to an
editor. ``chat-harness schema`` prints it; the wheel carries a copy
(``harness/scenario/scenario.schema.json``, kept equal by a test), which a YAML
language server uses for completion and checks as a file is typed::

    # yaml-language-server: $schema=PATH/TO/scenario.schema.json

The matcher tags (``!any``, ``!absent``, ``!type``, ``!re``, ``!instant``) are
scalars an editor reads as text, and ``!repeat`` a mapping; an editor must be
told so (``yaml.customTags``: :data:`CUSTOM_TAGS`), and the schema takes a
``!repeat`` mapping wherever a long text is usual (:data:`REPEATABLE`).
What the schema cannot say (a matcher outside ``expect``, a ``retry`` of a step
that does not fail, a variable no step captures) the loader still refuses, with
its line.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from harness.contract.clauses import clause_ids
from harness.scenario.lint import ACTOR, SESSION_ID
from harness.scenario.model import HTTP_METHODS, ClientOptions, Header
from harness.scenario.steps import KINDS, StepKind

SHIPPED = Path(__file__).with_name("scenario.schema.json")
# what a YAML language server must be told of the loader's tags (yaml.customTags)
CUSTOM_TAGS = ("!any scalar", "!absent scalar", "!type scalar", "!re scalar",
               "!instant scalar", "!repeat mapping")
# the keys whose text a ``!repeat {text, times, prefix, suffix}`` mapping may write
REPEATABLE = ("chat", "stream", "raw_body", "reply", "raw")
# fields of the models that no file writes (set by the loader)
_INTERNAL = ("kind", "parsed", "before_parsed", "lines")

_REPEAT = {
    "type": "object",
    "description": "!repeat {text, times, prefix, suffix}: prefix + text × times + suffix "
                   "(long texts at a limit's edge; at most 16 MiB per file).",
    "properties": {
        "text": {"type": "string"},
        "times": {"type": "integer", "minimum": 0, "maximum": 16 * 1024 * 1024},
        "prefix": {"type": "string"},
        "suffix": {"type": "string"},
    },
    "required": ["text", "times"],
    "additionalProperties": False,
    "examples": [{"text": "😀", "times": 20000}],
}

# rules the models check in validators, as JSON Schema
_RULES: dict[str, dict[str, Any]] = {
    "ProviderAnswer": {
        "anyOf": [{"required": ["reply"]}, {"required": ["raw"]}, {"required": ["status"]},
                  {"required": ["disconnect"], "properties": {"disconnect": {"const": True}}}],
        "not": {"anyOf": [
            {"required": ["reply", "raw"]},
            {"required": ["reply", "disconnect"], "properties": {"disconnect": {"const": True}}},
            {"required": ["reply", "status"], "properties": {"status": {"not": {"const": 200}}}},
        ]},
    },
    "HttpStep": {
        "not": {"anyOf": [{"required": ["body", "body_file"]}, {"required": ["body", "raw_body"]},
                          {"required": ["body_file", "raw_body"]}]},
    },
}


def _refine(root: dict[str, Any], defs: dict[str, Any]) -> None:
    """What the loader checks beyond the models, where a schema can say it (from the same
    sources: the clause ids, the patterns of lint, the HTTP methods, the client options)."""
    props = root["properties"]
    props["covers"]["items"] = {"type": "string", "enum": clause_ids()}
    props["session"]["anyOf"][0]["pattern"] = SESSION_ID.pattern
    client = _model(ClientOptions, {})["properties"]
    props["matrix"] = {
        "type": "object", "description": props["matrix"]["description"],
        "examples": props["matrix"]["examples"], "additionalProperties": False,
        "properties": {name: {"type": "array", "minItems": 1, "items": {
            k: v for k, v in sub.items() if k not in ("default", "description", "title")}}
            for name, sub in client.items()},
    }
    methods = "|".join(HTTP_METHODS)
    defs["HttpStep"]["properties"]["http"]["pattern"] = rf"^(?:{methods}) /\S*$"
    for sub in defs.values():
        actor = sub.get("properties", {}).get("as")
        if actor is not None and actor.get("type") == "string":
            actor["pattern"] = ACTOR.pattern


def _clean(node: Any) -> Any:
    """Drop pydantic's per-property titles (an editor shows the key itself)."""
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items()
                if not (k == "title" and isinstance(v, str) and "properties" not in node)}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _model(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """``model``'s schema, its nested models moved into ``defs``."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        defs.setdefault(name, sub)
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    for key, prop in schema.get("properties", {}).items():
        info = fields.get(key)
        if set(prop) == {"$ref"} and info is not None and info.description:
            # draft-07 reads nothing beside a $ref: the key's description goes around it
            schema["properties"][key] = {"allOf": [prop], "description": info.description}
    return schema


def _step_schema(kind: StepKind, defs: dict[str, Any]) -> dict[str, Any]:
    schema = _model(kind.model, defs)
    props = schema["properties"]
    for name in (*_INTERNAL, *(k for k in KINDS if k != kind.name)):
        props.pop(name, None)
    schema["required"] = [kind.name, *(r for r in schema.get("required", [])
                                       if r in props and r != kind.name)]
    if kind.name == "parallel":
        props["parallel"].update(items={"$ref": "#/$defs/GroupStep"}, minItems=2)
        props["before"]["items"] = {"$ref": "#/$defs/GroupStep"}
    return schema


def _bare(kind: StepKind) -> bool:
    """Whether a step may be the kind's name alone (``- resync``)."""
    try:
        kind.model.model_validate({kind.name: None})
    except ValueError:
        return False
    return True


def _union(kinds: list[StepKind]) -> dict[str, Any]:
    """One step: a mapping with exactly one kind key, then that kind's keys only."""
    mapping: dict[str, Any] = {
        "type": "object",
        "oneOf": [{"required": [k.name]} for k in kinds],
        "allOf": [{"if": {"required": [k.name]}, "then": {"$ref": f"#/$defs/{k.model.__name__}"}}
                  for k in kinds],
    }
    bare = [k.name for k in kinds if _bare(k)]
    if not bare:
        return mapping
    # if/then/else rather than anyOf: a validator then names the misspelt key itself
    return {"if": {"type": "string"},
            "then": {"enum": bare, "description": "a step of this kind with nothing to give"},
            "else": mapping}


def generate() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a scenario file."""
    defs: dict[str, Any] = {}
    kinds = list(KINDS.values())
    for kind in kinds:
        defs[kind.model.__name__] = _step_schema(kind, defs)
    root = _model(Header, defs)
    root["properties"]["steps"].update(items={"$ref": "#/$defs/Step"}, minItems=1)
    defs["Step"] = _union(kinds)
    defs["Step"]["description"] = "One step: " + ", ".join(k.name for k in kinds) + "."
    defs["GroupStep"] = _union([k for k in kinds if k.parallel])
    defs["GroupStep"]["description"] = "A step of a parallel group (any kind but parallel)."
    defs["Repeat"] = _REPEAT
    _refine(root, defs)
    for name, rules in _RULES.items():
        defs[name].update(copy.deepcopy(rules))
    for sub in defs.values():
        for key, prop in sub.get("properties", {}).items():
            if key in REPEATABLE and prop.get("type") == "string":
                sub["properties"][key] = {
                    k: v for k, v in prop.items() if k not in ("type", "anyOf")
                } | {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/Repeat"}]}
            elif key in REPEATABLE and {"type": "string"} in prop.get("anyOf", []):
                prop["anyOf"].append({"$ref": "#/$defs/Repeat"})
    root = _clean(root)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "chat-harness scenario",
        "description": "A chat-harness scenario file (generated by `chat-harness schema` "
                       "from the scenario models). Editors: tell the YAML language server "
                       "the tags: yaml.customTags = " + json.dumps(list(CUSTOM_TAGS)) + ".",
        **{k: v for k, v in root.items() if k not in ("title", "description", "$defs")},
        "$defs": _clean(dict(sorted(defs.items()))),
    }


def render() -> str:
    """The schema as the file ``chat-harness schema`` writes."""
    return json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"


__all__ = ["CUSTOM_TAGS", "REPEATABLE", "SHIPPED", "generate", "render"]
