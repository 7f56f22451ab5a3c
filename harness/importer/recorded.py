"""Reading a recorded exchange: a browser's HAR export or a JSON list of pairs.

Both become the same list of :class:`Recorded` requests, in the order they
were made. Anything we cannot read is a :class:`~harness.errors.UsageError`
with a hint (the CLI prints it in one paragraph and exits 2), never a
traceback: people feed this whatever their browser or bug tracker gave them.

The list-of-pairs format (what a bug report like ``../shared/seed/`` holds,
written down as JSON)::

    [
      {"title": "the first send hits a 429",            # optional
       "request": {"method": "POST", "path": "/api/chat", "body": {...}},
       "response": {"status": 429, "body": {...}, "headers": {"Retry-After": "60"}}},
      ...
    ]

``url`` may stand for ``path``, and the list may sit under ``{"exchanges": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from harness.errors import UsageError

_FORMATS_HINT = (
    "give a HAR file (browser dev tools, Network panel, 'Save all as HAR') or a JSON "
    'list of pairs: [{"request": {"method": "POST", "path": "/api/chat", "body": {...}}, '
    '"response": {"status": 200, "body": {...}}}, ...]'
)


@dataclass
class Recorded:
    """One request of the recording and its answer."""

    method: str
    path: str  # without scheme, host and query
    status: int
    body: Any = None  # parsed JSON, text, or None
    response: Any = None  # parsed JSON, text, or None
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # of the answer, names lower-case
    title: str | None = None

    @property
    def brief(self) -> str:
        code = self.response.get("code") if isinstance(self.response, dict) else None
        tail = f" {code}" if isinstance(code, str) else ""
        return f"{self.method} {self.path} -> {self.status}{tail}"


def _json_or_text(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path or "/", dict(parse_qsl(parts.query, keep_blank_values=True))


def _har_entry(n: int, entry: Any, source: str) -> Recorded:
    where = f"{source}: log.entries[{n}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise UsageError(f"{where} has no 'request' object", hint=_FORMATS_HINT)
    request, response = entry["request"], entry.get("response")
    response = response if isinstance(response, dict) else {}
    if not isinstance(request.get("method"), str) or not isinstance(request.get("url"), str):
        raise UsageError(f"{where}.request needs 'method' and 'url'", hint=_FORMATS_HINT)
    path, query = _split(request["url"])
    post = request.get("postData") or {}
    content = response.get("content") or {}
    text = content.get("text") if isinstance(content, dict) else None
    if isinstance(text, str) and content.get("encoding") == "base64":
        try:
            text = base64.b64decode(text).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            text = None
    headers = {str(h.get("name", "")).lower(): str(h.get("value", ""))
               for h in (response.get("headers") or []) if isinstance(h, dict)}
    status = response.get("status")
    return Recorded(
        method=request["method"].upper(), path=path, query=query,
        status=status if isinstance(status, int) and not isinstance(status, bool) else 0,
        body=_json_or_text(post.get("text") if isinstance(post, dict) else None),
        response=_json_or_text(text), headers=headers,
    )


def _pair(n: int, pair: Any, source: str) -> Recorded:
    where = f"{source}: item {n + 1} of the list"
    request = pair.get("request") if isinstance(pair, dict) else None
    response = pair.get("response") if isinstance(pair, dict) else None
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise UsageError(f"{where} is not a {{'request': {{...}}, 'response': {{...}}}} pair",
                         hint=_FORMATS_HINT)
    target = request.get("path") or request.get("url")
    if not isinstance(request.get("method"), str) or not isinstance(target, str):
        raise UsageError(f"{where}: the request needs 'method' and 'path' (or 'url')",
                         hint=_FORMATS_HINT)
    status = response.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        raise UsageError(f"{where}: the response needs a numeric 'status', got {status!r}",
                         hint=_FORMATS_HINT)
    path, query = _split(target)
    query.update({str(k): str(v) for k, v in (request.get("query") or {}).items()})
    body = request.get("body")
    answer = response.get("body")
    title = pair.get("title")
    return Recorded(
        method=request["method"].upper(), path=path, query=query, status=status,
        body=_json_or_text(body) if isinstance(body, str) else body,
        response=_json_or_text(answer) if isinstance(answer, str) else answer,
        headers={str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()},
        title=title if isinstance(title, str) else None,
    )


def read(path: Path) -> tuple[str, list[Recorded]]:
    """(``"HAR"`` or ``"pairs"``, the recorded requests in order) of a file."""
    if not path.exists():
        raise UsageError(f"{path}: no such file", hint=_FORMATS_HINT)
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a recording", hint=_FORMATS_HINT)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not JSON (not even UTF-8 text)",
                         hint=_FORMATS_HINT) from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc.strerror}", hint=_FORMATS_HINT) from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", "?")
        col = getattr(exc, "colno", "?")
        why = getattr(exc, "msg", str(exc))
        raise UsageError(f"{path} is not JSON ({why} at line {line}, column {col})",
                         hint=_FORMATS_HINT) from None
    source = str(path)
    if isinstance(doc, dict) and isinstance(doc.get("log"), dict):
        entries = doc["log"].get("entries")
        if not isinstance(entries, list):
            raise UsageError(f"{source} looks like HAR but has no log.entries list",
                             hint=_FORMATS_HINT)
        found = [(str(e.get("startedDateTime", "")) if isinstance(e, dict) else "", n,
                  _har_entry(n, e, source)) for n, e in enumerate(entries)]
        found.sort(key=lambda item: (item[0], item[1]))  # the order they were sent
        return "HAR", [r for _, _, r in found]
    if isinstance(doc, dict) and isinstance(doc.get("exchanges"), list):
        doc = doc["exchanges"]
    if isinstance(doc, list) and doc:
        return "pairs", [_pair(n, p, source) for n, p in enumerate(doc)]
    shape = "an empty list" if doc == [] else f"a JSON {type(doc).__name__}"
    if isinstance(doc, dict):
        keys = ", ".join(list(doc)[:5]) or "no keys"
        shape = f"a JSON object ({keys})"
    raise UsageError(f"{source} is {shape}: neither a HAR file (an object with log.entries) "
                     "nor a list of request/response pairs", hint=_FORMATS_HINT)
