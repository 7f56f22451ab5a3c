"""Whole processes: the start-up of one scenario, and the whole suite three ways.

What a developer or CI waits for, from the shell: ``chat-harness run`` as a
process, wall time from start to exit, on a warm cache (one untimed run first
fills it). Samples of a figure and of its floor alternate.

- start-up: ``chat-harness run scenarios/seed/429-switch-model-resend.yaml``;
  floor: bare pytest (no plugins) running one trivial test, the price of any
  pytest process here.
- suite: ``chat-harness run scenarios`` in-process; black box through
  ``--target-cmd "python -m harness.reference"``; ``-n 2`` (pytest-xdist: one
  server, a database per worker). Floor of the in-process run: the same
  command with ``--collect-only`` (interpreter, pytest, plugin, collection).
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import ROOT, Context, Row, bench_env, cli, python, wall

SEED = "scenarios/seed/429-switch-model-resend.yaml"


def _run(*args: str, reports: Path, db: str = "embedded") -> list[str]:
    return cli("run", *args, "--db", db, "-q", "-p", "no:cacheprovider",
               "--reports", str(reports))


def _bare_pytest(folder: Path) -> list[str]:
    test = folder / "test_nothing.py"
    test.write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    return [python(), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)]


def measure_startup(ctx: Context) -> tuple[list[Row], list[str]]:
    from harness.db.container import docker_available

    fig, n = "startup", ctx.reps(7, 2)
    work = ctx.workdir / "startup"
    work.mkdir(exist_ok=True)
    env = bench_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    floor = Row(fig, "bare pytest, one trivial test, no plugins (floor)", [])
    seed = Row(fig, f"chat-harness run {SEED} (--db embedded, warm cache)", [],
               floor=floor.name, target="≤ 0.5 s", limit=0.5)
    bare, one = _bare_pytest(work), _run(SEED, reports=work / "reports")
    wall(one, env=env)  # fills the cache if it is cold
    for _ in range(n):
        floor.samples.append(wall(bare, env=env, cwd=work))
        seed.samples.append(wall(one, env=env))
    rows = [floor, seed]
    notes = []
    if docker_available():
        auto = Row(fig, f"chat-harness run {SEED} (--db auto: a container here)", [],
                   floor=floor.name)
        command = _run(SEED, reports=work / "reports", db="auto")
        for _ in range(ctx.reps(3, 1)):
            auto.samples.append(wall(command, env=env))
        rows.append(auto)
        notes.append("--db auto picks a container wherever Docker answers (as here); "
                     "the embedded server on a warm cache starts several times faster")
    return rows, notes


def measure_suite(ctx: Context) -> tuple[list[Row], list[str]]:
    fig, n = "suite", ctx.reps(3, 1)
    work = ctx.workdir / "suite"
    work.mkdir(exist_ok=True)
    env = bench_env()
    reports = work / "reports"
    collect = Row(fig, "chat-harness run scenarios --collect-only (floor)", [])
    inproc = Row(fig, "in-process: chat-harness run scenarios", [], floor=collect.name,
                 target="< 3 s", limit=3.0)
    blackbox = Row(fig, 'black box: --target-cmd "python -m harness.reference"', [],
                   floor=inproc.name, target="≤ 2×", limit=2.0, on_ratio=True)
    xdist = Row(fig, "in-process, -n 2 (pytest-xdist)", [], floor=inproc.name)
    commands = {
        collect.name: _run("scenarios", "--collect-only", reports=reports),
        inproc.name: _run("scenarios", reports=reports),
        blackbox.name: _run("scenarios", "--target-cmd", "python -m harness.reference",
                            reports=reports),
        xdist.name: _run("scenarios", "-n", "2", reports=reports),
    }
    rows = [collect, inproc, blackbox, xdist]
    wall(commands[inproc.name], env=env)  # warms the cache and the file system
    for _ in range(n):
        for row in rows:
            row.samples.append(wall(commands[row.name], env=env, cwd=ROOT))
    scenarios = _count(reports / "results.json")
    return rows, [f"{scenarios} scenario runs under scenarios/; --db embedded on a warm cache; "
                  "whole-process wall times"]


def _count(results: Path) -> int | None:
    import json

    try:
        return len(json.loads(results.read_text(encoding="utf-8")).get("scenarios", []))
    except (OSError, ValueError, AttributeError):
        return None


__all__ = ["measure_startup", "measure_suite"]
