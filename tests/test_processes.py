"""What the harness starts stays in its hands: a harness killed outright (SIGKILL)
takes its servers with it (Linux), and a Ctrl-C in the middle of a start or of a
command that writes into a folder of ours leaves nothing running or behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from runs import ROOT, gone, poll_until, run_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux's")


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
        assert not gone(child)
    finally:
        proc.kill()
        proc.wait()
    poll_until(lambda: gone(child),
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


@contextlib.contextmanager
def _plain_ctrl_c() -> Iterator[None]:
    """Python's own SIGINT handler for the block (the plugin's would also stop this run)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_ctrl_c_in_a_deferred_block_comes_when_it_ends() -> None:
    from harness.processes import signals_deferred

    steps: list[str] = []
    with _plain_ctrl_c():
        with pytest.raises(KeyboardInterrupt), signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("the block went on")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    assert steps == ["the block went on"]


def test_an_interrupted_command_is_gone_before_the_interrupt_goes_on(tmp_path: Path) -> None:
    """With what it started: ``subprocess.run`` would leave both running (initdb's
    bootstrap server still writing into a data folder we remove)."""
    from harness.processes import pid_alive, run_command

    pids = tmp_path / "pids"

    def interrupt_once_started() -> None:
        poll_until(lambda: pids.exists() and len(pids.read_text().split()) == 2,
                   lambda: "the command never started", deadline_s=30)
        os.kill(os.getpid(), signal.SIGINT)

    with _plain_ctrl_c():
        helper = threading.Thread(target=interrupt_once_started)
        helper.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                run_command(["sh", "-c", f"sleep 60 & echo $$ $! > {pids}.tmp; "
                                         f"mv {pids}.tmp {pids}; wait"])
        finally:
            helper.join()
    command, started = (int(p) for p in pids.read_text().split())
    assert not pid_alive(command)
    assert gone(started), "what the command started still runs"


def test_a_server_the_caller_never_got_is_removed_at_exit(tmp_path: Path) -> None:
    """A Ctrl-C between a start and the caller keeping what it returned loses the handle;
    the folders (and a server) still go when the interpreter exits."""
    script = """
        from harness.db.embedded import bin_dir, _run_as
        from harness.db.postmaster import Postmaster
        server = Postmaster(bin_dir(), _run_as())
        print(server.root, server.home, server.sock.parent)
        del server
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT,
                         env=run_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    folders = [Path(p) for p in out.stdout.split()]
    assert len(folders) == 3 and folders[0].is_relative_to(tmp_path)
    assert [f for f in folders if f.exists()] == []


def test_embedded_postgres_keeps_its_shared_memory_in_its_data_folder(tmp_path: Path) -> None:
    """Not in /dev/shm, where a killed server (or an interrupted initdb) would leave it."""
    script = """
        from harness.db import embedded
        with embedded.start(cache=False) as db:
            print(db.query("SHOW dynamic_shared_memory_type")[0]["dynamic_shared_memory_type"])
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT,
                         env=run_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "mmap", out.stdout + out.stderr
