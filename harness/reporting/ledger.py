"""What pytest saw of every scenario: the ledger every report of a run counts from.

A scenario can end in many ways: its checks pass or fail, the harness raises
(a scenario error found at run time, a bug of the harness), its file does not
load (a collection error), or the run stops before it (Ctrl-C, SIGTERM, ``-x``,
a backend that died). pytest's reports see every one of them; a
:class:`~harness.result.ScenarioResult` exists only where the harness
got to make one. So the run's reports are built from this ledger: one entry
per collected scenario with pytest's outcome, merged with the result records
where there are any, one per scenario file that did not load, and one
``not run`` entry for each scenario the run never finished (the plugin also
sends pytest a report for each of those, so junit.xml and pytest's own last
line count them too).

Light on purpose (the standard library and pytest): the plugin keeps one for
every run.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

NOT_RUN = "not run"
MAX_MESSAGE_LINES = 60  # of a traceback pytest rendered, in a record


@dataclass
class Entry:
    nodeid: str
    outcome: str | None = None  # passed, failed, skipped, error; None: not run (yet)
    message: str = ""  # pytest's text of the failure, error or skip


@dataclass
class Ledger:
    entries: dict[str, Entry] = field(default_factory=dict)  # in collection order
    broken: dict[str, str] = field(default_factory=dict)  # a file's nodeid -> why it did not load
    stop: str | None = None  # why the run stopped early, as pytest was told

    def collected(self, nodeids: list[str]) -> None:
        for nodeid in nodeids:
            self.entries.setdefault(nodeid, Entry(nodeid))

    def reported(self, nodeid: str, when: str, outcome: str, message: str) -> None:
        """One of pytest's reports of a scenario (setup, call or teardown)."""
        entry = self.entries.setdefault(nodeid, Entry(nodeid))
        if outcome == "failed":
            if entry.outcome not in ("failed", "error"):  # the first failure says why
                entry.outcome = "failed" if when == "call" else "error"
                entry.message = message
        elif outcome == "skipped":
            if entry.outcome is None:
                entry.outcome, entry.message = "skipped", message
        elif outcome == NOT_RUN:
            entry.outcome, entry.message = NOT_RUN, message
        elif when == "call" and entry.outcome is None:
            entry.outcome = "passed"

    def collection_error(self, nodeid: str, message: str) -> None:
        self.broken.setdefault(nodeid, message)

    def not_run(self) -> list[str]:
        return [n for n, e in self.entries.items() if e.outcome in (None, NOT_RUN)]

    @property
    def empty(self) -> bool:
        return not self.entries and not self.broken

    # -- the records of results.json ---------------------------------------------------

    def records(self, rich: dict[str, dict[str, Any]], *, target: str,
                display: Any) -> list[dict[str, Any]]:
        """Every scenario's record: the broken files first, then the collected
        scenarios in order, each the harness's own record where there is one, its
        outcome the one pytest counted. ``display(nodeid_file)`` is the file as shown."""
        out = [_broken(nodeid, message, target, display) for nodeid, message in
               self.broken.items()]
        for nodeid, entry in self.entries.items():
            record = dict(rich[nodeid]) if nodeid in rich else _bare(nodeid, target, display)
            outcome = entry.outcome or NOT_RUN
            record["outcome"] = outcome
            if outcome == NOT_RUN:
                record["not_run"] = entry.message or NOT_RUN
            elif outcome == "skipped" and not record.get("skipped"):
                record["skipped"] = entry.message
            elif outcome in ("failed", "error") and not record.get("failures"):
                record["failures"] = [_failure("harness_error", entry.message)]
                record["checks_failed"] = ["harness_error"]
            out.append(record)
        out += [dict(r) for n, r in rich.items() if n not in self.entries]
        return out


def _failure(check: str, message: str) -> dict[str, Any]:
    lines = message.strip().splitlines()
    if len(lines) > MAX_MESSAGE_LINES:
        lines = ["...", *lines[-MAX_MESSAGE_LINES:]]
    return {"check": check, "message": "\n".join(lines) or check, "step": None,
            "expected": None, "actual": None, "clause": None}


