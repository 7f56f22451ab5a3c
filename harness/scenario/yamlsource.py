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


# Bounds that keep a file from exhausting the stack or the memory of a run: a
# scenario's values nest a few levels deep and hold a few hundred values; long
# texts for limits (C-MSG-4's 20000 characters, a 10 MiB body) fit well inside.
MAX_DEPTH = 64  # levels of mappings and lists, aliases expanded
MAX_VALUES = 100_000  # values in the whole file, aliases expanded
MAX_REPEAT = 16 * 1024 * 1024  # characters !repeat makes, in the whole file


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds Node / NodeList and refuses duplicate keys."""

    repeated = 0  # characters made by !repeat so far (MAX_REPEAT)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # a value of a standard tag that Python cannot hold (``!!int`` of 5000
        # digits, ``!!timestamp 2025-13-45``, ``!!float abc``, an empty ``!!float``):
        # a located error
        try:  # (the base's by name: _FastLoader shares this method)
            return yaml.constructor.BaseConstructor.construct_object(self, node, deep=deep)
        except (ValueError, TypeError, OverflowError, LookupError, AttributeError) as exc:
            tag = node.tag.rsplit(":", 1)[-1]
            empty = isinstance(node, yaml.ScalarNode) and not node.value.strip()
            raise _ContentError(
                None, None, f"cannot read this {tag} value: "
                + ("it is empty" if empty else str(exc)), node.start_mark,
                hint="write the value plainly (quote it to make it a string); "
                "tags such as !!int or !!timestamp are not needed in a scenario",
            ) from None


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    out = Node()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise _ContentError(
                None, None, "a key must be a plain scalar", key_node.start_mark,
                hint="keys are plain words such as 'chat:' or 'provider:'; "
                "quote a key that looks like something else",
            )
        if key in out:
            raise _ContentError(
                None, None, f"duplicate key {key!r}", key_node.start_mark,
                hint=f"write {key!r} once in this mapping (line {out.key_lines[key]} has it "
                "already); YAML would otherwise keep only the last one",
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> NodeList:
    out = NodeList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


class _ContentError(yaml.constructor.ConstructorError):
    """Well-formed YAML that a scenario cannot hold: not a syntax error, its own hint."""

    def __init__(self, *args: Any, hint: str | None = None) -> None:
        super().__init__(*args)
        self.hint = hint


MATCHER_HINT = ("tags: !any, !absent, !type string|integer|number|boolean|list|object|null,"
                " !re PATTERN, !instant TIMESTAMP, !repeat {text, times, prefix, suffix}")


class _MatcherError(_ContentError):
    """A matcher tag with a bad value: not a syntax error, so the tags as the hint."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args, hint=MATCHER_HINT)


def _construct_matcher(loader: _Loader, node: yaml.Node) -> Any:
    """``!any``, ``!absent``, ``!type NAME``, ``!re PATTERN``, ``!instant TS`` in expectations."""
    import re

    from harness.scenario.match import TYPES, Matcher

    kind = node.tag[1:]
    arg = loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(arg, str):
        raise _MatcherError(
            None, None, f"!{kind} takes a plain value", node.start_mark)
    arg = arg.strip()
    if kind in ("any", "absent") and arg:
        raise _MatcherError(
            None, None, f"!{kind} takes no value (got {arg!r})", node.start_mark)
    if kind == "type" and arg not in TYPES:
        raise _MatcherError(
            None, None, f"!type takes one of {', '.join(TYPES)} (got {arg!r})", node.start_mark)
    if kind == "re":
        try:
            re.compile(arg)
        except re.error as exc:
            raise _MatcherError(
                None, None, f"!re {arg!r} is not a regular expression: {exc}",
                node.start_mark) from None
    if kind == "instant" and "${" not in arg:
        from harness.contract.oracle import parse_ts

        if parse_ts(arg) is None:
            raise _MatcherError(
                None, None, f"!instant takes an ISO-8601 timestamp (got {arg!r})",
                node.start_mark)
    return Matcher(kind, arg)


