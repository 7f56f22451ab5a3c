"""Every way a scenario can end is counted, the same, in every report of the run.

For each kind of ending (a check failure, a backend 500 at a step, a bug of
the harness, a scenario error found at run time, a file that does not load, an
interrupted run) a real ``chat-harness run`` runs in a folder of its own, and
five readers count its outcome: pytest's last line, the closing
``chat-harness:`` line, junit.xml, results.json and report.html. They must
agree with each other and with what the case expects; a scenario that did not
end well is never counted as passed, nor left out.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from runs import poll_until, processes_of, run_env

KEYS = ("failed", "passed", "skipped", "errors", "not_run")
EMBEDDED = {"CHAT_HARNESS_DB": "embedded"}

PASSING = "name: {name}\nmodel: m/free\nsteps:\n  - chat: hello\n    provider: {{reply: hi}}\n"
# a session list of 5 expected where the backend has none: the scenario's own expectation fails
CHECK_FAILURE = ("name: check-failure\nmodel: m/free\nsteps:\n  - chat: hello\n"
                 "    provider: {reply: hi}\n  - http: GET /api/chat/sessions\n"
                 "    expect: {status: 200, body: {count: 5}}\n")
BACKEND_500 = "name: backend-500\nsteps:\n  - http: GET /api/chat/sessions\n"
RUNTIME_SCENARIO_ERROR = ("name: bad-query\nmodel: m/free\nsteps:\n  - chat: hello\n"
                          "    provider: {reply: hi}\n"
                          "  - db: SELECT no_such_column FROM chat_messages\n")
HARNESS_BUG = ("name: harness-bug\nmodel: m/free\nsteps:\n  - chat: hello\n"
               "    provider: {reply: hi}\n  - chat: plant a harness bug\n"
               "    provider: {reply: hi}\n")
BROKEN = "name: broken\nmodel: m/free\nsteps:\n  - chat: hi\n    provider:\n      status: x\n"
SLOW = ("name: c-slow\nmodel: m/free\nsteps:\n"
        + "".join(f"  - chat: hello {i}\n    provider: {{reply: hi, delay_ms: 400}}\n"
                  for i in range(40)))

# a step of the harness that raises where no bug of the backend could: a bug of ours
PLANTED_BUG = '''
import harness.runner.steps as steps

_execute = steps.execute


async def execute(run, index, step):
    if getattr(step, "chat", None) == "plant a harness bug":
        raise ZeroDivisionError("a bug planted by the test")
    return await _execute(run, index, step)


steps.execute = execute
'''
# tells the test which scenario runs (so it can interrupt one that is running)
STARTS = '''
import os


def pytest_runtest_logstart(nodeid, location):
    with open(os.environ["STARTED_FILE"], "a") as out:
        out.write(nodeid + "\\n")
'''
# a backend that is up and answers 500 to everything else, saying so in its log
TINY_500 = '''
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/health":
            self.answer(200, {"status": "ok"})
        else:
            sys.stderr.write(f"tiny backend: boom on GET {self.path}\\n")
            sys.stderr.flush()
            self.answer(500, {"error": "boom", "code": "internal_server_error",
                              "timestamp": "2025-01-01T00:00:00.000Z"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-request-id", "tiny")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''

# the same backend, gone at the second request: the run cannot go on
DYING = TINY_500.replace("        else:\n", "        elif COUNT.append(1) or len(COUNT) > 1:\n"
                         "            os._exit(1)\n        else:\n").replace(
    "class Handler(", "COUNT = []\n\n\nclass Handler(")


@dataclass
class Case:
    files: dict[str, str]
    expected: dict[str, int]
    args: list[str] = field(default_factory=list)
    check: str | None = None  # the check named in the failing record
    interrupt_at: str | None = None  # send SIGINT once this scenario runs


CASES = {
    "check-failure": Case({"a.yaml": PASSING.format(name="a"), "b.yaml": CHECK_FAILURE},
                          {"failed": 1, "passed": 1}, check="expect"),
    "backend-500": Case({"a.yaml": PASSING.format(name="a"), "b.yaml": BACKEND_500,
                         "../tiny.py": TINY_500},
                        {"failed": 2}, args=["--target-cmd", f"exec {sys.executable} tiny.py"],
                        check="expect"),
    "harness-bug": Case({"a.yaml": PASSING.format(name="a"), "b.yaml": HARNESS_BUG,
                         "conftest.py": PLANTED_BUG},
                        {"failed": 1, "passed": 1}, check="harness_error"),
    "scenario-error-at-run-time": Case(
        {"a.yaml": PASSING.format(name="a"), "b.yaml": RUNTIME_SCENARIO_ERROR},
        {"failed": 1, "passed": 1}, check="scenario_error"),
    "collection-error": Case({"a.yaml": PASSING.format(name="a"), "broken.yaml": BROKEN},
                             {"errors": 1, "not_run": 1}, check="collection"),
    "backend-died": Case({"a.yaml": BACKEND_500, "b.yaml": BACKEND_500, "c.yaml": BACKEND_500,
                          "../dying.py": DYING}, {"failed": 2, "not_run": 1},
                         args=["--target-cmd", f"exec {sys.executable} dying.py"]),
    "interrupted": Case({"a.yaml": PASSING.format(name="a"), "b.yaml": PASSING.format(name="b"),
                         "c-slow.yaml": SLOW, "d.yaml": PASSING.format(name="d"),
                         "conftest.py": STARTS},
                        {"passed": 2, "not_run": 2}, interrupt_at="c-slow"),
}


# -- the five readers -----------------------------------------------------------------


def _full(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts.get(k, 0) for k in KEYS}


def pytest_line(out: str) -> dict[str, int]:
    line = next(ln for ln in reversed(out.splitlines())
                if re.fullmatch(r"=+ .* in [\d.]+s.* =+", ln))
    words = {"failed": "failed", "passed": "passed", "skipped": "skipped", "error": "errors",
             "errors": "errors", "not run": "not_run"}
    found = dict.fromkeys(KEYS, 0)
    for n, word in re.findall(r"(\d+) (failed|passed|skipped|errors?|not run)", line):
        found[words[word]] = int(n)
    return found


def closing_line(out: str) -> dict[str, int]:
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("chat-harness: "))
    m = re.match(r"chat-harness: (?:.* after (\d+) of (\d+) scenarios: )?(\d+) failed"
                 r"(?: \([^)]*\))?, (\d+) passed, (\d+) skipped(?:, (\d+) errors?)?"
                 r"(?:, (\d+) not run)? against ", line)
    assert m, line
    return {"failed": int(m[3]), "passed": int(m[4]), "skipped": int(m[5]),
            "errors": int(m[6] or 0), "not_run": int(m[7] or 0)}


def junit(path: Path) -> dict[str, int]:
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None
    not_run = [e for e in suite.iter("error")
               if (e.get("message") or "").startswith("not run: ")]
    tests, failures = int(suite.get("tests", 0)), int(suite.get("failures", 0))
    errors, skipped = int(suite.get("errors", 0)), int(suite.get("skipped", 0))
    assert len(suite.findall("testcase")) == tests
    return {"failed": failures, "passed": tests - failures - errors - skipped,
            "skipped": skipped, "errors": errors - len(not_run), "not_run": len(not_run)}


def results(doc: dict[str, object]) -> dict[str, int]:
    summary = doc["summary"]
    assert isinstance(summary, dict)
    return {k: int(summary[k]) for k in KEYS}


def html_cards(text: str) -> dict[str, int]:
    cards = dict(re.findall(r'data-count="(\w+)"><b>(\d+)</b>', text))
    return {k: int(cards.get(k, 0)) for k in KEYS}


# -- the runs -------------------------------------------------------------------------


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = (folder / "scenarios" / name).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if name.endswith(".py") else text)


def _run(case: Case, folder: Path) -> tuple[int, str]:
    args = [sys.executable, "-m", "harness", "run", "scenarios", "--reports",
            str(folder / "reports"), "-p", "no:cacheprovider", *case.args]
    env = run_env(folder / "tmp", **EMBEDDED, STARTED_FILE=str(folder / "started.txt"))
    if case.interrupt_at is None:
        done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=300)
        return done.returncode, done.stdout + done.stderr
    out_file = folder / "run.out"
    with out_file.open("wb") as out:
        proc = subprocess.Popen(args, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    started = folder / "started.txt"
    try:
        poll_until(lambda: (started.exists() and case.interrupt_at in started.read_text())
                   or proc.poll() is not None,
                   lambda: f"{case.interrupt_at} never started", deadline_s=120)
        assert proc.poll() is None, out_file.read_text()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out_file.read_text()


@pytest.mark.parametrize("kind", list(CASES))
def test_every_report_counts_the_same(kind: str, tmp_path: Path) -> None:
    case = CASES[kind]
    _write(tmp_path, case.files)
    code, out = _run(case, tmp_path)
    reports = tmp_path / "reports"
    doc = json.loads((reports / "results.json").read_text())
    page = (reports / "report.html").read_text()
    seen = {
        "pytest's last line": pytest_line(out),
        "the chat-harness line": closing_line(out),
        "junit.xml": junit(reports / "junit.xml"),
        "results.json": results(doc),
        "report.html": html_cards(page),
    }
    expected = _full(case.expected)
    wrong = {reader: counts for reader, counts in seen.items() if counts != expected}
    assert not wrong, f"expected {expected}, got {wrong}\n{out[-4000:]}"
    assert code != 0, out[-3000:]  # nothing here is a green run
    assert doc["summary"]["scenarios"] == sum(expected.values()) == len(doc["scenarios"])
    assert "Traceback" not in out.split("= FAILURES =")[0], out[-3000:]
    if case.check:
        checks = {c for r in doc["scenarios"] for c in r["checks_failed"]}
        assert case.check in checks, doc["scenarios"]
    assert not processes_of(tmp_path / "tmp"), "the run left processes behind"


def test_an_interrupted_run_says_so_in_every_report(tmp_path: Path) -> None:
    case = CASES["interrupted"]
    _write(tmp_path, case.files)
    code, out = _run(case, tmp_path)
    reports = tmp_path / "reports"
    assert code == pytest.ExitCode.INTERRUPTED, out[-3000:]
    doc = json.loads((reports / "results.json").read_text())
    assert doc["interrupted"] == "interrupted by SIGINT"
    not_run = ["scenarios/c-slow.yaml::c-slow", "scenarios/d.yaml::d"]
    assert doc["not_run"] == not_run
    assert [r["outcome"] for r in doc["scenarios"]] == ["passed", "passed", "not run", "not run"]
    messages = [e.get("message") for e in ET.parse(reports / "junit.xml").iter("error")]
    assert messages == ["not run: interrupted by SIGINT, while it ran",
                        "not run: interrupted by SIGINT"]
    page = (reports / "report.html").read_text()
    assert 'class="banner"' in page and "Interrupted by SIGINT after 2 of 4 scenarios" in page
    assert "every scenario passed" not in page
    assert "chat-harness: interrupted by SIGINT after 2 of 4 scenarios: " in out


def test_a_harness_bug_is_reported_as_one_not_as_a_finding(tmp_path: Path) -> None:
    case = CASES["harness-bug"]
    _write(tmp_path, case.files)
    code, out = _run(case, tmp_path)
    assert code == 1, out[-3000:]
    doc = json.loads((tmp_path / "reports" / "results.json").read_text())
    (bug,) = [r for r in doc["scenarios"] if r["outcome"] == "failed"]
    (failure,) = bug["failures"]
    assert failure["check"] == "harness_error" and failure["step"] == 1  # the step it hit
    assert "a bug of the harness, not a finding about the backend" in failure["message"]
    assert "ZeroDivisionError: a bug planted by the test" in failure["actual"]
    assert [s["index"] for s in bug["steps"]] == [0, 1]  # what ran before it is kept
    assert "1 failed (1 harness error), 1 passed" in out
    assert "ZeroDivisionError: a bug planted by the test" in out  # its traceback, to report


def test_a_backend_500_shows_the_end_of_the_backend_log(tmp_path: Path) -> None:
    case = CASES["backend-500"]
    _write(tmp_path, case.files)
    code, out = _run(case, tmp_path)
    assert code == 1, out[-3000:]
    assert "its last 1 lines (all of it: reports/target.log)" in out
    assert "  | tiny backend: boom on GET /api/chat/sessions" in out
    doc = json.loads((tmp_path / "reports" / "results.json").read_text())
    logs = {r["scenario_id"]: r["backend_log"] for r in doc["scenarios"]}
    assert logs["backend-500"] == {"path": "reports/target.log",
                                   "tail": ["tiny backend: boom on GET /api/chat/sessions"]}


def test_the_reports_are_not_stale_after_a_run_that_ran_nothing(tmp_path: Path) -> None:
    """A broken file stops the run before any scenario: the reports say that, not what
    an earlier run left in the folder."""
    good = Case({"a.yaml": PASSING.format(name="a")}, {"passed": 1})
    _write(tmp_path, good.files)
    assert _run(good, tmp_path)[0] == 0
    _write(tmp_path, {"broken.yaml": BROKEN})
    code, out = _run(good, tmp_path)
    assert code == pytest.ExitCode.INTERRUPTED, out[-3000:]
    doc = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert results(doc) == _full({"errors": 1, "not_run": 1})
    assert doc["interrupted"] == "stopped by 1 error during collection"
    assert "scenarios/broken.yaml:6: steps[0].provider.status" in doc["scenarios"][0][
        "failures"][0]["message"]
