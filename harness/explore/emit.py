"""Steps back to scenario YAML: a found bug becomes a regression test in one copy.

The inverse of :mod:`harness.scenario.load` for what the explorer generates:
each step model is dumped without its defaults, the step's kind first, so the
file reads like a hand-written one; ``load_file`` builds the same models back
(a test holds the two to that).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from harness.result import Failure
from harness.scenario.model import ParallelStep, ResyncStep, RetryStep, Step, StreamStep

# characters PyYAML writes raw but reads back as line breaks (or drops)
_ESCAPE = frozenset("\x85\u2028\u2029\ufeff")
# the step's own key first, then who sends it, then the rest in model order
_FIRST = ("title", "chat", "stream", "retry", "resync", "http", "parallel", "as")


def step_data(step: Step) -> Any:
    """One step as the YAML value a scenario file holds."""
    data: dict[str, Any] = step.model_dump(
        mode="json", by_alias=True, exclude_defaults=True,
        exclude={"kind", "parsed", "parallel", "chat"} if isinstance(step, StreamStep)
        else {"kind", "parsed", "parallel"},
    )
    if isinstance(step, ResyncStep):
        if not data:
            return "resync"
        data["resync"] = None
    elif isinstance(step, RetryStep):
        data["retry"] = step.retry  # "last" is the default, but it names the kind
    elif isinstance(step, ParallelStep):
        data["parallel"] = [step_data(s) for s in step.parsed]
    first = {k: data.pop(k) for k in _FIRST if k in data}
    return {**first, **{k: _inline(v) for k, v in data.items()}}


class _Flow(dict[str, Any]):
    """A short flat mapping written inline, as people write ``provider: {reply: hi}``."""


def _inline(value: Any) -> Any:
    if isinstance(value, list):
        return [_inline(v) for v in value]
    if not isinstance(value, dict):
        return value
    inner = {k: _inline(v) for k, v in value.items()}
    flat = all(not isinstance(v, dict | list) for v in inner.values())
    short = sum(len(str(k)) + len(str(v)) + 4 for k, v in inner.items()) < 60
    return _Flow(inner) if inner and flat and short else inner


class _Dumper(yaml.SafeDumper):
    """Block style, but a :class:`_Flow` inline and multi-line text as a literal block."""


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Characters PyYAML would write raw but reads as line breaks (or drops) go
    # double-quoted, where they are escaped; multi-line text as a literal block
    # where PyYAML finds that exact (it falls back to quotes otherwise).
    if any(ch in _ESCAPE or not (ch.isprintable() or ch in "\n\t") for ch in data):
        style: str | None = '"'
    else:
        style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(str, _represent_str)


def dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def scenario_yaml(name: str, steps: Sequence[Step], *, model: str | None,
                  failures: Sequence[Failure] = (), note: str = "") -> str:
    """A whole scenario file: a comment on what was found, the header, the steps."""
    clauses = sorted({f.clause for f in failures if f.clause})
    checks = sorted({f.check for f in failures})
    header: dict[str, Any] = {"name": name}
    if failures:
        header["why"] = "found by chat-harness explore: " + ", ".join(checks)
    if clauses:
        header["covers"] = clauses
    if model:
        header["model"] = model
    lines = [f"# {line}".rstrip() for line in note.splitlines()] if note else []
    for f in failures[:5]:
        where = f"step {f.step + 1}: " if f.step is not None else ""
        lines.append(f"# [{f.check} {f.clause or ''}]".replace(" ]", "]")
                     + f" {where}{_one_line(f.message)}")
    body = dump({**header, "steps": [step_data(s) for s in steps]})
    return "\n".join(lines) + ("\n" if lines else "") + body


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."
