"""``${name}`` substitution in scenario values, and dotted paths into JSON."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.errors import Location, ScenarioError

# ``${name}``, or ``$${``: the escape for the literal text ``${``
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
# a ``${`` that starts no variable (and is no escape): a typo, never sent as is
_OPEN = re.compile(r"\$\$\{|\$\{(?:[A-Za-z_][A-Za-z0-9_.]*\})?")
_MISSING = object()


def render(value: Any, variables: Mapping[str, Any], *, location: Location, key: str) -> Any:
    """Substitute variables in every string inside ``value``.

    A string that is exactly ``${name}`` takes the variable's value as is (a
    number stays a number); inside longer text it is formatted as text.
    ``$${`` is the text ``${`` itself (``$${name}`` is ``${name}``).
    """
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole and whole.group(1):
            return _lookup(whole.group(1), variables, location, key)
        return _VAR.sub(lambda m: "${" if not m.group(1) else str(
            _lookup(m.group(1), variables, location, key)), value)
    if isinstance(value, dict):
        return {k: render(v, variables, location=location, key=f"{key}.{k}")
                for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, variables, location=location, key=f"{key}[{i}]")
                for i, v in enumerate(value)]
    return value


def malformed(text: str) -> str | None:
    """What is wrong with a ``${`` in ``text`` that starts no variable, or ``None``."""
    for m in _OPEN.finditer(text):
        if m.group(0) != "${":
            continue  # an escape, or a whole ${name}
        rest = text[m.end():]
        close = rest.find("}")
        if close < 0:
            return f"'${{' is never closed: {_excerpt(text, m.start())!r}"
        inner = rest[:close]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", inner.strip()):
            return f"'${{{inner}}}' has spaces inside the braces"
        return f"'${{{inner}}}' is not a variable name"
    return None


def _excerpt(text: str, start: int) -> str:
    return text[start:start + 30] + ("..." if len(text) > start + 30 else "")


def _lookup(name: str, variables: Mapping[str, Any], location: Location, key: str) -> Any:
    if name in variables:
        return variables[name]
    known = ", ".join(sorted(variables)) or "none yet"
    raise ScenarioError(
        f"unknown variable ${{{name}}}",
        location=location, key=key,
        hint=f"capture it in an earlier step (capture: {{{name}: data.request_id}}); "
        f"known: {known}",
    )


def dig(document: Any, path: str) -> Any:
    """``data.items[0].id`` inside parsed JSON; returns ``_MISSING`` if absent."""
    current = document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(current, list) or index >= len(current):
                return _MISSING
            current = current[index]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def is_missing(value: Any) -> bool:
    return value is _MISSING


def names(value: Any) -> list[str]:
    """The variables every string inside ``value`` uses (escaped ones are text)."""
    if isinstance(value, str):
        return [m.group(1) for m in _VAR.finditer(value) if m.group(1)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in names(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in names(v)]
    return []


def escape(value: Any) -> Any:
    """``value`` with every ``${`` in its strings written as ``$${`` (text, not a variable)."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value
