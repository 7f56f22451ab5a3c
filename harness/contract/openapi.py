"""Checking a backend's answers against the contract's OpenAPI description.

``openapi.yaml`` (package data, next to ``clauses.yaml``) describes the shape
of every answer the contract allows. :func:`validate_response` turns one
answer into a list of human-readable problems, so that a run can flag a body
of the wrong shape wherever it shows up, not only where a scenario happens to
look::

    problems = validate_response("GET", "/api/chat/sessions", 200, headers, body)
    # ["body.sessions[0].updated_at: 'yesterday' is not a 'iso-8601' (format)"]

:func:`check_answer` gives the same problems as :class:`Problem` objects that
also name the clause each one breaks: the nearest ``x-contract-clause`` of
the document along the schema path of the violation (a session's field:
C-SES-1; a message item's timestamp: C-MSG-4; an error's code: C-ERR-2).
Answers are open (the contract lets them carry more fields than a clause
lists); with ``strict=True`` the extra fields of objects marked
``x-chat-harness-lists-all`` come back as problems too, for notes.

The document is read once, and validators are compiled once per (operation,
status): validating an answer costs a dictionary lookup plus the JSON Schema
walk. jsonschema and PyYAML are imported on first use only, so importing this
module (or the pytest plugin) stays cheap.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from harness.errors import InternalError

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, FormatChecker, ValidationError
    from referencing import Registry

__all__ = ["Operation", "Problem", "check_answer", "document", "operation_for",
           "validate_response"]

# The document's URI in the registry: `$ref: "#/…"` resolves against it.
BASE_URI = "urn:chat-harness:contract:openapi"
UNROUTED = "x-chat-harness-unrouted"  # the 404 of an unknown path, the 405 of a wrong method
LAST_LINE = "x-chat-harness-last-line"  # schema of a text body's last line (streams)
SAME_AS_BODY = "x-chat-harness-same-as-body"  # a header that repeats a body field
CLAUSE = "x-contract-clause"  # the clause a schema, response, header or operation answers to
LISTS_ALL = "x-chat-harness-lists-all"  # a clause lists all its fields (strict: extras noted)
_HINT = "fix harness/contract/openapi.yaml"
_MAX_MESSAGE = 300
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTEGER = re.compile(r"^\s*-?\d+\s*$")
_ISO_TIME = re.compile(r"\d[T ]\d{2}(:?\d{2})?")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@functools.cache
def document() -> dict[str, Any]:
    """The packaged OpenAPI document, parsed once per process (shared: do not modify it)."""
    import yaml

    source = resources.files("harness.contract").joinpath("openapi.yaml")
    try:
        # The C loader, when PyYAML has it, reads the document ~10x faster.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(source.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise InternalError(f"openapi.yaml cannot be read: {exc}", hint=_HINT) from None
    if not isinstance(data, dict) or not isinstance(data.get("paths"), dict):
        raise InternalError("openapi.yaml: expected a mapping with 'paths'", hint=_HINT)
    return data


# -- finding the operation ---------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of the document: ``POST /api/chat`` and what it promises."""

    method: str  # upper case
    path: str  # the path template, as in the document
    operation_id: str
    clauses: tuple[str, ...]  # its x-contract-clauses
    clause: str  # the clause its answers as a whole answer to (status, body)
    pointer: str  # JSON pointer to the operation object in the document

    @property
    def spec(self) -> Mapping[str, Any]:
        """The operation object itself (``$ref``s unresolved)."""
        return _at(self.pointer)


@functools.cache
def _routes() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Path templates as regexes; literal paths first, as OpenAPI requires."""
    routes = []
    for template in sorted(document()["paths"], key=lambda t: "{" in t):
        parts = re.split(r"(\{[^}/]+\})", template)
        regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        routes.append((re.compile(f"^{regex}$"), template))
    return tuple(routes)


def _template_of(path: str) -> str | None:
    concrete = path.split("?", 1)[0].split("#", 1)[0]
    return next((template for regex, template in _routes() if regex.match(concrete)), None)


def operation_for(method: str, path: str) -> Operation | None:
    """The operation serving ``method path`` (a concrete path; a query string is ignored)."""
    template = _template_of(path)
    return None if template is None else _operation(method.lower(), template)


@functools.cache
def _operation(method: str, template: str) -> Operation | None:
    spec = document()["paths"][template].get(method)
    if not isinstance(spec, dict):
        return None
    return Operation(
        method=method.upper(),
        path=template,
        operation_id=str(spec.get("operationId", "")),
        clauses=tuple(spec.get("x-contract-clauses", ())),
        clause=str(spec.get(CLAUSE) or (spec.get("x-contract-clauses") or ["C-ERR-1"])[0]),
        pointer=f"/paths/{_escape(template)}/{method}",
    )


# -- validating an answer -------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One way an answer differs from the document, and the clause it breaks."""

    text: str  # where (``body.sessions[0].title``), what, and the schema rule
    clause: str

    def __str__(self) -> str:
        return self.text