def _bare(nodeid: str, target: str, display: Any) -> dict[str, Any]:
    """The record of a scenario the harness has no result of."""
    file, _, name = nodeid.partition("::")
    return {"nodeid": nodeid, "scenario_id": name, "file": display(file), "target": target,
            "steps": [], "failures": [], "exchanges": [], "skipped": None, "duration_s": 0.0,
            "reproduce": f"chat-harness run '{display(file)}::{name}'", "backend_log": None,
            "checks_failed": [], "clauses_broken": []}


def _broken(nodeid: str, message: str, target: str, display: Any) -> dict[str, Any]:
    """The record of a scenario file that did not load."""
    record = _bare(nodeid, target, display)
    record.update(scenario_id=display(nodeid), outcome="error",
                  failures=[_failure("collection", message)], checks_failed=["collection"],
                  reproduce=f"chat-harness run {display(nodeid)}")
    return record


def stop_reason(*, signals: list[str], stop: str | None, shouldfail: Any, shouldstop: Any,
                interrupted: bool) -> str | None:
    """Why the run stopped before its end, in words that read after "not run: "
    and before "after N of M scenarios"; None when it was not stopped."""
    if signals:
        return f"interrupted by {signals[0]}"
    if stop:
        return stop
    if shouldfail:
        return f"stopped ({shouldfail})"
    if shouldstop:
        return f"stopped ({shouldstop})"
    return "interrupted" if interrupted else None


def describe_stop(exc: BaseException) -> str:
    """What pytest was told when it stopped: ``pytest.exit``'s message, a collection
    error count, or a Ctrl-C."""
    msg = getattr(exc, "msg", None)  # pytest.exit(...)
    if msg:  # its first clause: "chat-harness cannot go on: the backend exited ..."
        first = str(msg).strip().splitlines()[0].split("; ")[0].rstrip(" :")
        return f"stopped ({first[:160]})"
    text = str(exc).strip()
    if type(exc).__name__ == "Interrupted" and text:  # n errors during collection
        # or an xdist worker's start-up failure: its cause, without the hint
        return f"stopped by {text.split(' Hint: ')[0]}"
    return "interrupted" + (f" ({text})" if text and text not in ("SIGINT", "SIGTERM") else "")


# -- the pytest side: fed by pytest's hooks in the process that writes the reports -------


