"""A run whose backend or database does not come up says why in one line, with a hint
and chat-harness's summary line, and exits non-zero: no pytest ``Exit`` repr, no
traceback (issue 15)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from runs import chat_harness

from harness.errors import DatabaseError, TargetError
from harness.reporting.startup import RETURNCODE, lines

SCENARIO = "scenarios/errors/health.yaml"


def _closed_port() -> int:
    """A port nothing listens on (it was bound a moment ago, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return chat_harness("run", SCENARIO, *args, "--reports", str(tmp / "reports"), "-q",
                        "-p", "no:cacheprovider", tmp=tmp / "tmp", timeout=180)


def _assert_told(proc: subprocess.CompletedProcess[str], cause: str, hint: str) -> list[str]:
    """One line of cause (with ``cause`` in it), a hint line, the summary line last."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == RETURNCODE, out
    assert "_pytest.outcomes.Exit" not in out and "Exit:" not in out, out
    assert "Traceback" not in out, out
    shown = proc.stdout.rstrip("\n").splitlines()
    first = next(i for i, line in enumerate(shown) if line.startswith("chat-harness cannot run: "))
    assert cause in shown[first], out
    hints = [line for line in shown[first:] if line.startswith("Hint: ")]
    assert len(hints) == 1 and hint in hints[0], out
    assert shown[-1].startswith("chat-harness: stopped (chat-harness cannot run: "), out
    assert "1 not run" in shown[-1], out
    return shown


def test_a_refused_target_url_says_refused_not_unhealthy(tmp_path: Path) -> None:
    port = _closed_port()
    proc = _run(tmp_path, "--target-url", f"http://127.0.0.1:{port}")
    shown = _assert_told(proc, f"GET http://127.0.0.1:{port}/api/health: the connection was "
                         "refused", "start the backend first")
    assert not any("did not answer 200" in line for line in shown)


def test_a_target_cmd_that_exits_at_once_is_one_line_and_a_hint(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--target-cmd", "false")
    _assert_told(proc, "the backend (--target-cmd 'false') exited during start-up (exit code 1)",
                 "CMD must listen on $PORT")
    assert "target.log) is empty" in proc.stdout


def test_an_unreachable_db_url_is_one_line_and_a_hint(tmp_path: Path) -> None:
    port = _closed_port()
    proc = _run(tmp_path, "--db-url", f"postgresql://user:secret@127.0.0.1:{port}/postgres")
    _assert_told(proc, "cannot use --db-url: connection failed", f"PostgreSQL runs at "
                 f"127.0.0.1:{port}")
    assert "secret" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("error", "expected"), [
    (TargetError("the backend exited; its log ends:\nboom\n\nbang", hint="look"),
     ("chat-harness cannot run: the backend exited; its log ends:", ["  boom", "  bang",
                                                                      "Hint: look"])),
    (DatabaseError("no server"), ("chat-harness cannot run: no server", [])),
])
def test_lines_put_the_cause_first_then_details_then_the_hint(
        error: TargetError, expected: tuple[str, list[str]]) -> None:
    assert lines(error, "cannot run") == expected


def test_a_start_up_failure_in_an_xdist_worker_is_no_internal_error(tmp_path: Path) -> None:
    """Each worker starts its own backend: one that cannot start stops the run with its
    cause and hint, as a serial run does, not with xdist's INTERNALERROR."""
    proc = chat_harness("run", "scenarios/errors", "-n", "2", "--target-cmd", "false",
                        "--reports", str(tmp_path / "reports"), "-q", "-p", "no:cacheprovider",
                        tmp=tmp_path / "tmp", timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == RETURNCODE, out
    assert "INTERNALERROR" not in out and "Traceback" not in out, out
    assert "Interrupted" not in out, out
    assert "chat-harness cannot run: the backend (--target-cmd 'false') exited" in out, out
    assert "Hint: CMD must listen on $PORT" in out, out
    last = proc.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("chat-harness: stopped by chat-harness cannot run: "), out
    assert "Hint" not in last and "not run" in last, out
