"""JSON forms of planned answers and recorded calls, for the provider's control API.

The provider can run as its own process (``harness.provider.server``); the
runner then plans answers and reads calls over HTTP. Both sides must see the
very same dataclasses, so every form here round-trips exactly:
``answer_from_json(answer_to_json(a)) == a`` and likewise for calls.

Answers carry a ``"kind"`` tag (``reply``, ``error``, ``raw``). A body that is
``bytes`` is sent as text when it is UTF-8, else as base64, with a
``body_encoding`` flag so it comes back as ``bytes`` (a ``str`` body stays a
``str``). Everything else is plain JSON; mappings come back as ``dict``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from typing import Any

from harness.errors import InvalidInput
from harness.provider.engine import Answer, ErrorAnswer, ProviderCall, RawAnswer, Reply, Side

PROVIDER_PREFIX = "/api/v1"  # OpenRouter's paths: everything under it goes to the engine
CONTROL_PREFIX = "/_chat-harness"  # the control API: no OpenRouter path starts with "_"

KINDS: dict[str, type[Reply] | type[ErrorAnswer] | type[RawAnswer]] = {
    "reply": Reply,
    "error": ErrorAnswer,
    "raw": RawAnswer,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}

# fields holding a Mapping: sent as JSON objects, rebuilt as dicts
_MAPPINGS = {"usage", "metadata", "headers"}


class WireError(InvalidInput):
    """A JSON form that does not describe an answer or a call (bad kind, field, type)."""


# -- bodies ---------------------------------------------------------------------


def encode_body(value: Any) -> dict[str, Any]:
    """``{"body": ...}``, plus ``body_encoding`` when the body is bytes."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        try:
            return {"body": raw.decode("utf-8"), "body_encoding": "utf-8"}
        except UnicodeDecodeError:
            return {"body": base64.b64encode(raw).decode("ascii"), "body_encoding": "base64"}
    return {"body": value}


def decode_body(data: Mapping[str, Any]) -> Any:
    """The body :func:`encode_body` encoded (``None`` when there is none)."""
    value = data.get("body")
    encoding = data.get("body_encoding")
    if encoding is None:
        return value
    if not isinstance(value, str):
        raise WireError(f"body with body_encoding {encoding!r} must be a string")
    if encoding == "utf-8":
        return value.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WireError(f"body is not valid base64: {exc}") from None
    raise WireError(f"unknown body_encoding {encoding!r} (utf-8 or base64)")


