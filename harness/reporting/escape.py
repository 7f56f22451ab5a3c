"""Text from a run made safe to put into HTML and SVG.

Scenarios send hostile bodies on purpose (``<script>``, NULs, lone
surrogates, 10 MiB strings: C-ERR-3), and backends echo them. Everything a
report shows goes through :func:`esc`: control characters and lone
surrogates become visible escapes (a browser would drop or replace them, and
a lone surrogate cannot even be written as UTF-8), then HTML's five special
characters are escaped, so no recorded byte can become markup.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, lone surrogates, noncharacters
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: str) -> str:
    """``value`` with every character a browser or UTF-8 would mangle spelled out."""
    return _UNSAFE.sub(_visible, value)


def esc(value: Any) -> str:
    """Text (or anything, as text) ready for an HTML text node or quoted attribute."""
    text = value if isinstance(value, str) else str(value)
    return html.escape(clean(text), quote=True)


def short(value: Any, limit: int = 60) -> str:
    """One line of at most ``limit`` characters (newlines shown as ⏎)."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\r\n", "⏎").replace("\n", "⏎")
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def pretty(value: Any, limit: int = 6000) -> str:
    """A JSON value as indented text (strings as they are), cut at ``limit``."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        except ValueError:  # circular data cannot come from JSON, but be safe
            text = repr(value)
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters)"
    return text
