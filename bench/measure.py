"""What every figure of the bench shares: rows, medians, processes, the machine.

A figure is a median over repeated runs, and a cost is a ratio against a
floor measured in the same run: on a shared 2-core machine the absolute
numbers move by 2× from one minute to the next, a ratio much less. Samples of
a figure and of its floor are taken interleaved where that is possible, so
that both see the same noise.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the table: a median, its floor and what it is held to."""

    figure: str
    name: str
    samples: list[float]  # seconds
    unit: str = "s"  # how to show the median: s, ms, ×
    floor: str | None = None  # the ``name`` of the row this one is divided by
    ratio: float | None = None
    target: str | None = None  # as shown, e.g. "≤ 0.3 s", "≤ 1.3×"
    limit: float | None = None  # the target as a number: seconds, or a ratio with on_ratio
    on_ratio: bool = False
    met: bool | None = None  # set by judge() from limit, unless a figure sets it
    note: str = ""
    # what keeps the figure from its target, from what the same run measured; shown when
    # the target is not met
    gap: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["median_s"] = self.median
        out["runs"] = len(self.samples)
        return out


@dataclass
class Context:
    """What the runner hands each figure."""

    quick: bool
    workdir: Path  # a temporary folder of this bench run
    log: Callable[[str], None] = print
    extra: dict[str, Any] = field(default_factory=dict)

    def reps(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def ratio_rows(rows: Sequence[Row]) -> None:
    """Fill ``ratio`` of every row that names a floor present in ``rows``."""
    by_name = {r.name: r for r in rows}
    for row in rows:
        floor = by_name.get(row.floor or "")
        if floor is not None and floor.median and row.median is not None:
            row.ratio = row.median / floor.median


def judge(row: Row) -> None:
    """Set ``met`` from ``limit`` (on the median, or on the ratio)."""
    if row.met is not None or row.limit is None:
        return
    value = row.ratio if row.on_ratio else row.median
    if value is not None:
        row.met = value <= row.limit


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def python() -> str:
    return sys.executable


def cli(*args: str) -> list[str]:
    """``chat-harness ARGS`` as a process of this interpreter."""
    return [python(), "-m", "harness", *args]


def wall(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT,
         timeout: float = 600, ok: Sequence[int] = (0,)) -> float:
    """The whole process's wall time; a failing process is an error, with its output."""
    began = time.perf_counter()
    done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    took = time.perf_counter() - began
    if done.returncode not in ok:
        out = done.stdout + done.stderr
        shown = out if len(out) < 4000 else f"{out[:3000]}\n[...]\n{out[-1000:]}"
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}:\n{shown}")
    return took


def wall_cpu(argv: Sequence[str], **kwargs: Any) -> tuple[float, float]:
    """:func:`wall`, and the CPU time (user + system) of the process and of every
    descendant it waited for (its backend, its PostgreSQL): what the run cost the cores."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    took = wall(argv, **kwargs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of measured processes: no inherited database URL, this venv first."""
    env = dict(os.environ)
    env.pop("CHAT_HARNESS_DATABASE_URL", None)
    env.pop("PYTEST_ADDOPTS", None)
    # as in an activated venv: `python` in a --target-cmd is this interpreter
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or, with ``None``, unset) environment variables for a block."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python, and the load when the bench began (noise)."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    load = None
    with contextlib.suppress(OSError):
        load = os.getloadavg()[0]
    return {
        "nproc": os.cpu_count(), "cpu": model, "ram_gib": ram_gib,
        "python": platform.python_version(), "platform": platform.platform(),
        "load_1min_at_start": load,
    }


__all__ = ["ROOT", "Context", "Row", "bench_env", "cli", "environ", "judge",
           "machine", "python", "ratio_rows", "timed", "wall", "wall_cpu"]