def validate_response(
    method: str, path: str, status: int, headers: Mapping[str, str], body: Any | bytes
) -> list[str]:
    """Problems of one answer against the document; ``[]`` when it conforms.

    ``body`` is the raw body as ``bytes``, or anything else as the already
    parsed JSON (for a text answer: the text). Each problem starts with where
    it is (``status``, ``header Retry-After``, ``body.data.usage``) and, for a
    schema violation, ends with the schema rule in parentheses.
    """
    return [p.text for p in check_answer(method, path, status, headers, body)]


def check_answer(
    method: str, path: str, status: int, headers: Mapping[str, str], body: Any | bytes,
    *, strict: bool = False,
) -> list[Problem]:
    """:func:`validate_response` with the clause of each problem.

    ``strict``: also the fields an answer carries beyond those its clause
    lists (allowed by the contract; for notes, never for failures).
    """
    template = _template_of(path)
    op = None if template is None else _operation(method.lower(), template)
    if template is None:
        responses, context = f"/{UNROUTED}/unknownPath", "a path that is no route"
    elif op is None:
        responses, context = f"/{UNROUTED}/wrongMethod", f"no {method.upper()} on {template}"
    else:
        responses = f"/paths/{_escape(template)}/{method.lower()}/responses"
        context = f"{method.upper()} {template}"
    check = _compiled(responses, status, strict)
    if check is None:
        documented = ", ".join(sorted(_at(responses)))
        clause = "C-ERR-2" if status >= 400 or op is None else op.clause
        return [Problem(f"status {status}: not documented for {context} "
                        f"(documented: {documented})", clause)]
    fallback = "C-ERR-1" if status >= 400 or op is None else op.clause
    return check.problems({name.lower(): value for name, value in headers.items()}, body,
                          check.clause or fallback)


@dataclass(frozen=True)
class _Media:
    key: str  # as written in the document
    type: str  # "text/plain"
    params: frozenset[tuple[str, str]]  # {("charset", "utf-8")}: the answer must have them
    validator: Draft202012Validator | None
    last_line: Draft202012Validator | None


@dataclass(frozen=True)
class _Header:
    name: str
    required: bool
    validator: Draft202012Validator | None
    integer: bool  # HTTP carries text; compare the schema against the number
    same_as_body: str | None
    clause: str | None


@dataclass(frozen=True)
class _Check:
    """Everything needed to check the answers of one (operation, status), compiled once."""

    media: tuple[_Media, ...]
    headers: tuple[_Header, ...]
    clause: str | None  # the response's own x-contract-clause

    def problems(self, headers: dict[str, str], body: Any, clause: str) -> list[Problem]:
        problems: list[Problem] = []
        parsed: Any = None
        if self.media:
            media = self._media_for(headers.get("content-type"), problems, clause)
            if media is not None:
                parsed = _check_body(media, body, problems, clause)
        for header in self.headers:
            _check_header(header, headers, parsed, problems, header.clause or clause)
        return problems

    def _media_for(self, content_type: str | None, problems: list[Problem], clause: str
                   ) -> _Media | None:
        expected = " or ".join(repr(m.key) for m in self.media)
        if content_type is None:
            problems.append(Problem(f"header content-type: missing; expected {expected}",
                                    clause))
            return None
        kind, params = _parse_media(content_type)
        for media in self.media:
            if media.type in (kind, "*/*") and media.params <= params:
                return media
        problems.append(Problem(f"header content-type: {content_type!r} is not {expected}",
                                clause))
        return None


def _check_body(media: _Media, body: Any, problems: list[Problem], clause: str) -> Any:
    """Validate ``body`` against ``media``; returns it parsed (None when unparseable)."""
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(f"body: not valid UTF-8 ({exc.reason} at byte {exc.start})",
                                    clause))
            return None
        if media.type == "application/json" or media.type.endswith("+json"):
            try:
                body = json.loads(body)
            except ValueError as exc:
                problems.append(Problem(f"body: not JSON ({exc}): {_short(repr(body))}", clause))
                return None
    if media.validator is not None:
        problems.extend(_schema_problems(media.validator, body, "body", clause))
    if media.last_line is not None and isinstance(body, str):
        _check_last_line(media.last_line, body, problems, clause)
    return body


