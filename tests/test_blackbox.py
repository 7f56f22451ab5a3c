"""Black-box targets: the reference started by --target-cmd, a running one by --target-url.

Real subprocesses, real sockets, the scripted provider as an HTTP server, and
real PostgreSQL; afterwards nothing the run started is left (processes found
by the run's own TMPDIR in their environment, files in that TMPDIR).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runs import (
    REFERENCE,
    ROOT,
    chat_harness,
    communicate_or_dump,
    poll_until,
    processes_of,
    run_env,
    slow_scenarios,
)

from harness.processes import Child, free_port
from harness.scenario.load import discover, load_file


def _env(tmp: Path) -> dict[str, str]:
    return run_env(tmp, CHAT_HARNESS_DB="embedded")


def _run(tmp: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return chat_harness("run", *args, "--reports", str(tmp / "reports"), "-q",
                        "-p", "no:cacheprovider", tmp=tmp / "tmp", timeout=timeout,
                        CHAT_HARNESS_DB="embedded")


def _outcomes(tmp: Path) -> dict[str, str]:
    doc = json.loads((tmp / "reports" / "results.json").read_text())
    return {r["scenario_id"]: r["outcome"] for r in doc["scenarios"]}


def _nothing_left(tmp: Path) -> None:
    assert processes_of(tmp / "tmp") == [], "a process the run started is still there"
    assert list((tmp / "tmp").iterdir()) == [], "the run left files in its TMPDIR"


def test_whole_suite_passes_through_target_cmd(tmp_path: Path) -> None:
    proc = _run(tmp_path, "scenarios", "--target-cmd", REFERENCE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    outcomes = _outcomes(tmp_path)
    loaded = [s for path in discover([ROOT / "scenarios"]) for s in load_file(path)]
    assert set(outcomes) == {s.id for s in loaded}
    # exactly as in-process: nothing skipped but the scenarios of another protocol
    other = {s.id for s in loaded if "contract" not in s.header.protocols}
    assert other and {outcomes[i] for i in other} == {"skipped"}
    assert {o for i, o in outcomes.items() if i not in other} == {"passed"}
    log = (tmp_path / "reports" / "target.log").read_text()
    assert "GET /api/health" in log and "POST /api/chat/messages" in log
    _nothing_left(tmp_path)


def test_seed_mutant_started_the_same_way_fails(tmp_path: Path) -> None:
    proc = _run(tmp_path, "scenarios/seed/429-switch-model-resend.yaml", "--target-cmd",
                REFERENCE, "--mutant", "request-id-first-match", "--mutant", "insert-not-upsert")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[pairing C-CHAT-2] request_id named" in proc.stdout
    assert "--target-cmd" in proc.stdout.split("Reproduce with:")[1]
    _nothing_left(tmp_path)


def test_a_backend_that_exits_early_stops_the_run_with_its_log(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -c \"print('cannot connect to DATABASE_URL'); raise SystemExit(4)\""
    proc = _run(tmp_path, "scenarios/seed", "--target-cmd", cmd, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "exited during start-up (exit code 4)" in out
    assert "cannot connect to DATABASE_URL" in out and "Traceback" not in out
    _nothing_left(tmp_path)


def test_a_backend_that_never_gets_healthy_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -c \"import time; print('warming up', flush=True); time.sleep(600)\""
    proc = _run(tmp_path, "scenarios/seed", "--target-cmd", cmd, "--start-timeout", "2",
                timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "was not ready within 2 s" in out and "warming up" in out
    _nothing_left(tmp_path)


def test_sigint_during_a_target_cmd_run_leaves_nothing(tmp_path: Path) -> None:
    scenarios = slow_scenarios(tmp_path, delay_ms=300)
    tmp = tmp_path / "tmp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenarios), "--target-cmd", REFERENCE,
         "--provider-timeout", "2000",  # slow answers, not timeouts
         "--reports", str(tmp_path / "reports"), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    log = tmp_path / "reports" / "target.log"
    poll_until(lambda: proc.poll() is not None or (
        log.exists() and b"POST /api/chat " in log.read_bytes()),
        lambda: "the run never got going", deadline_s=60)
    assert proc.poll() is None, "the run ended before it was interrupted"
    proc.send_signal(signal.SIGINT)
    communicate_or_dump(proc, timeout=60)
    assert proc.returncode != 0
    # children are reaped a moment after the parent
    poll_until(lambda: not processes_of(tmp), lambda: f"still running: {processes_of(tmp)}",
               deadline_s=30)
    _nothing_left(tmp_path)


def test_target_url_serves_the_provider_and_skips_db_scenarios(tmp_path: Path) -> None:
    """A backend the user started; no --db-url: DB-level scenarios are skipped, not passed."""
    from harness.db import provision

    port, provider_port = free_port(), free_port()
    with provision("embedded") as db:
        db.apply_schema(ROOT / "fixtures" / "schema.sql")
        env = {**_env(tmp_path / "backend-tmp"), "PORT": str(port), "DATABASE_URL": db.tcp_url,
               "OPENROUTER_BASE_URL": f"http://127.0.0.1:{provider_port}/api/v1",
               "OPENROUTER_API_KEY": "chat-harness-test-key",
               "JWT_SECRET": "chat-harness-jwt-secret-at-least-32-bytes",
               "PROVIDER_TIMEOUT_MS": "1000"}
        backend = Child(REFERENCE, log=tmp_path / "backend.log", env=env, what="the backend")
        try:
            import httpx

            def up() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200
                except httpx.HTTPError:
                    return False

            backend.wait_ready(up, timeout_s=60)
            target = ["--target-url", f"http://127.0.0.1:{port}",
                      "--provider-port", str(provider_port)]
            proc = _run(tmp_path, "scenarios/seed", "scenarios/chat/chat-stores-nothing.yaml",
                        "scenarios/stream/stream-newlines-kept.yaml", *target)
            # with the backend's database and leave to empty it, everything runs
            with_db = _run(tmp_path / "with-db", "scenarios/seed",
                           "scenarios/chat/chat-stores-nothing.yaml", *target,
                           "--db-url", db.tcp_url, "--reset-db")
        finally:
            backend.stop()
    assert with_db.returncode == 0, with_db.stdout + with_db.stderr
    assert set(_outcomes(tmp_path / "with-db").values()) == {"passed"}
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcomes = _outcomes(tmp_path)
    # the seed's chat steps run; what pins ids or reads the database is skipped, with why
    assert outcomes == {
        "429-switch-model-resend[current_message_id=true]": "skipped",
        "429-switch-model-resend[current_message_id=false]": "skipped",
        "replay-bug-report": "skipped", "chat-stores-nothing": "skipped",
        "stream-newlines-kept": "passed",
    }
    assert "it pins the session id conv_1755009248860_gy5e5xlyt" in proc.stdout
    assert "--reset-db" in proc.stdout
    assert "notice: no database given" in proc.stdout
    _nothing_left(tmp_path)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--target-cmd", "x", "--target-url", "http://a"], "exclude each other"),
        (["--target-url", "localhost:3000"], "must be an http(s) URL"),
        (["--target-url", "http://127.0.0.1:9", "--mutant", "server-timestamp"],
         "--mutant needs a backend the harness starts"),
    ],
)
def test_bad_target_options_are_usage_errors(tmp_path: Path, args: list[str],
                                             words: str) -> None:
    proc = _run(tmp_path, "scenarios/seed", *args, timeout=60)
    assert proc.returncode == 3 and words in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
