"""What the values of a scenario file may be, checked before the models see them.

The models check each key's shape, but a request ``body`` (or ``params``,
``expect.body``, ``expect.rows``) takes any JSON, so what YAML can write and
JSON cannot hold would get through them and break the run later: a matcher
such as ``!any`` where a value is sent (it only tests an answer), ``!!set`` or
``!!binary`` values, ``.inf`` / ``.nan``, keys YAML reads as numbers or
booleans (``on:``, ``200:``), and a ``${`` that starts no variable (``${nope``,
``${ session_id }``), which would be sent as is. Each is refused here with
its line, its key path and a hint.
"""

from __future__ import annotations

import math
import re
from typing import Any

from harness.errors import Location, ScenarioError
from harness.scenario import template, yamlsource

# where a matcher tests an answer: everything inside these keys of a step
_EXPECTED = re.compile(
    r"^steps\[\d+\](?:\.parallel\[\d+\])?\.expect\.(?:body|headers|rows)(?:$|[.\[])")
# what ${...} is not looked for in: JSON paths, and what is never sent or compared
_NO_VARIABLES = re.compile(r"^steps\[\d+\](?:\.parallel\[\d+\])?\.capture(?:$|\.)")
_STEPS = re.compile(r"^steps\[\d+\]")
_JSON = (str, int, float, bool, type(None), dict, list)


def check(doc: yamlsource.Node, display: str) -> None:
    """Raise a :class:`ScenarioError` for the first value of ``doc`` a scenario cannot hold."""
    from harness.scenario.match import Matcher

    # a stack, not recursion: yamlsource bounds the depth, but a walk need not rely on it
    todo: list[tuple[Any, str, int]] = [(doc, "", doc.line)]
    while todo:
        value, path, line = todo.pop()
        _value(value, path, Location(display, line), Matcher)
        if isinstance(value, yamlsource.Node):
            for key in reversed(list(value)):
                _key(key, path, Location(display, value.line_of(key)))
                todo.append((value[key], f"{path}.{key}" if path else str(key),
                             value.line_of(key)))
        elif isinstance(value, yamlsource.NodeList):
            for i in reversed(range(len(value))):
                todo.append((value[i], f"{path}[{i}]", value.line_of(i)))


def _key(key: Any, path: str, where: Location) -> None:
    if isinstance(key, str):
        return
    raise ScenarioError(
        f"a key must be text, got {key!r} ({type(key).__name__})", location=where,
        key=f"{path}.{key}" if path else str(key),
        hint="quote the key: YAML reads yes/no/on/off/true/false as booleans, "
        "null and ~ as nothing and bare digits as numbers")


def _value(value: Any, path: str, where: Location, matcher: type) -> None:
    if isinstance(value, matcher):
        if not _EXPECTED.match(path):
            raise ScenarioError(
                f"a matcher ({value!r}) tests an answer; here the value is sent or used as is",
                location=where, key=path or None,
                hint="matchers go inside a step's expect.body, expect.headers and "
                "expect.rows; write the value itself here")
        _variables(str(getattr(value, "arg", "")), path, where)
        return
    if not isinstance(value, _JSON):
        kind = {"set": "!!set", "bytes": "!!binary", "tuple": "!!omap / !!pairs",
                "date": "!!timestamp", "datetime": "!!timestamp"}.get(
                    type(value).__name__, type(value).__name__)
        raise ScenarioError(
            f"a {kind} value has no JSON form", location=where, key=path or None,
            hint="write a string, number, boolean, null, list or mapping "
            "(drop the !! tag; quote the value to make it a string)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ScenarioError(
            f"{value} is no JSON number", location=where, key=path or None,
            hint="write a finite number; to send 'Infinity' or 'NaN' as a backend would "
            "never parse them, use raw_body")
    if isinstance(value, str):
        _variables(value, path, where)


def _variables(text: str, path: str, where: Location) -> None:
    if not _STEPS.match(path) or _NO_VARIABLES.match(path):
        return
    problem = template.malformed(text)
    if problem is not None:
        raise ScenarioError(
            f"{problem}: it would be sent as is", location=where, key=path,
            hint="a variable is written ${name} with no spaces (letters, digits, '_' and "
            "'.'); for the text '${' itself write '$${'")


def too_deep(value: Any, limit: int = yamlsource.MAX_DEPTH) -> bool:
    """Whether JSON ``value`` (a ``body_file``) nests more than ``limit`` levels."""
    todo = [(value, 1)]
    while todo:
        current, depth = todo.pop()
        if isinstance(current, dict | list):
            if depth > limit:
                return True
            items = current.values() if isinstance(current, dict) else current
            todo += [(item, depth + 1) for item in items]
    return False


__all__ = ["check", "too_deep"]
