"""A harness killed outright (SIGKILL) takes its servers with it (Linux)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from runs import ROOT, poll_until, run_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux's")

def _gone(pid: int) -> bool:
    """No such process, or a zombie (it runs nothing; init reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def _kill_harness_and_watch(code: str, tmp_path: Path) -> None:
    """Run ``code`` (which prints a child pid and waits), SIGKILL it, the child must go."""
    script = tmp_path / "harness_like.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=run_env(tmp_path),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"the script printed {line!r}"
        child = int(line)
        assert not _gone(child)
    finally:
        proc.kill()
        proc.wait()
    poll_until(lambda: _gone(child),
               lambda: f"process {child} outlived the harness that started it", deadline_s=30)


def test_a_started_child_dies_with_a_killed_harness(tmp_path: Path) -> None:
    _kill_harness_and_watch(f"""
        import sys, time
        from pathlib import Path
        from harness.processes import Child
        child = Child([sys.executable, "-c", "import time; time.sleep(120)"],
                      log=Path({str(tmp_path)!r}) / "child.log", what="a sleeper")
        print(child.pid, flush=True)
        time.sleep(120)
    """, tmp_path)


def test_embedded_postgres_dies_with_a_killed_harness(tmp_path: Path) -> None:
    """Even run as another user (pgserver's, when we are root): the signal survives setuid."""
    _kill_harness_and_watch("""
        import time
        from harness.db import embedded
        db = embedded.start(cache=False)
        pid = int((db.data_dir / "postmaster.pid").read_text().split()[0])
        print(pid, flush=True)
        time.sleep(120)
    """, tmp_path)
    # its folders stay (nobody ran the clean-up) until the next start removes them
    assert list(tmp_path.glob("chat-harness-pg-*"))
    subprocess.run([sys.executable, "-c", "from harness.db import embedded; "
                    "embedded.start(cache=False).close()"],
                   cwd=ROOT, env=run_env(tmp_path), check=True, timeout=120)
    assert not list(tmp_path.glob("chat-harness-pg-*"))


def test_no_parent_death_signal_from_a_worker_thread() -> None:
    """The signal follows the thread that forked: a worker thread must not arm it."""
    import threading

    from harness.processes import die_with_parent

    assert die_with_parent() is not None
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(die_with_parent()))
    worker.start()
    worker.join()
    assert seen == [None]


def test_the_signal_is_the_one_asked_for(tmp_path: Path) -> None:
    """prctl(PR_GET_PDEATHSIG) in the child reads back what the harness armed."""
    from harness.processes import die_with_parent

    probe = ("import ctypes, signal; v = ctypes.c_int(); "
             "ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0); print(v.value)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         preexec_fn=die_with_parent(signal.SIGINT), check=True)
    assert int(out.stdout) == signal.SIGINT
