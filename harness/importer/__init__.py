"""``chat-harness import``: a recorded exchange becomes a scenario YAML.

A bug report usually comes with what the browser saw: a HAR export of the
network panel, or request/response pairs pasted into the report (as in
``../shared/seed/``). Turning that into a scenario by hand is slow and loses
details; this writes the first draft: raw ``http`` steps with the recorded
bodies, the provider script and the expectations the recording implies, and
captures for ids the backend made up (see :mod:`harness.importer.build`).
The YAML is what :func:`harness.scenario.load.load_file` accepts, with
comments saying what was recorded, inferred and ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.importer.build import CHAT, MESSAGES, SESSION, SESSIONS, STREAM, Built, build
from harness.importer.recorded import Recorded, read

__all__ = ["Recorded", "import_file", "render_yaml"]


def _yaml(value: Any) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
        # multi-line text (replies, markdown) as a block, as a person would write it;
        # PyYAML falls back to quotes where a block cannot hold the text exactly
        style = "|" if "\n" in text.rstrip("\n") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)


def _comment(text: str, indent: str = "") -> str:
    return f"{indent}# {' '.join(text.split())}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "imported"


def render_yaml(built: Built, *, source: str, kind: str, name: str) -> str:
    """The scenario file's text."""
    lines = [
        _comment(f"Imported by `chat-harness import` from {source} ({kind}, "
                 f"{len(built.steps)} chat request(s)). A first draft: read the comments, "
                 "then add 'covers:' and sharper expectations."),
    ]
    lines += [_comment(f"ignored: {what}") for what in built.ignored]
    header: dict[str, Any] = {"name": name, "why": f"imported from {source}", "covers": []}
    if built.session is not None:
        header["session"] = built.session
    lines.append(_yaml(header).rstrip("\n").replace("covers: []", "covers: []  # the clauses "
                                                     "this reproduces, e.g. C-MSG-2"))
    lines.append("steps:")
    for n, step in enumerate(built.steps, 1):
        lines.append("")
        lines += [_comment(f"{n}. {note}" if i == 0 else note, "  ")
                  for i, note in enumerate(step.notes)]
        dumped = _yaml([step.data]).rstrip("\n").split("\n")
        lines += [f"  {line}" if line else line for line in dumped]
    return "\n".join(lines) + "\n"


def import_file(path: Path, *, name: str | None = None) -> str:
    """The scenario YAML for a recording (raises :class:`UsageError` on bad input)."""
    kind, recorded = read(path)
    built = build(recorded)
    if not built.steps:
        seen = "; ".join(f"{r.method} {r.path}" for r in recorded[:6])
        more = f" and {len(recorded) - 6} more" if len(recorded) > 6 else ""
        raise UsageError(
            f"{path}: none of its {len(recorded)} request(s) goes to a chat path "
            f"({CHAT}, {STREAM}, {MESSAGES}, {SESSIONS}, {SESSION}); it has {seen}{more}",
            hint="record while reproducing the bug in the chat itself (keep 'Preserve log' "
            "on in the Network panel), then export that",
        )
    return render_yaml(built, source=path.name, kind=kind, name=name or _slug(path.stem))