def _check_last_line(validator: Draft202012Validator, text: str, problems: list[Problem],
                     clause: str) -> None:
    """A streamed answer is text, ``"\\n"``, then one JSON line (C-STREAM-1)."""
    _, newline, last = text.rpartition("\n")
    if not newline:
        problems.append(Problem("body: no newline; expected the text, '\\n', then a JSON line",
                                "C-STREAM-1"))
        return
    try:
        line = json.loads(last)
    except ValueError as exc:
        problems.append(Problem(f"body[last line]: not JSON: {exc}: {_short(repr(last))}",
                                "C-STREAM-1"))
        return
    problems.extend(_schema_problems(validator, line, "body[last line]", "C-STREAM-1"))


def _check_header(header: _Header, headers: dict[str, str], body: Any, problems: list[Problem],
                  clause: str) -> None:
    raw = headers.get(header.name.lower())
    where = f"header {header.name}"
    if raw is None:
        if header.required:
            problems.append(Problem(f"{where}: missing (required)", clause))
        return
    value: Any = int(raw) if header.integer and _INTEGER.match(raw) else raw
    found = (_schema_problems(header.validator, value, where, clause)
             if header.validator else [])
    problems.extend(found)
    field = header.same_as_body
    if not found and field and isinstance(body, dict) and field in body and body[field] != value:
        problems.append(Problem(f"{where}: {raw!r} differs from body.{field} ({body[field]!r})",
                                clause))


# -- compiling -------------------------------------------------------------------------


@functools.cache
def _compiled(responses_pointer: str, status: int, strict: bool = False) -> _Check | None:
    """The check for ``status`` among the responses at ``responses_pointer``; None if absent.

    Lookup order as in OpenAPI: the exact status, its range (``4XX``), ``default``.
    """
    responses = _at(responses_pointer)
    by_key = {str(key).upper(): str(key) for key in responses}
    wanted = (str(status), f"{status // 100}XX", "DEFAULT")
    found = next((by_key[key] for key in wanted if key in by_key), None)
    if found is None:
        return None
    response, pointer = _deref(f"{responses_pointer}/{_escape(found)}")
    media = []
    for key in response.get("content") or {}:
        spec, at = _deref(f"{pointer}/content/{_escape(key)}")
        kind, params = _parse_media(key)
        schema = _validator(f"{at}/schema", strict) if "schema" in spec else None
        last = _validator(f"{at}/{LAST_LINE}", strict) if LAST_LINE in spec else None
        media.append(_Media(key, kind, params, schema, last))
    media.sort(key=lambda m: -len(m.params))  # the most specific first
    headers = []
    for name in response.get("headers") or {}:
        if name.lower() == "content-type":
            continue  # OpenAPI: a Content-Type header description SHALL be ignored
        spec, at = _deref(f"{pointer}/headers/{_escape(name)}")
        schema = spec.get("schema")
        validator = _validator(f"{at}/schema") if schema is not None else None
        integer = isinstance(schema, dict) and schema.get("type") == "integer"
        required = bool(spec.get("required", False))
        headers.append(_Header(name, required, validator, integer, spec.get(SAME_AS_BODY),
                               spec.get(CLAUSE)))
    return _Check(tuple(media), tuple(headers), response.get(CLAUSE))


def _validator(pointer: str, strict: bool = False) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = _inlined(_at(pointer), (pointer,))
    return Draft202012Validator(
        _closed(schema) if strict else schema,
        registry=_registry(),
        format_checker=_format_checker(),
    )


def _closed(node: Any) -> Any:
    """``node`` with every object its clause lists in full closed (``--strict``)."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _closed(value) for key, value in node.items()}
    if out.get(LISTS_ALL) is True:
        out["additionalProperties"] = False
    return out


def _inlined(node: Any, stack: tuple[str, ...]) -> Any:
    """``node`` with its local ``$ref``s replaced by what they point at.

    Following a ``$ref`` through the registry at every visit was 40% of the
    validation time; inlined once, the walk does no lookups. A ``$ref`` with
    sibling keywords becomes ``allOf`` (the same meaning in 2020-12); a
    recursive one stays a ``$ref``, for the registry to resolve.
    """
    if isinstance(node, list):
        return [_inlined(item, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not (isinstance(ref, str) and ref.startswith("#/")):
        return {key: _inlined(value, stack) for key, value in node.items()}
    siblings = {key: _inlined(value, stack) for key, value in node.items() if key != "$ref"}
    target = ref[1:]
    if target in stack:
        return {**siblings, "$ref": BASE_URI + ref}
    inlined = _inlined(_at(target), (*stack, target))
    return {"allOf": [inlined], **siblings} if siblings else inlined


@functools.cache
def _registry() -> Registry[Any]:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resource = Resource.from_contents(document(), default_specification=DRAFT202012)
    return Registry().with_resource(BASE_URI, resource)


@functools.cache
def _format_checker() -> FormatChecker:
    """jsonschema's format checkers, with a ``date-time`` that needs no optional package.

    jsonschema checks ``date-time`` only when ``rfc3339-validator`` happens to
    be installed, and silently lets everything pass otherwise.
    """
    from jsonschema import FormatChecker

    checker = FormatChecker()
    checker.checks("date-time")(_is_date_time)
    checker.checks("iso-8601")(_is_iso_instant)
    return checker


def _is_iso_instant(instance: object) -> bool:
    """An ISO-8601 date and time, in any of its common forms (C-ERR-1 fixes no profile)."""
    if not isinstance(instance, str):
        return True
    text = instance.strip()
    if not _ISO_TIME.search(text):
        return False  # a date alone is no instant
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_date_time(instance: object) -> bool:
    """RFC 3339 ``date-time`` (JSON Schema's format), with real calendar values."""
    if not isinstance(instance, str):
        return True  # formats only constrain strings
    match = _RFC3339.match(instance)
    if match is None:
        return False
    date, time, fraction, offset = match.groups()
    time = time[:6] + "59" if time.endswith("60") else time  # a leap second
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        datetime.fromisoformat(f"{date}T{time}{(fraction or '')[:7]}{offset}")
    except ValueError:
        return False
    return True


# -- reporting and plumbing -------------------------------------------------------------


def _schema_problems(validator: Draft202012Validator, instance: Any, root: str, clause: str
                     ) -> list[Problem]:
    fast = _fast(validator)
    if fast is not None:
        try:
            if fast.is_valid(instance):
                return []
        except Exception:  # a value it cannot take (NaN, a Python object): jsonschema judges
            pass
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in e.absolute_path],
    )
    return [Problem(_describe(error, root), _clause_of(validator.schema, error, clause))
            for error in errors]


