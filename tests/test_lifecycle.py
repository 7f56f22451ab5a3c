"""`chat-harness run` as users run it: a real process, and nothing left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runs import (
    ROOT,
    communicate_or_dump,
    poll_until,
    processes_of,
    run_env,
    slow_scenarios,
)

SEED = "scenarios/seed/429-switch-model-resend.yaml"
EMBEDDED = {"CHAT_HARNESS_DB": "embedded"}  # whatever the machine's Docker


def _our_dirs(tmp: Path) -> set[Path]:
    return set(tmp.glob("chat-harness-pg-*"))


def _postgres_running(tmp: Path) -> bool:
    """A PostgreSQL server of the run whose TMPDIR is ``tmp`` runs (its data and socket
    may be elsewhere: /dev/shm, a short /tmp folder)."""
    for pid in processes_of(tmp):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"/postgres"):
            return True
    return False


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())",
            *args]


@pytest.mark.parametrize(
    ("mutants", "code"), [((), 0), (("request-id-first-match", "insert-not-upsert"), 1)],
    ids=["passing", "failing"],
)
def test_a_run_stops_everything_it_started(
    mutants: tuple[str, ...], code: int, tmp_path: Path
) -> None:
    tmp = tmp_path / "t"
    args = ["run", SEED, "-q", "-p", "no:cacheprovider"]
    for m in mutants:
        args += ["--mutant", m]
    proc = subprocess.run(_cli(*args), cwd=ROOT, capture_output=True, text=True,
                          env=run_env(tmp, **EMBEDDED), timeout=180)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert ("2 passed" if code == 0 else "2 failed") in proc.stdout
    assert list(tmp.iterdir()) == [], "the run left files behind"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_no_server_behind(sig: signal.Signals, tmp_path: Path) -> None:
    scenarios = slow_scenarios(tmp_path)  # keeps the run busy long enough
    tmp = tmp_path / "t"
    proc = subprocess.Popen(
        _cli("run", str(scenarios), "-q", "-p", "no:cacheprovider",
             "--fixtures-dir", str(ROOT / "fixtures")),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=run_env(tmp, **EMBEDDED),
    )
    try:
        def started() -> set[Path]:
            assert proc.poll() is None, "the run ended before it could be interrupted"
            return {d for d in _our_dirs(tmp) if (d / "postgres.log").exists()}

        (data_dir,) = poll_until(started, lambda: "the run never started its database",
                                 deadline_s=60)
        # once the server answers, the run is inside a scenario
        poll_until(lambda: _postgres_running(tmp), lambda: "the database never came up",
                   deadline_s=60)
        proc.send_signal(sig)
        out = communicate_or_dump(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    assert not data_dir.exists(), f"{data_dir} left behind\n{out.decode(errors='replace')}"
    assert not _postgres_running(tmp)


SWALLOWS = """
import os, signal

def test_one():
    try:
        os.kill(os.getpid(), signal.{sig})
    except KeyboardInterrupt:
        pass  # as a weakref callback or a __del__ does: printed, then carried on

{more}
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("last", [False, True], ids=["before-another", "last"])
def test_a_swallowed_signal_still_stops_the_run(sig: str, last: bool, tmp_path: Path) -> None:
    """In a chat-harness run (a scenario was collected; deselected here, so that nothing
    starts) the interrupt stops the run before the next test, or fails it at the end."""
    more = "" if last else "def test_two():\n    raise AssertionError('ran after the signal')\n"
    (tmp_path / "test_swallow.py").write_text(SWALLOWS.format(sig=sig, more=more))
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "idle.yaml").write_text(
        "name: idle\nsteps:\n  - http: GET /api/health\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-k", "not idle", str(tmp_path / "test_swallow.py"), str(tmp_path / "scenarios")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout + proc.stderr
    assert "ran after the signal" not in proc.stdout


def test_a_ctrl_c_inside_a_step_is_not_reported_twice(tmp_path: Path) -> None:
    """The handler's KeyboardInterrupt lands in a request's task (``asyncio.wait_for``'s):
    the step is cancelled, and its ``wait_for`` hands it the same interruption. It goes
    on, and asyncio does not print it again at exit as a task exception never retrieved."""
    script = """
        import asyncio, gc
        from pathlib import Path
        from harness.config import RunConfig
        from harness.runner.session import Harness

        async def request():
            raise KeyboardInterrupt("SIGINT")  # what the handler raises, mid-request

        async def step():
            await asyncio.wait_for(request(), 10)

        harness = Harness(RunConfig(fixtures=Path("fixtures")))
        try:
            harness.start()
            try:
                harness.call(step())
            except KeyboardInterrupt:
                print("interrupted")
            gc.collect()  # the task, in a cycle with its exception's frames, goes now
        finally:
            harness.close()
    """
    import textwrap

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT,
                          env=run_env(tmp_path, **EMBEDDED), capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "interrupted", done.stdout + done.stderr
    assert "never retrieved" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_run_that_does_not_end_shows_where_its_threads_are(tmp_path: Path) -> None:
    """SIGUSR1 makes chat-harness print every thread's stack and go on, past pytest's
    capture of fd 2: a test that waits for a run in vain shows where it hangs (here a
    run of slow provider answers, still at work)."""
    scenarios = slow_scenarios(tmp_path, steps=60)
    tmp = tmp_path / "t"
    proc = subprocess.Popen(
        _cli("run", str(scenarios), "-q", "-p", "no:cacheprovider",
             "--fixtures-dir", str(ROOT / "fixtures")),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=run_env(tmp, **EMBEDDED))
    try:
        poll_until(lambda: _postgres_running(tmp), lambda: "the database never came up",
                   deadline_s=60)
        with pytest.raises(AssertionError) as failure:
            communicate_or_dump(proc, timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = str(failure.value)
    assert "the run did not end within 1 s" in text
    assert "(most recent call first)" in text and "harness/" in text, text