class RunLedger:
    """A pytest plugin object (registered by :mod:`harness.plugin` in a serial run
    and in an xdist controller): keeps the :class:`Ledger`, makes pytest count the
    scenarios a stopped run never finished, and then calls ``finish`` to write the
    reports."""

    def __init__(self, config: Any, *, signals: list[str], finish: Any) -> None:
        self.config = config
        self.ledger = Ledger()
        self.signals = signals  # SIGINT/SIGTERM received, in order (the plugin's handler)
        self.finish = finish  # finish(config, ledger, reason): writes the reports
        self.running: set[str] = set()

    def _scenario(self, nodeid: str) -> bool:
        return nodeid in self.ledger.entries or nodeid.split("::")[0].lower().endswith(
            (".yaml", ".yml"))

    def pytest_collection_finish(self, session: Any) -> None:
        self.ledger.collected([i.nodeid for i in session.items
                               if getattr(i, "scenario", None) is not None])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.ledger.collected([i for i in ids if self._scenario(i) and "::" in i])

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed and "::" not in report.nodeid and self._scenario(report.nodeid):
            self.ledger.collection_error(report.nodeid, report.longreprtext)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.running.add(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.running.discard(nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        not_run = getattr(report, "chat_harness_not_run", False)
        if report.nodeid in self.ledger.entries or not_run:
            message = report.longreprtext if not report.passed else ""
            if not_run and report.passed:
                return  # the teardown half of a "not run" report
            self.ledger.reported(report.nodeid, report.when,
                                 NOT_RUN if not_run else report.outcome, message)

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.ledger.stop = describe_stop(excinfo.value)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: Any) -> tuple[str, str, Any] | None:
        if getattr(report, "chat_harness_not_run", False):
            if report.when != "setup":
                return "", "", ""
            return NOT_RUN, "N", ("NOT RUN", {"red": True})
        return None

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: Any) -> Generator[None, Any, Any]:
        """Before every other plugin's end: the scenarios not run are reported to pytest
        (junit.xml and pytest's last line count them); after them: the reports."""
        config = self.config
        reason = stop_reason(
            signals=self.signals, stop=self.ledger.stop, shouldfail=session.shouldfail,
            shouldstop=session.shouldstop,
            interrupted=int(session.exitstatus) == 2)  # ExitCode.INTERRUPTED
        collect_only = getattr(config.option, "collectonly", False)
        if not collect_only and not self.ledger.empty:
            # pytest's session counts them as failures (-x would say "after 22 failures")
            kept = session.testsfailed, session.shouldfail
            for nodeid in self.ledger.not_run():
                why = reason or "the run ended before it"
                if nodeid in self.running:
                    why += ", while it ran"
                self._report_not_run(nodeid, f"{NOT_RUN}: {why}")
            session.testsfailed, session.shouldfail = kept
        result = yield
        if not collect_only and not self.ledger.empty:
            _fix_junit(getattr(config.option, "xmlpath", None))
            self.finish(config, self.ledger, reason)
        return result

    def _report_not_run(self, nodeid: str, message: str) -> None:
        file, _, name = nodeid.partition("::")
        location = (file, None, name)
        hook = self.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        # a setup error (what junit.xml shows red), then its teardown, as pytest sends them
        reports = (pytest.TestReport(nodeid=nodeid, location=location, keywords={name: 1},
                                     outcome="failed", longrepr=message, when="setup"),
                   pytest.TestReport(nodeid=nodeid, location=location, keywords={name: 1},
                                     outcome="passed", longrepr=None, when="teardown"))
        for report in reports:
            report.chat_harness_not_run = True  # type: ignore[attr-defined]
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def write_reports(config: Any, ledger: Ledger, rich: dict[str, dict[str, Any]], *,
                  target: str, meta: dict[str, Any], reason: str | None,
                  reports: Path | None) -> tuple[str, Path | None]:
    """results.json and report.html of the run (none with ``--reports ''``): every
    scenario of the ledger, which set ran and from where, and why the run stopped if
    it did. Returns the closing line and the results file written."""
    from harness.config import describe_source
    from harness.reporting import html, jsonfile

    here = Path.cwd()
    # a node id's file is relative to the rootdir, or (outside it) to a path given
    bases = [config.rootpath, config.invocation_params.dir]
    for arg in config.args:
        given = Path(arg.split("::")[0]).resolve()
        bases += [given, given.parent]

    def where(file: str) -> Path:
        found = (base / file for base in bases if (base / file).exists())
        return next(found, config.rootpath / file).resolve()

    def display(file: str) -> str:
        path = where(file)
        return path.relative_to(here).as_posix() if path.is_relative_to(here) else str(path)

    records = ledger.records(rich, target=target, display=display)
    files = [where(n.split("::")[0]) for n in [*ledger.broken, *ledger.entries]]
    not_run = ledger.not_run()
    meta = {**meta, "interrupted": reason or ("the run ended" if not_run else None),
            "not_run": not_run, "collected": len(ledger.entries),
            "source": describe_source(Path(os.path.commonpath([f.parent for f in files])))}
    if reports is None:
        doc = {**meta, "summary": jsonfile.summary(records), "scenarios": records}
        return html.summary_line(doc), None
    path = jsonfile.write(reports / "results.json", records, meta=meta)
    return html.after_run(path), path  # after_run writes report.html next to it


def _fix_junit(path: str | None) -> None:
    """pytest's junit.xml says a setup error 'failed on setup with "REASON"': a scenario
    not run says ``not run: REASON`` instead (the same element, an error CI shows red)."""
    if not path:
        return
    import xml.etree.ElementTree as ET

    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return
    changed = False
    prefix = f'failed on setup with "{NOT_RUN}: '
    for error in tree.iter("error"):
        message = error.get("message") or ""
        if message.startswith(prefix):
            error.set("message", message[len('failed on setup with "'):].rstrip('"'))
            changed = True
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