# The same schema compiled by jsonschema-rs (a dependency of schemathesis), for the common
# case: an answer that conforms. jsonschema's walk cost ~1 ms an answer, the checks'
# largest share; jsonschema-rs says "valid" in microseconds. Only a yes is taken from it:
# whatever it refuses, jsonschema judges again and describes (so a disagreement can only
# cost time). Not used where a $ref remains (recursive schemas) or it is missing.
_FAST: dict[int, Any] = {}


def _fast(validator: Draft202012Validator) -> Any:
    key = id(validator)
    if key not in _FAST:
        _FAST[key] = _compile_fast(validator.schema)
    return _FAST[key]


def _compile_fast(schema: Any) -> Any:
    if '"$ref"' in json.dumps(schema):
        return None
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        return jsonschema_rs.Draft202012Validator(
            schema, validate_formats=True, ignore_unknown_formats=False,
            formats={"date-time": _is_date_time, "iso-8601": _is_iso_instant})
    except Exception:  # a schema it cannot compile: jsonschema alone
        return None


def _clause_of(schema: Any, error: ValidationError, default: str) -> str:
    """The nearest ``x-contract-clause`` on the way from the root to the broken rule."""
    found, node = default, schema
    for part in error.absolute_schema_path:
        if isinstance(node, dict) and isinstance(node.get(CLAUSE), str):
            found = node[CLAUSE]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break  # a $ref resolved through the registry: keep the nearest so far
    return found


def _describe(error: ValidationError, root: str) -> str:
    """``body.items[0].timestamp: 'abc' is not a 'date-time' (format)``."""
    where = root + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" if _NAME.match(part) else f"[{part!r}]"
        for part in error.absolute_path
    )
    return f"{where}: {_short(error.message)} ({error.validator})"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _at(pointer: str) -> Any:
    """What the JSON pointer ``pointer`` names in the document (resolved by ``referencing``)."""
    from referencing.exceptions import Unresolvable

    try:
        return _registry().resolver().lookup(f"{BASE_URI}#{pointer}").contents
    except Unresolvable:
        raise InternalError(f"openapi.yaml: nothing at {pointer!r}", hint=_HINT) from None


def _deref(pointer: str) -> tuple[dict[str, Any], str]:
    """The object at ``pointer``, following local ``$ref``s; and where it really is."""
    node, seen = _at(pointer), {pointer}
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or ref[1:] in seen:
            raise InternalError(f"openapi.yaml: {pointer}: bad or cyclic $ref {ref!r}", hint=_HINT)
        pointer = ref[1:]
        seen.add(pointer)
        node = _at(pointer)
    if not isinstance(node, dict):
        raise InternalError(f"openapi.yaml: {pointer}: expected an object", hint=_HINT)
    return node, pointer


def _parse_media(value: str) -> tuple[str, frozenset[tuple[str, str]]]:
    """``"Text/Plain; charset=UTF-8"`` → ``("text/plain", {("charset", "utf-8")})``."""
    kind, *rest = value.split(";")
    params = set()
    for part in rest:
        name, _, val = part.partition("=")
        if name.strip():
            params.add((name.strip().lower(), val.strip().strip('"').lower()))
    return kind.strip().lower(), frozenset(params)