# -- answers ----------------------------------------------------------------------


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The JSON form of a planned answer: its fields and a ``kind`` tag."""
    kind = _KIND_OF.get(type(answer))
    if kind is None:
        raise WireError(f"not a provider answer: {type(answer).__name__}")
    out: dict[str, Any] = {"kind": kind}
    for f in dataclasses.fields(answer):
        value = getattr(answer, f.name)
        if f.name == "body":
            out.update(encode_body(value))
        elif f.name in _MAPPINGS and value is not None:
            out[f.name] = dict(value)
        elif f.name == "tool_calls":
            out[f.name] = [dict(t) for t in value]
        else:
            out[f.name] = value
    return out


def answer_from_json(data: Any) -> Answer:
    """The answer a JSON form describes; :class:`WireError` when it describes none."""
    if not isinstance(data, Mapping):
        raise WireError(f"an answer must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireError(f"unknown answer kind {kind!r} (one of {', '.join(KINDS)})")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names - {"kind", "body_encoding"}
    if unknown:
        raise WireError(f"unknown field(s) for a {kind} answer: {', '.join(sorted(unknown))}")
    fields = {k: v for k, v in data.items() if k in names}
    if "body" in names and "body" in data:
        fields["body"] = decode_body(data)
    if isinstance(fields.get("tool_calls"), list):
        fields["tool_calls"] = tuple(dict(t) for t in fields["tool_calls"]
                                     if isinstance(t, Mapping))
    try:
        return cls(**fields)
    except TypeError as exc:  # a required field is missing
        raise WireError(f"a {kind} answer: {exc}") from None


# -- recorded calls -------------------------------------------------------------------


def call_to_json(call: ProviderCall) -> dict[str, Any]:
    """The JSON form of one recorded provider call."""
    return {
        "index": call.index,
        "step": call.step,
        "method": call.method,
        "path": call.path,
        "headers": dict(call.headers),
        **encode_body(call.body),
        "answer": call.answer,
        "scripted": call.scripted,
        "side": call.side,
        "at": call.at,
    }


def call_from_json(data: Any) -> ProviderCall:
    """The :class:`ProviderCall` a JSON form describes."""
    if not isinstance(data, Mapping):
        raise WireError(f"a call must be a JSON object, got {type(data).__name__}")
    try:
        return ProviderCall(
            index=data["index"],
            step=data["step"],
            method=data["method"],
            path=data["path"],
            headers=dict(data["headers"]),
            body=decode_body(data),
            answer=data.get("answer", ""),
            scripted=data.get("scripted", True),
            side=data.get("side", ""),
            at=data["at"],
        )
    except KeyError as exc:
        raise WireError(f"a call without {exc.args[0]!r}") from None


def pending_to_json(pending: list[tuple[str | None, Answer]]) -> list[dict[str, Any]]:
    """``ScriptedProvider.pending()`` as JSON: ``[{"for_model", "answer"}]``."""
    return [{"for_model": model, "answer": answer_to_json(a)} for model, a in pending]


def pending_from_json(data: Any) -> list[tuple[str | None, Answer]]:
    if not isinstance(data, list):
        raise WireError(f"pending answers must be a JSON list, got {type(data).__name__}")
    out: list[tuple[str | None, Answer]] = []
    for item in data:
        if not isinstance(item, Mapping):
            raise WireError(f"a pending answer must be a JSON object, got {item!r}")
        out.append((item.get("for_model"), answer_from_json(item.get("answer"))))
    return out


def plan_to_json(answer: Answer, for_model: str | None) -> dict[str, Any]:
    """One planned answer, as ``begin-step`` takes it (the shape of a pending one)."""
    return {"for_model": for_model, "answer": answer_to_json(answer)}


def plan_from_json(item: Any) -> tuple[Answer, str | None]:
    if not isinstance(item, Mapping) or "answer" not in item:
        raise WireError(f'a plan must be {{"answer": {{...}}, "for_model": name or null}}, '
                        f"got {item!r}")
    for_model = item.get("for_model")
    if for_model is not None and not isinstance(for_model, str):
        raise WireError(f"for_model must be a string or null, got {for_model!r}")
    return answer_from_json(item["answer"]), for_model


def side_to_json(side: Side) -> dict[str, Any]:
    """A side rule, as ``begin-step`` takes it: ``{"answer", "model", "stream", "contains"}``."""
    return {"answer": answer_to_json(side.answer), "model": side.model, "stream": side.stream,
            "contains": side.contains}


def side_from_json(item: Any) -> Side:
    if not isinstance(item, Mapping) or "answer" not in item:
        raise WireError(f'a side rule must be {{"answer": {{...}}, "model"?, "stream"?, '
                        f'"contains"?}}, got {item!r}')
    model, stream, contains = item.get("model"), item.get("stream"), item.get("contains")
    if model is not None and not isinstance(model, str):
        raise WireError(f"a side rule's model must be a string or null, got {model!r}")
    if stream is not None and not isinstance(stream, bool):
        raise WireError(f"a side rule's stream must be true, false or null, got {stream!r}")
    if contains is not None and not isinstance(contains, str):
        raise WireError(f"a side rule's contains must be a string or null, got {contains!r}")
    return Side(answer_from_json(item["answer"]), model=model, stream=stream,
                contains=contains)
