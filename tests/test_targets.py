"""A backend the harness starts goes with the harness, however the harness ends.

A ``--target-cmd`` runs through ``/bin/sh -c``; the kernel's parent-death signal
reaches the shell only. These tests kill the harness with SIGKILL (nothing of
it can clean up) and look from outside: no process of the run is left, the
backend's port is free, and the folders it made are gone once the next run
starts (they carry the dead run's pid).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from runs import REFERENCE, ROOT, gone, listening, poll_until, ports_of, processes_of, run_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the guard and PR_SET_PDEATHSIG are Linux's")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _describe(pids: list[int]) -> str:
    return "\n".join(f"{pid}: {_cmdline(pid)}" for pid in pids) or "(none)"


def _backend(tmp: Path) -> int | None:
    """The reference backend of the run with this TMPDIR, once it listens."""
    for pid in processes_of(tmp):
        line = _cmdline(pid)
        if "harness.reference" in line and "procguard" not in line and not line.startswith(
                "/bin/sh") and ports_of([pid]):
            return pid
    return None


def _ours(tmp: Path, pid: int) -> list[str]:
    """Folders named after run ``pid``: in its TMPDIR, /dev/shm (PostgreSQL's data), /tmp."""
    found = [str(p) for p in tmp.glob("chat-harness-*")]
    for parent in (Path("/dev/shm"), Path("/tmp")):
        with contextlib.suppress(OSError):
            found += [str(p) for p in parent.iterdir() if f"-{pid}-" in p.name
                      and (p.name.startswith("chat-harness-") or p.name.startswith("chpg-"))]
    return found


def _kill_everything(tmp: Path) -> None:
    """After the verdict: what a failed case left (all of it started by this test)."""
    for pid in processes_of(tmp):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("command", ["run", "explore"])
def test_a_killed_harness_takes_its_backend_along_and_leaves_no_folder(
        command: str, run_tmp: Path, tmp_path: Path) -> None:
    """SIGKILL mid-run: the shell, the backend under it, the provider, PostgreSQL: all go."""
    reports = tmp_path / "reports"
    args = (["run", str(ROOT / "scenarios" / "chat"), "--reports", str(reports), "-q",
             "-p", "no:cacheprovider"] if command == "run"
            else ["explore", "--profile", "deep", "--max-examples", "500"])
    args += ["--db", "embedded"]  # a PostgreSQL of the run's own tree (a container is not)
    # no "exec": the shell stays between the guard and the backend, as a user's CMD does
    cmd = f"cd {ROOT} && {REFERENCE}"
    out = tmp_path / "harness.out"
    with out.open("wb") as log:
        harness = subprocess.Popen([sys.executable, "-m", "harness", *args, "--target-cmd", cmd],
                                   cwd=tmp_path, env=run_env(run_tmp), stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        backend = poll_until(lambda: _backend(run_tmp) or harness.poll() is not None,
                             lambda: f"the backend never listened\n{out.read_text()}",
                             deadline_s=120)
        assert harness.poll() is None, f"the harness ended early\n{out.read_text()}"
        assert not isinstance(backend, bool)
        port = ports_of([backend])
        if command == "run":  # a scenario is under way: it talks to the backend
            target_log = reports / "target.log"
            poll_until(lambda: target_log.exists() and b"POST /api/chat" in target_log.read_bytes(),
                       lambda: f"no scenario reached the backend\n{out.read_text()}",
                       deadline_s=60)
        assert harness.poll() is None, "the run ended before it could be killed"
        tree = processes_of(run_tmp)
        assert {harness.pid, backend} <= set(tree), _describe(tree)
        assert any(_cmdline(p).split(" ")[0].endswith("/postgres") for p in tree), \
            _describe(tree)
        harness.kill()
        harness.wait()
        poll_until(lambda: not processes_of(run_tmp),
                   lambda: "still running after the harness was killed:\n"
                   + _describe(processes_of(run_tmp)), deadline_s=30)
        assert gone(backend)
        still = port & set(listening().values())
        assert not still, f"port {still} of the killed run's backend still listens"
        _next_run_removes_the_folders_of(harness.pid, "chat-harness-provider-", run_tmp,
                                         tmp_path)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        _kill_everything(run_tmp)


def _next_run_removes_the_folders_of(pid: int, kind: str, tmp: Path, work: Path) -> None:
    left = _ours(tmp, pid)
    assert any(kind in p for p in left), left  # what the next run has to remove
    # the next run (any that makes a folder of its own) removes them
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "scenarios/chat/retry-same-id.yaml",
         "--reports", str(work / "next"), "-q", "-p", "no:cacheprovider",
         "--db", "embedded", "--target-cmd", f"exec {REFERENCE}"],
        cwd=ROOT, env=run_env(tmp), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _ours(tmp, pid) == []
    assert list(tmp.glob("chat-harness-*")) == []


def test_a_killed_fuzz_run_leaves_no_process_and_no_folder(run_tmp: Path, tmp_path: Path) -> None:
    """fuzz serves the reference in its own process; what it starts is PostgreSQL,
    and what it makes is its schemathesis folder."""
    fuzz = subprocess.Popen(
        [sys.executable, "-m", "harness", "fuzz", "--db", "embedded", "--profile", "deep",
         "--max-time", "600"], cwd=tmp_path, env=run_env(run_tmp),
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        poll_until(lambda: list(run_tmp.glob(f"chat-harness-fuzz-{fuzz.pid}-*"))
                   or fuzz.poll() is not None, lambda: "fuzz never began", deadline_s=120)
        assert fuzz.poll() is None, "fuzz ended before it could be killed"
        tree = processes_of(run_tmp)
        assert any(_cmdline(p).split(" ")[0].endswith("/postgres") for p in tree), \
            _describe(tree)
        fuzz.kill()
        fuzz.wait()
        poll_until(lambda: not processes_of(run_tmp),
                   lambda: "still running after fuzz was killed:\n"
                   + _describe(processes_of(run_tmp)), deadline_s=30)
        _next_run_removes_the_folders_of(fuzz.pid, "chat-harness-fuzz-", run_tmp, tmp_path)
    finally:
        if fuzz.poll() is None:
            fuzz.kill()
            fuzz.wait()
        _kill_everything(run_tmp)


# -- the guard on its own -------------------------------------------------------------

# a shell whose tree is hard to stop: a child in the background, a grandchild that left
# the session (setsid), and the shell itself deaf to SIGTERM (and so its foreground child)
_STUBBORN = "sleep 300 & (setsid sleep 300 &); trap '' TERM; sleep 300"


def _harness_script(tmp: Path, *, thread: bool) -> str:
    return textwrap.dedent(f"""
        import threading, time
        from pathlib import Path
        from harness.processes import Child

        def start():
            child = Child({_STUBBORN!r},
                          log=Path({str(tmp)!r}) / "child.log", what="a stubborn tree")
            print(child.pid, flush=True)

        if {thread!r}:
            worker = threading.Thread(target=start)
            worker.start()
            worker.join()
        else:
            start()
        time.sleep(300)
    """)


@pytest.mark.parametrize("thread", [False, True], ids=["main-thread", "worker-thread"])
def test_the_guard_takes_a_stubborn_tree_along(thread: bool, run_tmp: Path) -> None:
    """Started from a worker thread, no death signal can be armed: the guard sees its
    parent change."""
    script = run_tmp / "harness_like.py"
    script.write_text(_harness_script(run_tmp, thread=thread))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=run_env(run_tmp),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        guard = int(proc.stdout.readline())

        def tree() -> list[int]:
            return [p for p in processes_of(run_tmp) if p != proc.pid]

        poll_until(lambda: len([p for p in tree() if _cmdline(p).startswith("sleep")]) == 3,
                   lambda: "the command never started its three sleepers:\n"
                   + _describe(tree()), deadline_s=30)
        started = tree()
        proc.kill()
        proc.wait()
        poll_until(lambda: all(gone(p) for p in started),
                   lambda: "outlived the harness:\n"
                   + _describe([p for p in started if not gone(p)]), deadline_s=30)
        assert gone(guard)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_everything(run_tmp)


def test_a_guarded_command_ends_as_the_command_did(tmp_path: Path) -> None:
    from harness.processes import Child

    log = tmp_path / "child.log"
    assert Child("exit 3", log=log, what="x").wait() == 3
    assert Child("kill -TERM $$", log=log, what="x").wait() == -signal.SIGTERM
    assert Child("no-such-command-here", log=log, what="x").wait() == 127
    assert "not found" in log.read_text()
    assert Child(["no-such-command-here"], log=log, what="x", guard=True).wait() == 127
    assert "cannot start 'no-such-command-here'" in log.read_text()


def test_stopping_a_guarded_command_stops_all_it_started(tmp_path: Path) -> None:
    """Also what left its process group: only the guard still knows it."""
    from harness.processes import Child

    pids = tmp_path / "pids"
    child = Child(f"sleep 300 & (setsid sleep 300 & echo $! > {pids}.tmp; mv {pids}.tmp {pids}); "
                  "wait", log=tmp_path / "child.log", what="a tree")
    poll_until(pids.exists, lambda: "the command never ran", deadline_s=30)
    escaped = int(pids.read_text())
    poll_until(lambda: os.getpgid(escaped) != child.pid,  # out of the group we signal
               lambda: "the sleeper never left the process group", deadline_s=30)
    child.stop()
    poll_until(lambda: gone(escaped), lambda: f"{_cmdline(escaped)} outlived its stop",
               deadline_s=30)
    assert not child.alive()


def test_a_run_of_the_kill_matrix_goes_with_a_stopped_matrix(tmp_path: Path) -> None:
    """The matrix starts its runs from worker threads; stop_all stops them all at once."""
    from harness.processes import Child, stop_all

    children: list[Child] = []

    def start() -> None:
        children.append(Child([sys.executable, "-c", "import time; time.sleep(300)"],
                              log=tmp_path / f"run{len(children)}.log", what="a run"))

    workers = [threading.Thread(target=start) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(c.alive() for c in children)
    stop_all(children, timeout_s=10)
    assert not any(c.alive() for c in children)


# -- folders --------------------------------------------------------------------------

def test_folders_of_dead_owners_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    from harness.folders import owned_folder

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f"chat-harness-provider-{dead.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "port").write_text("1")
    live = tmp_path / f"chat-harness-provider-{os.getppid()}-abc"
    live.mkdir()
    other = tmp_path / "chat-harness-provider-notapid"
    other.mkdir()
    made = owned_folder("chat-harness-logs-", tmp_path)
    assert made.name.startswith(f"chat-harness-logs-{os.getpid()}-")
    assert not stale.exists()
    assert live.exists() and other.exists()


def test_a_guarded_command_is_dead_when_it_ends_not_when_its_guard_does(tmp_path: Path) -> None:
    """The harness stops a run at once when its backend dies; the guard may still be
    stopping what the command left (here a grandchild deaf to SIGTERM: 10 s)."""
    from harness.processes import Child

    pids = tmp_path / "pids"
    child = Child(f"(trap '' TERM; sleep 300) & echo $! > {pids}.tmp; mv {pids}.tmp {pids}; "
                  "exit 5", log=tmp_path / "child.log", what="a short command")
    poll_until(lambda: not child.alive(), lambda: "the command's end was not seen",
               deadline_s=30)
    left = int(pids.read_text())
    assert child.exit_code() == 5
    assert gone(left), "the guard ended before what the command left"
