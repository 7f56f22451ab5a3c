"""Load YAML keeping where every mapping, key, item and value came from.

Mappings load as :class:`Node` dicts and sequences as :class:`NodeList`, each
knowing its own 1-based line and the line of every key or item, so an error
found later (by validation, or at run time) can still say ``file:line``.
PyYAML's marks are 0-based; everything here is 1-based.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import Location, ScenarioError


class Node(dict[Any, Any]):
    """A mapping that remembers the lines of itself and of its keys."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class NodeList(list[Any]):
    """A sequence that remembers its line and its items' lines."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds Node / NodeList and refuses duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    out = Node()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain scalar", key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> NodeList:
    out = NodeList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


# Timestamps stay strings: they go into JSON bodies as sent, and the harness
# parses them itself where it needs an instant.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load(path: Path, *, display: str | None = None) -> Any:
    """Parse one YAML file; a syntax error becomes a :class:`ScenarioError`."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            location=Location(shown),
            hint="save the scenario as UTF-8",
        ) from None
    except OSError as exc:
        raise ScenarioError(
            f"cannot read the file: {exc.strerror}", location=Location(shown)
        ) from None
    return loads(text, display=shown)


def loads(text: str, *, display: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "<stream end>" in (exc.problem or ""):
            # "got <stream end>" points past the file; where the open thing began helps more
            mark = exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        column = mark.column + 1 if mark is not None else 0
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise ScenarioError(
            f"YAML syntax error: {problem}",
            location=Location(display, line, column),
            hint="check the indentation and quoting around that line "
            "(a value with ': ' or '#' in it needs quotes)",
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"YAML error: {exc}", location=Location(display)) from None