for _tag in ("!any", "!absent", "!type", "!re", "!instant"):
    _Loader.add_constructor(_tag, _construct_matcher)

_REPEAT_KEYS = {"text", "times", "prefix", "suffix"}


def _construct_repeat(loader: _Loader, node: yaml.Node) -> str:
    """``!repeat {text: "😀", times: 20000, prefix: "  "}``: long strings at their edges."""
    if not isinstance(node, yaml.MappingNode):
        raise _MatcherError(None, None, "!repeat takes a mapping {text, times, prefix, suffix}",
                            node.start_mark)
    spec = _construct_mapping(loader, node)
    unknown = set(spec) - _REPEAT_KEYS
    text, times = spec.get("text"), spec.get("times")
    prefix, suffix = spec.get("prefix", ""), spec.get("suffix", "")
    if unknown or not all(isinstance(v, str) for v in (text, prefix, suffix)) or not isinstance(
            times, int) or isinstance(times, bool) or not 0 <= times <= MAX_REPEAT:
        raise _MatcherError(
            None, None, f"!repeat takes {{text: STRING, times: 0..{MAX_REPEAT}, prefix: STRING, "
            "suffix: STRING}" + (f"; unknown key(s) {sorted(unknown)}" if unknown else ""),
            node.start_mark)
    assert isinstance(text, str) and isinstance(prefix, str) and isinstance(suffix, str)
    size = len(prefix) + len(text) * times + len(suffix)
    loader.repeated += size
    if loader.repeated > MAX_REPEAT:
        raise _ContentError(
            None, None, f"!repeat would make {size} characters"
            + (f" ({loader.repeated} in this file)" if loader.repeated > size else "")
            + f"; a file's !repeat texts make at most {MAX_REPEAT} (16 MiB)", node.start_mark,
            hint="lower 'times' or shorten 'text'; for a large request body use pad_to "
            "(up to 64 MiB of spaces after the JSON)")
    return prefix + text * times + suffix


_Loader.add_constructor("!repeat", _construct_repeat)

# Timestamps stay strings: they go into JSON bodies as sent, and the harness
# parses them itself where it needs an instant.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

_Fast: type[Any] | None = None
if getattr(yaml, "__with_libyaml__", False):
    class _FastLoader(yaml.CSafeLoader):
        """libyaml's parser with :class:`_Loader`'s constructors and resolvers: the same
        values and lines, ~10x faster. A file it refuses is read again by :class:`_Loader`,
        whose errors (and their hints) are the ones a user sees."""

        repeated = 0
        construct_object = _Loader.construct_object
        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
        yaml_constructors = _Loader.yaml_constructors

    _Fast = _FastLoader


