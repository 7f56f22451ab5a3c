"""The in-process path's own figures: a provider timeout, and the plugin's autoload.

- timeout: a scenario whose one step's provider answer comes after the run's
  PROVIDER_TIMEOUT_MS (``timeout: true``, a 504) against the same scenario
  with a plain reply there; in-process, the run's own ``--provider-timeout``
  (its default); the figure is what the timeout adds, round by round.
- autoload: ``pytest --co`` of one trivial test in a session that autoloads
  every installed plugin, with chat-harness's (entry point ``chat_harness``)
  and without it (``-p no:chat_harness``); what the plugin costs a test suite
  that collects no scenario. For scale, the same session with no plugin
  autoloaded at all: the other plugins installed with chat-harness
  (schemathesis's, hypothesis's) are theirs, not the plugin's.
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import ROOT, Context, Row, bench_env, python, wall, wall_cpu

STEPS = ("  - chat: first question\n    provider: {reply: first answer}\n"
         "  - chat: the question that waits\n    provider: %s\n"
         "  - chat: last question\n    provider: {reply: last answer}\n")
PLAIN = "{reply: an answer in time}"
LATE = ("{reply: too late, timeout: true}\n"
        "    expect: {status: 504, body: {code: gateway_timeout}}")


def _scenario(folder: Path, name: str, answer: str) -> Path:
    path = folder / "scenarios" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: {name}\nwhy: the cost of a provider timeout\nmodel: bench/m\n"
                    "steps:\n" + STEPS % answer, encoding="utf-8")
    return path


def measure_timeout(ctx: Context) -> tuple[list[Row], list[str]]:
    from harness.config import RunConfig
    from harness.runner.session import Harness
    from harness.scenario.load import load_file

    fig, rounds = "timeout", ctx.reps(15, 4)
    work = ctx.workdir / "timeout"
    (plain_scenario,) = load_file(_scenario(work, "plain", PLAIN), display="plain.yaml")
    (late_scenario,) = load_file(_scenario(work, "late", LATE), display="late.yaml")
    config = RunConfig(db="embedded", fixtures=ROOT / "fixtures", reports=work / "reports")
    plain = Row(fig, "3 chat steps, in-process, built-in checks (floor)", [], unit="ms")
    late = Row(fig, "the same, the 2nd answer after PROVIDER_TIMEOUT_MS (a 504)", [],
               unit="ms", floor=plain.name)
    extra = Row(fig, "what the timeout adds (paired rounds)", [], unit="ms",
                target="< 100 ms", limit=0.1)
    with Harness(config) as harness:
        harness.start()
        for n in range(rounds + 1):
            results = [harness.run(s) for s in (plain_scenario, late_scenario)]
            for result in results:
                if not result.passed:
                    raise RuntimeError(f"{result.scenario_id}: {result.failures[:2]}")
            if n:  # round 0 warms up
                plain.samples.append(results[0].duration_s)
                late.samples.append(results[1].duration_s)
                extra.samples.append(results[1].duration_s - results[0].duration_s)
    if extra.median is not None:
        timeout_s = config.provider_timeout_ms / 1000
        extra.gap = (f"the backend waits out its provider timeout, {timeout_s * 1000:.0f} ms "
                     "in-process (--provider-timeout's default; the timeout is the cost), "
                     f"and the event loop's scheduling adds {(extra.median - timeout_s) * 1000:.0f}"
                     " ms (more on a busy machine)")
    return [plain, late, extra], [
        f"{rounds} rounds, a plain run and a timed-out one in turn, on one in-process backend "
        f"and database; --provider-timeout {config.provider_timeout_ms} ms (the in-process "
        "default): a `timeout:` answer comes after it, the backend gives up at it"]


def measure_autoload(ctx: Context) -> tuple[list[Row], list[str]]:
    fig, n = "autoload", ctx.reps(9, 3)
    work = ctx.workdir / "autoload"
    work.mkdir(parents=True, exist_ok=True)
    (work / "test_nothing.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    command = [python(), "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider",
               "test_nothing.py"]
    autoload = bench_env()
    autoload.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    none = bench_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    bare = Row(fig, "pytest --co, one test, no plugin autoloaded", [])
    others = Row(fig, "pytest --co, every installed plugin but chat-harness's (floor)", [],
                 floor=bare.name)
    ours = Row(fig, "pytest --co, every installed plugin (chat-harness's too)", [],
               floor=others.name)
    extra = Row(fig, "what chat-harness's plugin adds (paired runs)", [], unit="ms",
                target="≤ +0.1 s", limit=0.1)
    cpu = Row(fig, "what chat-harness's plugin adds, CPU time (user + system)", [],
              unit="ms", target="≤ +0.1 s", limit=0.1)
    wall(command, env=autoload, cwd=work)  # bytecode caches
    for _ in range(n):
        bare.samples.append(wall(command, env=none, cwd=work))
        without, without_cpu = wall_cpu([*command, "-p", "no:chat_harness"], env=autoload,
                                        cwd=work)
        with_, with_cpu = wall_cpu(command, env=autoload, cwd=work)
        others.samples.append(without)
        ours.samples.append(with_)
        extra.samples.append(with_ - without)
        cpu.samples.append(with_cpu - without_cpu)
    if others.samples and cpu.median is not None:
        extra.gap = (f"the sessions' own noise: the floor's {len(others.samples)} runs spread "
                     f"over {(max(others.samples) - min(others.samples)) * 1000:.0f} ms "
                     "(the same command each time); in CPU time, steadier, the plugin adds "
                     f"{cpu.median * 1000:.0f} ms")
    return [bare, others, ours, extra, cpu], [
        f"{n} rounds of the three sessions in turn; the plugin's own cost is the paired "
        "difference (wall time, and CPU time, steadier on a busy machine); the gap "
        "between no plugin and every plugin is the other plugins of this "
        "environment (schemathesis's and hypothesis's pytest plugins, installed with "
        "chat-harness's dependencies, import hypothesis into every session)"]


__all__ = ["measure_autoload", "measure_timeout"]
