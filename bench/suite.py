"""Whole processes: the start-up of one scenario, and the whole suite three ways.

What a developer or CI waits for, from the shell: ``chat-harness run`` as a
process, wall time from start to exit, on a warm cache (one untimed run first
fills it). Samples of a figure and of its floor alternate.

- start-up: ``chat-harness run scenarios/seed/429-switch-model-resend.yaml``;
  floor: bare pytest (no plugins) running one trivial test, the price of any
  pytest process here.
- suite: ``chat-harness run scenarios`` in-process. Floor: the same command with
  ``--collect-only`` (interpreter, pytest, plugin, collection). Black box and
  ``-n 2`` are the ``parallel`` figure (bench/blackbox.py).
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
    python_alone = Row(fig, "python -c pass (the interpreter alone)", [])
    imports = Row(fig, "python -c 'import harness.reference' (the backend's imports)", [],
                  floor=python_alone.name)
    bare, one = _bare_pytest(work), _run(SEED, reports=work / "reports")
    wall(one, env=env)  # fills the cache if it is cold
    for _ in range(n):
        floor.samples.append(wall(bare, env=env, cwd=work))
        seed.samples.append(wall(one, env=env))
        python_alone.samples.append(wall([python(), "-c", "pass"], env=env))
        imports.samples.append(wall([python(), "-c", "import harness.reference, "
                                     "harness.targets.inprocess"], env=env))
    rows = [floor, seed, python_alone, imports]
    if floor.median is not None and imports.median is not None and python_alone.median:
        seed.gap = (f"bare pytest alone takes {floor.median:.2f} s here, and importing the "
                    "in-process reference (FastAPI, pydantic, psycopg, httpx) "
                    f"{imports.median - python_alone.median:.2f} s more than the interpreter "
                    f"alone: {floor.median + imports.median - python_alone.median:.2f} s "
                    "before PostgreSQL or a scenario")
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
    """In-process, against ``--collect-only`` (black box and ``-n 2``: the ``parallel``
    figure)."""
    fig, n = "suite", ctx.reps(3, 1)
    work = ctx.workdir / "suite"
    work.mkdir(exist_ok=True)
    env = bench_env()
    reports = work / "reports"
    collect = Row(fig, "chat-harness run scenarios --collect-only (floor)", [])
    inproc = Row(fig, "in-process: chat-harness run scenarios", [], floor=collect.name,
                 target="< 3 s", limit=3.0)
    commands = {
        collect.name: _run("scenarios", "--collect-only", reports=reports),
        inproc.name: _run("scenarios", reports=reports),
    }
    rows = [collect, inproc]
    wall(commands[inproc.name], env=env)  # warms the cache and the file system
    for _ in range(n):
        for row in rows:
            row.samples.append(wall(commands[row.name], env=env, cwd=ROOT))
    times = scenario_times(reports / "results.json")  # the last in-process run's
    if times and collect.median is not None:
        inproc.gap = suite_gap(times, collect.median, inproc.median or 0.0)
    return rows, [f"{len(times)} scenario runs under scenarios/; --db embedded on a warm "
                  "cache; whole-process wall times"]


def suite_gap(times: dict[str, float], before_s: float, wall_s: float) -> str:
    """Where a whole in-process run's time goes: the process without the scenarios, the
    scenarios (and the folder that takes the most of them), and the rest."""
    total = sum(times.values())
    folders: dict[str, float] = {}
    for file, took in times.items():
        folder = str(Path(file).parent)
        folders[folder] = folders.get(folder, 0.0) + took
    top, top_s = max(folders.items(), key=lambda kv: kv[1])
    count = sum(1 for file in times if str(Path(file).parent) == top)
    rest = max(0.0, wall_s - before_s - total)
    return (f"of {wall_s:.2f} s, {before_s:.2f} s is the process without the scenarios "
            f"(the --collect-only floor: the interpreter, imports, collection), {total:.2f} s "
            f"the scenarios' own time and {rest:.2f} s the rest (PostgreSQL's start, the "
            f"backend's, the reports); {top}/ ({count} scenarios) takes {top_s:.2f} s of the "
            f"scenarios' time ({100 * top_s / total:.0f} %)"
            if total else "no scenario time was recorded")


def scenario_times(results: Path) -> dict[str, float]:
    """Each scenario run's duration, by file and id, from a results.json."""
    import json

    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
        return {f"{s['file']}::{s['scenario_id']}": float(s.get("duration_s") or 0.0)
                for s in doc.get("scenarios", [])}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}


__all__ = ["measure_startup", "measure_suite", "suite_gap"]
