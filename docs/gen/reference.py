"""The reference parts of the documentation, generated from the code at build time.

A page holds a line ``<!-- generated: NAME -->``; the mkdocs hook
(``docs/gen/hooks.py``) replaces it with ``SECTIONS[NAME]()``. Nothing listed here
is written by hand: the commands and options come from the argparse parser (whose
run options are the table of ``harness/options.py``), the step kinds from their
table (``harness/scenario/steps``), the scenario keys from the JSON Schema (made
from the models), the checks from ``harness/checks/catalog.py`` and the kill
matrix's owners, the clauses and the scenarios covering them from
``chat-harness coverage``'s data, the provider's control API from its routes.

``python docs/gen/reference.py NAME`` prints one section (for a look without mkdocs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the checkout (for `python docs/gen/reference.py`)


def _cell(text: Any) -> str:
    return str(text).replace("``", "`").replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# -- the command line ---------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _option_rows(parser: argparse.ArgumentParser, table: set[str]) -> list[tuple[str, ...]]:
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(
                action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            flags = ", ".join(f"`{f}`" for f in action.option_strings)
        else:
            flags = f"`{action.metavar or action.dest.upper()}`"
        takes = "" if action.nargs == 0 else (
            action.metavar or ("|".join(action.choices) if action.choices else "VALUE"))
        if isinstance(action, argparse._AppendAction):
            takes += " (repeatable)"
        if action.nargs in ("*", "?"):
            takes = "optional" if action.nargs == "?" else "any number"
        note = " (run option)" if set(action.option_strings) & table else ""
        rows.append((flags, f"`{takes}`" if takes and " " not in takes else takes,
                     (action.help or "") + note))
    return rows


def cli() -> str:
    """Every command of ``chat-harness`` and every option it takes."""
    from harness.cli import build_parser
    from harness.options import OPTIONS

    table = {o.flag for o in OPTIONS}
    out: list[str] = []

    def walk(parser: argparse.ArgumentParser, words: list[str], helps: dict[str, str]) -> None:
        for name, sub in _subcommands(parser).items():
            command = [*words, name]
            nested = _subcommands(sub)
            out.append(f"### `{' '.join(command)}`\n")
            if helps.get(name):
                out.append(helps[name][0].upper() + helps[name][1:] + ".\n")
            usage = sub.format_usage().removeprefix("usage: ").strip()
            out.append(f"```text\n{usage}\n```\n")
            rows = _option_rows(sub, table)
            if rows:
                out.append(_table(("argument", "takes", "what"), rows) + "\n")
            if nested:
                walk(sub, command, _helps(sub))

    parser = build_parser()
    walk(parser, ["chat-harness"], _helps(parser))
    return "\n".join(out)


def options() -> str:
    """The run options of ``harness/options.py``: which commands take each."""
    from harness.options import OPTIONS

    commands = ("run", "pytest", "explore", "load", "fuzz", "mutants")
    rows = []
    for o in OPTIONS:
        rows.append((f"`{o.flag}`", *("✓" if c in o.commands else "" for c in commands),
                     o.help))
    return _table(("option", *commands, "what"), rows)


# -- the scenario language -------------------------------------------------------------------


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:  # a model of its own: its table is on the same page
        name = prop["$ref"].rsplit("/", 1)[-1]
        anchor = "step-kinds" if name in ("Step", "GroupStep") else name.lower()
        return f"[{name}](#{anchor})"
    if "const" in prop:
        return json.dumps(prop["const"])
    if "enum" in prop:
        if all(str(v).startswith("C-") for v in prop["enum"]):
            return "clause id ([the clauses](contract.md#clauses-and-the-scenarios-covering-them))"
        if len(prop["enum"]) > 8:
            return f"one of {len(prop['enum'])} values"
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "allOf" in prop and len(prop["allOf"]) == 1:
        return _type(prop["allOf"][0])
    if "anyOf" in prop:
        forms = [_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(dict.fromkeys(forms))
    kind = prop.get("type", "any")
    if kind == "array":
        inner = _type(prop.get("items", {}))
        return f"list of {inner}" if inner != "any" else "list"
    if kind == "object" and "additionalProperties" in prop and isinstance(
            prop["additionalProperties"], dict):
        return f"mapping of {_type(prop['additionalProperties'])}"
    bounds = [f"≥ {prop['minimum']}" if "minimum" in prop else "",
              f"≤ {prop['maximum']}" if "maximum" in prop else ""]
    extra = ", ".join(b for b in bounds if b)
    return {"string": "text", "integer": "integer", "boolean": "true/false",
            "object": "mapping", "number": "number"}.get(kind, kind) + (
                f" ({extra})" if extra else "")


def _keys(definition: dict[str, Any]) -> str:
    required = set(definition.get("required", []))
    rows = []
    for key, prop in definition.get("properties", {}).items():
        default = "required" if key in required else (
            json.dumps(prop["default"], ensure_ascii=False) if "default" in prop else "")
        example = json.dumps(prop["examples"][0], ensure_ascii=False) if prop.get(
            "examples") else ""
        rows.append((f"`{key}`", _type(prop), default, prop.get("description", ""),
                     f"`{example}`" if example else ""))
    return _table(("key", "type", "default", "what", "example"), rows)


def step_kinds() -> str:
    """The step kinds of the table, in its order."""
    from harness.scenario.steps import KINDS

    rows = []
    for kind in KINDS.values():
        doc = " ".join((kind.model.__doc__ or "").split())
        rows.append((f"`{kind.name}`", doc, "yes" if kind.parallel else "no",
                     f"[{kind.model.__name__}](#{kind.model.__name__.lower()})"))
    return _table(("step", "what it does", "in parallel:", "keys"), rows)


def scenario_keys() -> str:
    """Every key of a scenario file, by where it stands, from the JSON Schema."""
    from harness.scenario import schema
    from harness.scenario.steps import KINDS

    doc = schema.generate()
    defs = doc["$defs"]
    out = ["### The file\n", _keys(doc) + "\n"]
    for kind in KINDS.values():
        name = kind.model.__name__
        out.append(f"### {name}\n\n`{kind.name}:` steps. "
                   f"{(kind.model.__doc__ or '').strip().splitlines()[0]}\n")
        out.append(_keys(defs[name]) + "\n")
    for name in ("ProviderAnswer", "StreamError", "Expect", "ProviderExpect", "Token",
                 "ClientOptions", "Repeat"):
        text = defs[name].get("description", "").strip().splitlines()
        out.append(f"### {name}\n\n{text[0] if text else ''}\n")
        out.append(_keys(defs[name]) + "\n")
    return "\n".join(out)


def editor_tags() -> str:
    """The ``yaml.customTags`` setting a YAML language server needs."""
    from harness.scenario import schema

    return "```json\n" + json.dumps({"yaml.customTags": list(schema.CUSTOM_TAGS)},
                                    indent=2) + "\n```"


# -- checks, clauses, provider ----------------------------------------------------------------


def checks() -> str:
    """The checks, the clauses they guard, the mutants they own."""
    from harness.checks.catalog import ABOUT, switchable
    from harness.killmatrix import OWNERS

    owned: dict[str, list[str]] = {}
    for mutant, (names, _clauses) in sorted(OWNERS.items()):
        for name in names:
            owned.setdefault(name, []).append(f"`{mutant}`")
    rows = [(f"`{check.value}`", about.asserts, ", ".join(about.clauses) or "the scenario's",
             about.when, "yes" if switchable(check) else "no",
             ", ".join(owned.get(check.value, [])))
            for check, about in ABOUT.items()]
    return _table(("check", "what it asserts", "clauses", "runs", "`checks:` may switch off",
                   "mutants it owns (kill matrix)"), rows)


def clauses() -> str:
    """Each clause, its title and the scenarios covering it (``chat-harness coverage``)."""
    from harness.config import bundled_scenarios
    from harness.coverage import coverage

    report = coverage([bundled_scenarios() or ROOT / "scenarios"])  # the harness's own suite
    rows = [(f"`{c.id}`", c.title, c.section.title,
             ", ".join(report.by_clause.get(c.id, ())) or "**none**")
            for c in report.clauses]
    covered = sum(1 for c in report.clauses if report.by_clause.get(c.id))
    return (f"{covered} of {len(report.clauses)} clauses covered by the scenarios of "
            "`scenarios/`.\n\n" + _table(("clause", "title", "section", "scenarios"), rows))


def provider_api() -> str:
    """The control API's routes and the JSON forms of answers."""
    from harness.provider import wire
    from harness.provider.engine import ScriptedProvider
    from harness.provider.server import control_routes

    rows = []
    for route in control_routes(ScriptedProvider()):
        methods = "/".join(sorted(m for m in (route.methods or ()) if m != "HEAD"))
        doc = " ".join((route.endpoint.__doc__ or "").split())
        rows.append((methods, f"`{route.path}`", doc.replace("``", "`")))
    out = [_table(("method", "path", "what"), rows), ""]
    out.append(f"Answers are JSON objects with a `\"kind\"` ({', '.join(wire.KINDS)}) and "
               "these fields:\n")
    for kind, cls in wire.KINDS.items():
        out.append(f"**`{kind}`**: {(cls.__doc__ or '').strip()}\n")
        fields = []
        for f in dataclasses.fields(cls):
            default = ("required" if f.default is dataclasses.MISSING
                       and f.default_factory is dataclasses.MISSING else
                       json.dumps(f.default) if f.default is not dataclasses.MISSING else "{}")
            fields.append((f"`{f.name}`", str(f.type), default))
        out.append(_table(("field", "type", "default"), fields) + "\n")
    return "\n".join(out)


SECTIONS: dict[str, Callable[[], str]] = {
    "cli": cli, "options": options, "step-kinds": step_kinds,
    "scenario-keys": scenario_keys, "editor-tags": editor_tags, "checks": checks,
    "clauses": clauses, "provider-api": provider_api,
}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(SECTIONS[sys.argv[1]]())
