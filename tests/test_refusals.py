"""A backend that refuses a run fails it: fuzz, explore and load never report "no
issues" when the backend turned their requests away (wrong secret, wrong URL).

The backends here are the reference, started with a JWT secret the run does not
know (``--target-cmd 'JWT_SECRET=... exec python -m harness.reference'`` for the
commands that start one; the reference served on a loopback port for ``fuzz``,
which takes a URL), and the reference behind a wrong path prefix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from runs import processes_of, run_env

from harness.cli import main
from harness.db import Database
from harness.errors import TargetRefused
from harness.refusals import Tally

SECRET = "the-backends-own-secret-of-at-least-32-bytes"
WRONG = "not-the-backends-secret-but-32-bytes-long!!"
REFUSING = f"JWT_SECRET={SECRET} exec {sys.executable} -m harness.reference"


def _command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path,
                          env=run_env(tmp_path / "tmp", CHAT_HARNESS_DB="embedded"),
                          capture_output=True, text=True, timeout=300)


def _refused(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"chat-harness: {what} tested nothing: the backend refused" in proc.stderr
    assert "with 401/403 (the rule: more than half" in proc.stderr
    assert "Hint: check --jwt-secret" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_load_against_a_backend_that_refuses_its_tokens_fails(tmp_path: Path) -> None:
    proc = _command(tmp_path, "load", "--clients", "2", "--turns", "2", "--target-cmd",
                    REFUSING, "--reports", str(tmp_path / "reports"))
    _refused(proc, "load")
    assert "load: NOT TESTED" in proc.stdout and "load: OK" not in proc.stdout
    assert not processes_of(tmp_path / "tmp")


def test_explore_against_a_backend_that_refuses_its_tokens_fails(tmp_path: Path) -> None:
    proc = _command(tmp_path, "explore", "--max-examples", "5", "--target-cmd", REFUSING)
    _refused(proc, "explore")
    assert "the contract held" not in proc.stdout
    assert not processes_of(tmp_path / "tmp")


def test_the_same_runs_pass_when_the_secret_is_right(tmp_path: Path) -> None:
    """The control: the rule does not refuse a backend that accepts the tokens."""
    proc = _command(tmp_path, "load", "--clients", "2", "--turns", "2", "--jwt-secret",
                    SECRET, "--target-cmd", REFUSING, "--reports", str(tmp_path / "reports"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "load: OK" in proc.stdout


@pytest.fixture
def served(database: Database) -> str:
    from harness.targets.served import serve_reference

    database.reset()
    with serve_reference(database, jwt_secret=SECRET) as url:
        yield url  # type: ignore[misc]


def test_fuzz_with_the_wrong_secret_fails_instead_of_finding_no_issues(
        served: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fuzz", "--target-url", served, "--jwt-secret", WRONG,
                 "--max-examples", "5", "--max-time", "20"])
    out, err = capsys.readouterr()
    assert code == 3, out[-3000:] + err
    assert "fuzz tested nothing: the backend refused" in err
    assert "Hint: check --jwt-secret" in err and "--token" in err


def test_fuzz_at_a_url_without_the_api_fails_on_its_routes(
        served: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fuzz", "--target-url", f"{served}/not-here", "--jwt-secret", SECRET,
                 "--max-examples", "5", "--max-time", "20"])
    out, err = capsys.readouterr()
    assert code == 3, out[-3000:] + err
    assert "fuzz tested nothing at some routes: every request to" in err
    assert "POST /api/chat," in err  # an operation that never answers 404
    assert "GET /api/chat/session," not in err  # one that may: not judged by it
    assert "Hint: check --target-url" in err


@pytest.mark.parametrize(("answers", "refused"), [
    ([401] * 6 + [200] * 5, True),  # more than half refused
    ([401] * 5 + [200] * 5, False),  # half is not more than half
    ([403] * 3, True),
    ([200, 401, 422], False),
])
def test_the_auth_rule(answers: list[int], refused: bool) -> None:
    tally = Tally("demo")
    for status in answers:
        tally.add("POST", "/api/chat", status)
    tally.add("GET", "/api/chat/message", 401)  # a probe of a route the contract has not
    tally.add("POST", "/api/chat", 401, authorized=False)  # an odd token, on purpose
    assert (tally.verdict() is not None) == refused
    if refused:
        with pytest.raises(TargetRefused, match="the backend refused"):
            tally.check()


def test_the_route_rule_spares_operations_that_may_answer_404() -> None:
    tally = Tally("demo")
    for _ in range(3):
        tally.add("GET", "/api/chat/session?id=x", 404)  # the contract's 404: no session
        tally.add("GET", "/api/chat/sessions", 200)
    assert tally.verdict() is None
    for _ in range(3):
        tally.add("POST", "/api/chat/stream", 404)
    found = tally.verdict()
    assert found is not None and "POST /api/chat/stream" in found[0]
    assert "GET /api/chat/session" not in found[0]
