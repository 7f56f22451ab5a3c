"""The JSON result file: one record per scenario, everything a reader needs.

Steps with their requests, answers and provider calls, the failures with the
clause each breaks, timings, and the command that reruns the scenario. The
HTML report and ``chat-harness mutants`` read this file; CI systems may too.
The shape is versioned (``format``) so readers can refuse what they do not know.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from harness.errors import InvalidInput
from harness.result import ScenarioResult

FORMAT = "chat-harness-results/1"
MAX_TEXT = 4000  # longer strings (20000-character messages, 10 MiB bodies) are cut


def _trim(value: Any) -> Any:
    """``value`` as plain JSON data, long strings cut: what ``dataclasses.asdict`` and a
    walk cutting strings made, in one walk and without ``asdict``'s deep copies (the
    values are read, never changed)."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return value[:MAX_TEXT] + f"... ({len(value) - MAX_TEXT} more characters)"
        return value
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_trim(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _trim(getattr(value, f.name)) for f in fields(value)}
    return value


def record(result: ScenarioResult, *, outcome: str | None = None,
           nodeid: str | None = None) -> dict[str, Any]:
    """One scenario as plain JSON data (``outcome``: passed, failed or skipped; the
    run's ledger may make it ``error`` or ``not run``)."""
    data: dict[str, Any] = {f.name: _trim(getattr(result, f.name)) for f in fields(result)
                            if f.name != "exchanges"}
    if nodeid is not None:
        data["nodeid"] = nodeid
    # each step carries its own exchanges; at the top only the checks' own requests
    data["exchanges"] = [_trim(e) for e in result.exchanges if e.step is None]
    data["outcome"] = outcome or (
        "skipped" if result.skipped else "passed" if result.passed else "failed")
    data["checks_failed"] = sorted({f.check for f in result.failures})
    data["clauses_broken"] = sorted({f.clause for f in result.failures if f.clause})
    return data


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts of a run: every record counts once, under its outcome."""
    def count(outcome: str) -> int:
        return sum(r["outcome"] == outcome for r in records)

    return {
        "scenarios": len(records),
        "passed": count("passed"),
        "failed": count("failed"),
        "skipped": count("skipped"),
        "errors": count("error"),  # a file that did not load, a setup error
        "not_run": count("not run"),  # the run stopped before them
        "duration_s": round(sum(float(r.get("duration_s") or 0) for r in records), 4),
    }


def write(path: Path, results: list[ScenarioResult] | list[dict[str, Any]], *,
          meta: dict[str, Any]) -> Path:
    """Write the file atomically (a reader never sees half of it).

    ``results`` are :class:`ScenarioResult` objects, or records already made by
    :func:`record` (what pytest-xdist workers send the controller, what the run's
    ledger makes). ``meta`` holds the target and mutants, and for a run that
    stopped early ``interrupted`` (why) and ``not_run`` (the scenarios' ids).
    """
    records = [r if isinstance(r, dict) else record(r) for r in results]
    doc = {
        "format": FORMAT,
        "interrupted": None,
        "not_run": [],
        **meta,
        "summary": summary(records),
        "scenarios": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # ASCII escapes: lone surrogates and NULs (C-ERR-3 scenarios send them) stay readable.
    # The head indented, then one scenario a line: json's C encoder only writes without
    # indent, and the Python one took seconds for a suite with races
    head = json.dumps(doc, indent=1, default=_plain)
    assert head.endswith('"scenarios": []\n}')
    lines = ",\n".join(json.dumps(r, default=_plain) for r in records)
    text = head[:-len("[]\n}")] + ("[\n" + lines + "\n]" if records else "[]") + "\n}\n"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def read(path: Path) -> dict[str, Any]:
    """Load a results file written by :func:`write`; refuse other formats."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not a {FORMAT} file")
    return doc


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