def load(path: Path, *, display: str | None = None) -> Any:
    """Parse one YAML file; a syntax error becomes a :class:`ScenarioError`."""
    shown = display or str(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScenarioError(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            location=Location(shown, line),
            hint="save the scenario as UTF-8",
        ) from None
    except OSError as exc:
        if path.is_symlink() and not path.exists():
            raise dangling(path, shown) from None
        raise ScenarioError(
            f"cannot read the file: {exc.strerror}", location=Location(shown, 1),
            hint="check that the file exists and may be read",
        ) from None
    return loads(text, display=shown)


def dangling(path: Path, display: str | None = None) -> ScenarioError:
    """The error for a scenario file that is a symbolic link to nothing."""
    import os

    return ScenarioError(
        f"the link points to {os.readlink(path)!r}, which does not exist",
        location=Location(display or str(path), 1),
        hint="fix or remove the link (every .yaml and .yml file of a scenario folder "
        "is loaded)")


def _bounds(text: str, loader_class: type[Any] = _Loader) -> None:
    """Refuse nesting deeper than MAX_DEPTH or more than MAX_VALUES values, aliases
    expanded, before anything is built (building recurses once per level, and an
    alias of an alias of a list can stand for billions of values)."""
    loader = loader_class(text)
    try:
        depth, total = 0, 0
        # per open collection: [anchor, values before it, deepest level below it]
        open_: list[list[Any]] = []
        size: dict[str, int] = {}  # an anchor's values, aliases inside expanded
        height: dict[str, int] = {}  # an anchor's levels of nesting
        while loader.check_event():
            event = loader.get_event()
            mark = event.start_mark
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in size:
                    continue  # undefined or recursive: the loader says which
                total += size[event.anchor]
                reached = depth + height[event.anchor]
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor:
                    size[event.anchor], height[event.anchor] = 1, 0
                reached = depth
            elif isinstance(event, yaml.CollectionStartEvent):
                total += 1
                depth += 1
                open_.append([event.anchor, total, depth])
                reached = depth
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, before, deepest = open_.pop()
                if anchor:
                    size[anchor], height[anchor] = total - before + 1, deepest - depth + 1
                depth -= 1
                if open_:
                    open_[-1][2] = max(open_[-1][2], deepest)
                continue
            else:
                continue
            if open_:
                open_[-1][2] = max(open_[-1][2], reached)
            if reached > MAX_DEPTH:
                raise _ContentError(
                    None, None, f"values nest more than {MAX_DEPTH} levels deep", mark,
                    hint="a scenario's mappings and lists nest a few levels; to send a "
                    "deeply nested request body, write it as raw_body (sent as is)")
            if total > MAX_VALUES:
                raise _ContentError(
                    None, None, f"the file holds more than {MAX_VALUES} values"
                    + (" (aliases expanded)" if size else ""), mark,
                    hint="a scenario holds a few hundred values; aliases (*name) of lists "
                    "that hold aliases multiply; for a large body use !repeat or pad_to")
    finally:
        loader.dispose()


def loads(text: str, *, display: str = "<string>") -> Any:
    if _Fast is not None:
        try:
            _bounds(text, _Fast)
            return yaml.load(text, Loader=_Fast)
        except Exception:  # said below, by the loader whose errors are shown
            pass
    try:
        _bounds(text)
        return yaml.load(text, Loader=_Loader)
    except _ContentError as exc:
        mark = exc.problem_mark
        raise ScenarioError(
            exc.problem or "bad value",
            location=Location(display, mark.line + 1 if mark else 0),
            hint=exc.hint,
        ) from None
    except yaml.reader.ReaderError as exc:
        # not a MarkedYAMLError: it knows the character's position, not its line
        line = text[:exc.position].count("\n") + 1
        raise ScenarioError(
            f"YAML syntax error: unacceptable character #x{exc.character:04x} "
            "(control characters cannot appear in YAML)",
            location=Location(display, line),
            hint="remove it, or write it as an escape such as \\u0000 inside double quotes",
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, display) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"YAML error: {exc}", location=Location(display, 1),
                            hint="check the file's syntax") from None


def _syntax_error(exc: yaml.MarkedYAMLError, display: str) -> ScenarioError:
    """The line where the mistake most likely is, and a hint that fits it."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    hint = ("check the indentation and quoting around that line "
            "(a value with ': ' or '#' in it needs quotes)")
    if exc.context_mark is not None and ("<stream end>" in problem
                                         or "end of stream" in problem):
        # "got <stream end>" points past the file; where the open thing began helps more
        mark = exc.context_mark
    elif (exc.context_mark is not None and mark is not None and "flow" in context
          and mark.line > exc.context_mark.line):
        # a '{' or '[' never closed: the parser notices on a later line
        context = f"{context} opened here, still open at line {mark.line + 1}"
        mark = exc.context_mark
        hint = "close the '{' or '[' on this line, or quote the value"
    if problem.startswith("could not determine a constructor for the tag"):
        return ScenarioError(
            f"unknown tag {problem.rsplit(' ', 1)[-1]}",
            location=Location(display, mark.line + 1 if mark else 0), hint=MATCHER_HINT)
    if context:
        problem = f"{problem} ({context})"
    return ScenarioError(
        f"YAML syntax error: {problem}",
        location=Location(display, mark.line + 1 if mark else 0,
                          mark.column + 1 if mark else 0),
        hint=hint,
    )
