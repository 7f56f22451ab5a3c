"""The JSON result file: one record per scenario, everything a reader needs.

Steps with their requests, answers and provider calls, the failures with the
clause each breaks, timings, and the command that reruns the scenario. The
HTML report and ``chat-harness mutants`` read this file; CI systems may too.
The shape is versioned (``format``) so readers can refuse what they do not know.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.errors import InvalidInput
from harness.result import ScenarioResult

FORMAT = "chat-harness-results/1"
MAX_TEXT = 4000  # longer strings (20000-character messages, 10 MiB bodies) are cut


def _trim(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + f"... ({len(value) - MAX_TEXT} more characters)"
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trim(v) for v in value]
    return value


def record(result: ScenarioResult, *, outcome: str | None = None,
           nodeid: str | None = None) -> dict[str, Any]:
    """One scenario as plain JSON data (``outcome``: passed, failed or skipped; the
    run's ledger may make it ``error`` or ``not run``)."""
    data = _trim(asdict(result))
    if nodeid is not None:
        data["nodeid"] = nodeid
    # each step carries its own exchanges; at the top only the checks' own requests
    data["exchanges"] = [e for e in data["exchanges"] if e["step"] is None]
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
        "scenarios": records,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # ASCII escapes: lone surrogates and NULs (C-ERR-3 scenarios send them) stay readable
    tmp.write_text(json.dumps(doc, indent=1, default=_plain) + "\n", encoding="utf-8")
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
