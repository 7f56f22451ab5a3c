"""Plain-text rendering of a failed scenario, ending with how to reproduce it."""

from __future__ import annotations

import json
from typing import Any

from harness.result import Failure, ScenarioResult

TRACE_LINES = 30  # of a harness bug's traceback

# Within one step, the order in which a reader wants to see what went wrong:
# what the answer said, then what it meant for pairing, then what broke later.
_PHASE = {"expect": 0, "stream": 1, "pairing": 2, "context": 3, "sync": 4,
          "provider_script": 5, "db": 6}


def _sort_key(item: tuple[int, Failure]) -> tuple[int, int, int]:
    n, f = item
    step = f.step if f.step is not None else 10**6
    return step, _PHASE.get(f.check, 9), n


def _block(label: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [f"    {label}:"] + [f"      {i + 1:>2}. {v}" for i, v in enumerate(value)]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 400:
        text = text[:397] + "..."
    return [f"    {label}: {text}"]


def ordered(result: ScenarioResult) -> list[Failure]:
    return [f for _, f in sorted(enumerate(result.failures), key=_sort_key)]


def render_failure(result: ScenarioResult) -> str:
    if result.failures and all(f.check == "scenario_error" for f in result.failures):
        # the scenario's own mistake, found as it ran: file, line, key and hint first
        lines = [f.message for f in result.failures]
        lines += ["", f"(a scenario error: scenario {result.scenario_id} stopped there; "
                  "not a finding about the backend)"]
        if result.reproduce:
            lines += ["", "Reproduce with:", f"  {result.reproduce}"]
        return "\n".join(lines)
    n = len(result.failures)
    lines = [
        f"scenario {result.scenario_id} failed against {result.target} "
        f"({n} problem{'s' if n != 1 else ''})",
    ]
    current: object = object()
    for f in ordered(result):
        if f.step != current:
            current = f.step
            lines.append("")
            if f.step is None:
                lines.append("after the steps")
            else:
                rec = result.steps[f.step]
                lines.append(f"step {f.step + 1} ({result.file}:{rec.line}) {rec.title}")
                lines += [f"  > {ex.brief()}" for ex in rec.exchanges]
        clause = f" {f.clause}" if f.clause else ""
        lines.append(f"  [{f.check}{clause}] " + f.message.replace("\n", "\n    "))
        if f.check == "harness_error" and isinstance(f.actual, str):
            lines += ["    " + line for line in f.actual.splitlines()[-TRACE_LINES:]]
        elif f.expected is not None or f.actual is not None:
            lines += _block("expected", f.expected) + _block("actual  ", f.actual)
    log = result.backend_log
    if log is not None and log.tail:
        where = f"all of it: {log.path}" if log.path else "not kept with --reports ''"
        lines += ["", f"the backend's log while this scenario ran, its last {len(log.tail)} "
                  f"lines ({where}):"]
        lines += [f"  | {line}" for line in log.tail]
    if result.reproduce:
        lines += ["", "Reproduce with:", f"  {result.reproduce}"]
    return "\n".join(lines)


class _Crash:
    """What pytest's short summary line shows of a failure: its first line."""

    def __init__(self, message: str) -> None:
        self.message = message


class FailureText:
    """A failure as pytest shows it: the whole text in the FAILURES section, one line in
    the short summary. (A plain string would be repeated whole in the summary on CI,
    where pytest does not trim it.)"""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reprcrash = _Crash(text.split("\n", 1)[0])

    def toterminal(self, tw: Any) -> None:
        for line in self.text.split("\n"):
            tw.line(line)

    def __str__(self) -> str:
        return self.text
