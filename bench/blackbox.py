"""Black box and parallel runs: per request over real sockets, the suite three ways, and
the project's own test suite.

- request: a ``chat:`` step against ``--target-cmd "python -m harness.reference"``
  (the backend a real subprocess, the scripted provider a real HTTP server), over
  the same two requests sent by bare httpx to that same loopback backend, in turn
  (the harness step, then the bare one), so that both see the same noise. The bare
  client's provider answer is planned before its clock starts: the floor is the two
  requests alone, so the ratio is what the harness adds over the wire (its control
  round trips to the provider server, its bookkeeping).
- parallel: ``chat-harness run scenarios`` serially in-process (the floor), black box
  (``--target-cmd``), and with ``-n 2`` (pytest-xdist), whole processes in turn.
- pytest: the project's own test suite as README's test command runs it
  (``pytest -n auto``), one whole run (minutes: ``--only pytest`` measures it alone).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

from bench.measure import ROOT, Context, Row, bench_env, cli, wall, wall_cpu
from bench.step import RawClient, _round, _scenario
from bench.suite import scenario_times

REFERENCE = "python -m harness.reference"


class RemoteRawClient(RawClient):
    """The bare client against a black-box backend: the provider answer is planned (a
    control call to the provider server) before the clock starts, outside any step."""

    async def step(self, i: int) -> float:
        from harness.provider import Reply

        self.engine.begin_step(-1 - i, [(Reply(content=f"answer number {i}"), None)])
        try:
            began = time.perf_counter()
            await self.exchange(i)
            return time.perf_counter() - began
        finally:
            self.engine.end_step(-1 - i)  # its call is the bare client's, no harness step's


def measure_request(ctx: Context) -> tuple[list[Row], list[str]]:
    """Rounds on one black-box backend and database; round 0 is a warm-up."""
    from harness.config import RunConfig
    from harness.runner.run import ScenarioRun
    from harness.runner.session import Harness
    from harness.scenario.load import load_file

    fig = "request"
    steps, rounds = ctx.reps(20, 8), ctx.reps(6, 1)
    (scenario,) = load_file(_scenario(ctx.workdir / "request", steps),
                            display="bench-steps.yaml")
    python = os.path.dirname(sys.executable)
    config = RunConfig(db="embedded", fixtures=ROOT / "fixtures", reports=ctx.workdir / "request",
                       target="cmd", target_cmd=f"{python}/{REFERENCE}")
    harness_s: list[float] = []
    raw_s: list[float] = []
    with Harness(config) as harness:
        harness.start()
        assert harness.target is not None
        for n in range(rounds + 1):
            harness.db.reset()
            run = ScenarioRun(scenario, harness.context(scenario))
            bare: Any = RemoteRawClient(harness.target.client, harness.target.provider,
                                        config.jwt_secret)
            took, raw_took, _ = harness.call(_round(run, bare))
            if n:
                harness_s += took
                raw_s += raw_took
    raw = Row(fig, "bare httpx to the black-box backend: the same two requests (floor)",
              raw_s, unit="ms")
    step = Row(fig, 'harness: one chat step, --target-cmd "python -m harness.reference"',
               harness_s, unit="ms", floor=raw.name, target="≤ 1.2×", limit=1.2,
               on_ratio=True)
    if raw.median and step.median:
        step.gap = (f"a harness step takes {(step.median - raw.median) * 1000:.1f} ms more than "
                    f"the bare pair's {raw.median * 1000:.1f} ms: its two lines in the "
                    "provider's journal, the calls read back, the step's own checks of the "
                    "answer and its record")
    return [raw, step], [
        f"{rounds} rounds of {steps} chat steps each side, in turn, on one black-box "
        "backend (a subprocess on a loopback port) and one scripted provider server; "
        "a chat step is POST /api/chat (one provider call) + POST /api/chat/messages"]


def _run(*args: str, reports: Any) -> list[str]:
    return cli("run", "scenarios", *args, "--db", "embedded", "-q", "-p", "no:cacheprovider",
               "--reports", str(reports))


def measure_parallel(ctx: Context) -> tuple[list[Row], list[str]]:
    fig, n = "parallel", ctx.reps(3, 1)
    reports = ctx.workdir / "parallel"
    env = bench_env()
    serial = Row(fig, "in-process, serial: chat-harness run scenarios (floor)", [])
    blackbox = Row(fig, f'black box: --target-cmd "{REFERENCE}"', [], floor=serial.name,
                   target="≤ 1.2×", limit=1.2, on_ratio=True)
    xdist = Row(fig, "in-process, -n 2 (pytest-xdist, one PostgreSQL server)", [],
                floor=serial.name, target="≤ 0.65×", limit=0.65, on_ratio=True)
    commands = {
        serial.name: _run(reports=reports / "serial"),
        blackbox.name: _run("--target-cmd", REFERENCE, reports=reports / "blackbox"),
        xdist.name: _run("-n", "2", reports=reports / "xdist"),
    }
    rows = [serial, blackbox, xdist]
    cpu: dict[str, list[float]] = {row.name: [] for row in rows}
    wall(commands[serial.name], env=env)  # warms the cache and the file system
    for _ in range(n):
        for row in rows:
            took, used = wall_cpu(commands[row.name], env=env, cwd=ROOT)
            row.samples.append(took)
            cpu[row.name].append(used)
    serial_cpu, blackbox_cpu, xdist_cpu = (statistics.median(cpu[r.name]) for r in rows)
    times = scenario_times(reports / "serial" / "results.json")  # the last serial run's
    if serial.median and times:
        xdist.gap = xdist_gap(times, serial.median, cpu=(serial_cpu, xdist_cpu),
                              load=os.getloadavg()[0])
    if serial_cpu:
        blackbox.gap = (f"the black-box run costs {blackbox_cpu:.1f} s of CPU against "
                        f"{serial_cpu:.1f} s in-process ({blackbox_cpu / serial_cpu:.2f}×): "
                        "a backend process behind uvicorn, a provider server, every request "
                        "and answer through loopback sockets, on the same cores")
    return rows, [f"whole processes on a warm cache (--db embedded), {n} runs each in turn; "
                  f"{os.cpu_count()} cores"]


def xdist_gap(times: dict[str, float], serial_s: float, *, cpu: tuple[float, float],
              load: float) -> str:
    """What bounds a two-worker run, from the serial run's own scenario times: the
    process around the scenarios, then the longer of the longest scenario and half of
    all of them."""
    total = sum(times.values())
    longest, longest_s = max(times.items(), key=lambda kv: kv[1])
    around = max(0.0, serial_s - total)
    bound = around + max(longest_s, total / 2)
    return (f"the serial run is {around:.1f} s of start and end around {total:.1f} s of "
            f"scenarios, the longest {longest.split('::')[-1]} ({longest_s:.1f} s): two "
            f"workers need at least {around:.1f} + max({longest_s:.1f}, {total / 2:.1f}) = "
            f"{bound:.1f} s ({bound / serial_s:.2f}× serial) before their own start (each "
            f"worker starts pytest and the harness); CPU time serial {cpu[0]:.1f} s, -n 2 "
            f"{cpu[1]:.1f} s, on cores other jobs share (load average {load:.1f})")


def measure_pytest(ctx: Context) -> tuple[list[Row], list[str]]:
    """README's test command, whole (one run: minutes)."""
    fig = "pytest"
    env = bench_env()
    env.pop("CHAT_HARNESS_REQUIRE", None)
    row = Row(fig, "the project's own tests: pytest -n auto (README's test command)", [],
              target="≤ 120 s", limit=120.0)
    took, used = wall_cpu([sys.executable, "-m", "pytest", "-n", "auto", "-q",
                           "-p", "no:cacheprovider"], env=env, cwd=ROOT, timeout=1800)
    row.samples.append(took)
    cores = os.cpu_count() or 1
    row.gap = (f"the tests take {used:.0f} s of CPU (theirs and their children's: runs, "
               f"backends, PostgreSQL servers); on {cores} cores that is {used / cores:.0f} s "
               "at the least, however they are split")
    return [row], [f"one run, {os.cpu_count()} cores; what is not set up here (Docker, "
                   "Chromium) is skipped, as outside CI"]


__all__ = ["measure_parallel", "measure_pytest", "measure_request", "xdist_gap"]
