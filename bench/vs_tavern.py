"""Against Tavern: one 3-request flow as a Tavern test and as a scenario, 50 copies each.

The flow (``bench/tavern/``): ``GET /api/health``, store a chat message with
``POST /api/chat/messages``, read it back with ``GET /api/chat/messages``.
All three suites run against one local uvicorn reference backend
(``python -m harness.reference``, its provider served by
``python -m harness.provider``, on one embedded PostgreSQL), one after the
other, for several rounds; the figure is the median time per test from each
run's JUnit XML (setup + call + teardown, so a run's start-up is not in it).

- plain pytest + httpx: the floor, what the three requests cost at least;
- Tavern: ``-p tavern``, no other plugin;
- chat-harness: ``--target-url`` against the same backend (``--db-url`` with
  ``--reset-db``, so its DB-level checks run too), built-in checks on;
- chat-harness in-process (the reference through ASGI): what a user runs by
  default, for reference.

Tavern 3.7 breaks on pytest 9.1+ (taverntesting/tavern#1054), so unless the
venv's own Tavern imports, it is installed into a folder of its own, with a
pytest it works with, from ``bench/tavern/requirements.txt``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.measure import ROOT, Context, Row, bench_env, cli, python, wall

if TYPE_CHECKING:
    from harness.db import Database

FIG = "tavern"
HERE = ROOT / "bench" / "tavern"
COPIES = 50


def tavern_path() -> Path | None:
    """``None`` when the venv's Tavern works; else a ``pip --target`` folder holding one."""
    probe = subprocess.run([python(), "-c", "import tavern._core.pytest"],
                           capture_output=True, check=False)
    if probe.returncode == 0:
        return None
    from harness.db.pgcache import cache_dir

    folder = Path(os.environ.get("CHAT_HARNESS_BENCH_TAVERN") or (
        (cache_dir() or Path.home() / ".cache" / "chat-harness") / "bench-tavern"))
    if not (folder / "tavern").is_dir():
        subprocess.run([python(), "-m", "pip", "install", "--quiet", "--target", str(folder),
                        "-r", str(HERE / "requirements.txt")], check=True)
    return folder


# the equivalent of Tavern's work: the three requests and their expectations only
NO_CHECKS = "checks: {" + ", ".join(f"{name}: false" for name in (
    "pairing", "context", "order", "lost", "rows", "idempotent", "provider_script",
    "envelope", "server_error", "schema")) + "}\n"


def _copies(work: Path) -> dict[str, Path]:
    """50 copies of each suite, in folders of their own (none named like a package)."""
    folders = {"tavern": work / "tavern", "httpx": work / "httpx",
               "harness": work / "suite_checks" / "scenarios",
               "harness-no-checks": work / "suite_no_checks" / "scenarios"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    test = (HERE / "test_flow.tavern.yaml").read_text(encoding="utf-8")
    scenario = (HERE / "scenarios" / "flow.yaml").read_text(encoding="utf-8")
    bare = scenario.replace("\nsteps:\n", "\n" + NO_CHECKS + "steps:\n")
    for i in range(COPIES):
        n = f"{i:02d}"
        (folders["tavern"] / f"test_flow_{n}.tavern.yaml").write_text(test.replace("__N__", n))
        (folders["harness"] / f"flow-{n}.yaml").write_text(scenario.replace("__N__", n))
        (folders["harness-no-checks"] / f"flow-{n}.yaml").write_text(bare.replace("__N__", n))
    (folders["httpx"] / "test_flow_httpx.py").write_text(
        (HERE / "test_flow_httpx.py").read_text(encoding="utf-8"))
    return folders


def per_test(junit: Path) -> list[float]:
    """Each test case's time (setup + call + teardown) from a JUnit XML file."""
    cases = ET.parse(junit).getroot().iter("testcase")
    times = []
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            raise RuntimeError(f"{junit}: {case.get('name')} failed")
        times.append(float(case.get("time", "0")))
    if len(times) != COPIES:
        raise RuntimeError(f"{junit}: {len(times)} test cases, expected {COPIES}")
    return times


@contextlib.contextmanager
def backend(work: Path) -> Iterator[tuple[str, str, Database]]:
    """A uvicorn reference backend on an embedded PostgreSQL; yields (url, db tcp url, db)."""
    from harness.config import RunConfig
    from harness.db import provision
    from harness.processes import Child, free_port
    from harness.provider.remote import ProviderServer
    from harness.targets.blackbox import backend_env, healthy

    schema = ROOT / "fixtures" / "schema.sql"
    config = RunConfig(fixtures=ROOT / "fixtures")
    with provision("embedded", schema=schema) as db, ProviderServer() as provider:
        db.apply_schema(schema)
        port = free_port()
        env = backend_env(config, port=port, db=db, provider_url=provider.base_url)
        env["LOG_LEVEL"] = "warning"
        child = Child([python(), "-m", "harness.reference"], log=work / "backend.log", env=env,
                      what="the reference backend")
        try:
            url = f"http://127.0.0.1:{port}"
            child.wait_ready(lambda: healthy(url), timeout_s=60)
            assert db.tcp_url is not None
            yield url, db.tcp_url, db
        finally:
            child.stop()


def measure(ctx: Context) -> tuple[list[Row], list[str]]:
    import jwt

    from harness.config import DEFAULT_JWT_SECRET

    rounds = ctx.reps(3, 1)
    work = ctx.workdir / "tavern"
    suites = _copies(work)
    extra_path = tavern_path()
    plain = Row(FIG, "plain pytest + httpx (floor)", [], unit="ms")
    tavern = Row(FIG, "Tavern 3.7 (3 stages)", [], unit="ms", floor=plain.name)
    harness = Row(FIG, "chat-harness --target-url (3 steps, built-in checks)", [], unit="ms",
                  floor=tavern.name, target="≤ 0.7× Tavern", limit=0.7, on_ratio=True)
    bare = Row(FIG, "chat-harness --target-url, built-in checks off (Tavern's work)", [],
               unit="ms", floor=tavern.name, target="≤ 0.33× Tavern", limit=1 / 3,
               on_ratio=True)
    inproc = Row(FIG, "chat-harness in-process (ASGI, built-in checks)", [], unit="ms",
                 floor=tavern.name)
    rows = [plain, tavern, harness, bare, inproc]
    walls: dict[str, list[float]] = {r.name: [] for r in rows}
    with backend(work) as (url, db_url, db):
        token = jwt.encode({"sub": "7d1c4a52-5e0b-4c7e-9d4a-2b8f0c1d9e77",
                            "exp": int(time.time()) + 24 * 3600}, DEFAULT_JWT_SECRET,
                           algorithm="HS256")
        env = bench_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", BENCH_BACKEND=url,
                        BENCH_TOKEN=token, BENCH_COPIES=str(COPIES))
        tavern_env = dict(env)
        if extra_path is not None:
            tavern_env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(extra_path), env.get("PYTHONPATH")) if p)
        url_mode = ("--target-url", url, "--db-url", db_url, "--reset-db")

        def chat_harness(folder: Path, *mode: str) -> list[str]:
            return cli("run", str(folder), "-q", "--tb=short", "-p", "no:cacheprovider", *mode,
                       "--reports", str(work / "reports"))

        runs = {
            plain.name: ([python(), "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider",
                          str(suites["httpx"])], env, suites["httpx"]),
            tavern.name: ([python(), "-m", "pytest", "-q", "-p", "tavern", "-p",
                           "no:cacheprovider", str(suites["tavern"])], tavern_env,
                          suites["tavern"]),
            harness.name: (chat_harness(suites["harness"], *url_mode), env, work),
            bare.name: (chat_harness(suites["harness-no-checks"], *url_mode), env, work),
            inproc.name: (chat_harness(suites["harness"], "--db", "embedded"), env, work),
        }
        for _ in range(rounds):
            for row in rows:
                argv, run_env, cwd = runs[row.name]
                junit = work / "junit.xml"
                db.reset()  # the same ids every round
                walls[row.name].append(wall([*argv, f"--junitxml={junit}"], env=run_env,
                                            cwd=cwd))
                row.samples += per_test(junit)
    _per_test_gaps(plain, tavern, harness, bare, inproc)
    rows += _whole_process(walls, tavern=tavern.name, checked=harness.name, bare=bare.name)
    notes = ["per test: the median of the JUnit times of 50 copies × "
             f"{rounds} round(s); whole process per test (wall ÷ {COPIES}): " + ", ".join(
                 f"{name.split(' (')[0]} {sorted(w)[len(w) // 2] / COPIES * 1000:.0f} ms"
                 for name, w in walls.items())]
    if extra_path is not None:
        notes.append(f"Tavern from {extra_path} (its own pytest: Tavern 3.7 breaks on "
                     "pytest 9.1+)")
    return rows, notes


