"""The checks' own mutation score: mutmut over the checks, the oracle and the matchers.

A check that never fires passes every scenario too; mutation testing says how
much of the code that decides verdicts its own tests pin down. mutmut changes
one thing at a time in ``harness/checks/``, ``harness/contract/oracle.py`` and
``harness/scenario/match.py`` (a ``==`` into ``!=``, a string into another, an
argument dropped) and runs the fast tests that cover it (``tests/checks``,
``tests/test_oracle.py``, the matcher tests); a mutant no test notices
survives::

    python bench/mutation.py                     # every module (about 10 min on 2 cores)
    python bench/mutation.py --only answers      # the modules whose name has 'answers'
    python bench/mutation.py --changed           # those a commit changed (CI), vs HEAD~1

It works in a scratch copy of the checkout (mutmut writes a ``mutants/`` folder
next to the code), prints the score per module, lists every survivor with the
explanation ``bench/survivors.md`` gives it (or none), and exits 1 when the
score is under ``--goal`` (default 90 %) or a survivor has no explanation.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTATED = ("harness/checks/*", "harness/contract/oracle.py", "harness/scenario/match.py")
TESTS = ("tests/checks", "tests/test_oracle.py", "tests/test_language_and_answers.py")
EXPLAINED = ROOT / "bench" / "survivors.md"
KILLED = {"killed", "timeout"}  # mutmut's words for a mutant a test noticed
CONFIG = """
[tool.mutmut]
source_paths = ["harness/"]
only_mutate = {only}
pytest_add_cli_args_test_selection = {tests}
pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-x"]
also_copy = ["fixtures", "scenarios"]
"""


@dataclass(frozen=True)
class Mutant:
    name: str  # harness.checks.answers.x_check_schema__mutmut_3
    status: str  # killed, survived, no tests, timeout, ...

    @property
    def module(self) -> str:
        return self.name.rsplit(".x", 1)[0]

    @property
    def function(self) -> str:
        """``answers.check_schema``, ``match.Matcher.problem``: module and function."""
        mangled = re.sub(r"__mutmut_\d+$", "", self.name.rsplit(".", 1)[1])
        plain = mangled.removeprefix("x_") if mangled.startswith("x_") else (
            mangled.removeprefix("x").replace("\u01c1", ".").strip("."))
        return f"{self.module.rsplit('.', 1)[1]}.{plain}"


def _modules(only: list[str], changed: bool) -> list[str]:
    every = sorted(str(p.relative_to(ROOT)) for pattern in MUTATED
                   for p in ROOT.glob(pattern) if p.suffix == ".py"
                   and p.name != "__init__.py")
    if changed:
        diff = subprocess.run(["git", "diff", "--name-only", "HEAD~1", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        if diff.returncode != 0:
            print("mutation: no earlier commit to compare with (a shallow clone?): nothing "
                  "to mutate")
            return []
        touched = set(diff.stdout.split())
        every = [m for m in every if m in touched]
    if only:
        every = [m for m in every if any(o in m for o in only)]
    return every


def _scratch(modules: list[str]) -> Path:
    """A copy of what mutmut needs, with its configuration."""
    work = Path(tempfile.mkdtemp(prefix="chat-harness-mutation-"))
    for name in ("harness", "tests", "fixtures", "scenarios"):
        shutil.copytree(ROOT / name, work / name,
                        ignore=shutil.ignore_patterns("__pycache__", "_bundled"))
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    as_list = "[" + ", ".join(f'"{m}"' for m in modules) + "]"
    tests = "[" + ", ".join(f'"{t}"' for t in TESTS) + "]"
    (work / "pyproject.toml").write_text(
        pyproject + CONFIG.format(only=as_list, tests=tests), encoding="utf-8")
    return work


def _explanations() -> dict[str, str]:
    """``bench/survivors.md``: a '- `function`: why' line per surviving function kind."""
    out: dict[str, str] = {}
    if EXPLAINED.is_file():
        for line in EXPLAINED.read_text(encoding="utf-8").splitlines():
            found = re.match(r"^- `([^`]+)`: (.+)$", line)
            if found:
                out[found.group(1)] = found.group(2)
    return out


def run(modules: list[str], jobs: int, diffs: Path | None = None) -> list[Mutant]:
    """mutmut over ``modules``; with ``diffs``, each survivor's change written there."""
    work = _scratch(modules)
    mutmut = [sys.executable, "-m", "mutmut"]
    try:
        subprocess.run([*mutmut, "run", "--max-children", str(jobs)], cwd=work,
                       stdout=subprocess.DEVNULL, check=False)
        listed = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work,
                                capture_output=True, text=True, check=False)
        mutants = []
        for line in listed.stdout.splitlines():
            name, sep, status = line.strip().rpartition(": ")
            if sep and "__mutmut_" in name:
                mutants.append(Mutant(name, status))
        if diffs is not None:
            with diffs.open("w", encoding="utf-8") as out:
                for m in mutants:
                    if m.status not in KILLED:
                        shown = subprocess.run([*mutmut, "show", m.name], cwd=work,
                                               capture_output=True, text=True, check=False)
                        changed = [ln for ln in shown.stdout.splitlines()
                                   if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
                        out.write(f"### {m.function} ({m.status}) {m.name}\n"
                                  + "\n".join(changed) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return mutants


def report(mutants: list[Mutant], goal: float) -> int:
    explained = _explanations()
    by_module: Counter[str] = Counter(m.module for m in mutants)
    killed: Counter[str] = Counter(m.module for m in mutants if m.status in KILLED)
    print(f"{'module':44} {'mutants':>8} {'killed':>8} {'score':>7}")
    for module in sorted(by_module):
        print(f"{module:44} {by_module[module]:>8} {killed[module]:>8} "
              f"{100 * killed[module] / by_module[module]:>6.1f}%")
    total, dead = len(mutants), sum(killed.values())
    score = 100 * dead / total if total else 100.0
    print(f"{'all':44} {total:>8} {dead:>8} {score:>6.1f}%")
    survivors = [m for m in mutants if m.status not in KILLED]
    unexplained = [m for m in survivors if m.function not in explained]
    if survivors:
        print(f"\n{len(survivors)} survivor(s), by function:")
        for function, count in sorted(Counter(m.function for m in survivors).items()):
            why = explained.get(function, "NOT EXPLAINED (bench/survivors.md)")
            print(f"  {function} ({count}): {why}")
    ok = score >= goal and not unexplained
    print(f"\nmutation: {score:.1f}% of {total} mutants killed (goal {goal:.0f}%)"
          + ("" if not unexplained else f"; {len(unexplained)} survivor(s) unexplained"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/mutation.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="PART",
                        help="only the modules whose path has PART (repeatable)")
    parser.add_argument("--changed", action="store_true",
                        help="only the modules the last commit changed")
    parser.add_argument("--goal", type=float, default=90.0, help="the score to reach, in %%")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--diffs", type=Path, default=None, metavar="FILE",
                        help="write each survivor's change to FILE")
    args = parser.parse_args(argv)
    modules = _modules(args.only, args.changed)
    if not modules:
        print("mutation: no module to mutate")
        return 0
    began = time.monotonic()
    print(f"mutation: {', '.join(modules)}", flush=True)
    code = report(run(modules, args.jobs, args.diffs), args.goal)
    print(f"took {time.monotonic() - began:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