def _per_test_gaps(plain: Row, tavern: Row, harness: Row, bare: Row, inproc: Row) -> None:
    """What keeps a chat-harness test from its target, from the rows of the same run."""
    if None in (plain.median, tavern.median, harness.median, bare.median, inproc.median):
        return
    ms = {row.name: (row.median or 0.0) * 1000 for row in (plain, tavern, harness, bare, inproc)}
    of = {name: value / ms[tavern.name] for name, value in ms.items()}
    harness.gap = (f"the built-in checks add {ms[harness.name] - ms[bare.name]:.0f} ms a test "
                   f"over sockets (checks off: {ms[bare.name]:.0f} ms, {of[bare.name]:.2f}× "
                   "Tavern): their own requests (the idempotent replays, the reads back) "
                   "each cost a loopback round trip; in-process, checks on, a test takes "
                   f"{ms[inproc.name]:.0f} ms ({of[inproc.name]:.2f}×)")
    bare.gap = (f"plain pytest + httpx sending the same requests takes {ms[plain.name]:.0f} ms "
                f"a test ({of[plain.name]:.2f}× Tavern): the target is "
                + ("below what the requests alone cost here" if of[plain.name] > 1 / 3 else
                   f"above it; the rest, {ms[bare.name] - ms[plain.name]:.0f} ms, is the "
                   "harness's own work per test (the provider's journal, the steps' "
                   "bookkeeping)"))


def _whole_process(walls: dict[str, list[float]], *, tavern: str, checked: str, bare: str
                   ) -> list[Row]:
    """The same runs as whole processes (wall time, start to exit, 50 tests each)."""
    import statistics

    whole = Row(FIG, f"whole process, {COPIES} tests: Tavern 3.7 (floor)", walls[tavern])
    ours = Row(FIG, f"whole process, {COPIES} tests: chat-harness --target-url, built-in "
               "checks", walls[checked], floor=whole.name, target="≤ 1× Tavern", limit=1.0,
               on_ratio=True)
    unchecked = Row(FIG, f"whole process, {COPIES} tests: chat-harness --target-url, checks "
                    "off", walls[bare], floor=whole.name)
    if walls[checked] and walls[bare] and walls[tavern]:
        checked_s, bare_s, tavern_s = (statistics.median(walls[n]) for n in (checked, bare,
                                                                              tavern))
        ours.gap = (f"the built-in checks add {checked_s - bare_s:.1f} s to the "
                    f"{COPIES} tests (checks off: {bare_s:.1f} s, Tavern {tavern_s:.1f} s)")
    return [whole, ours, unchecked]


__all__ = ["measure", "per_test", "tavern_path"]
