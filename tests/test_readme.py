"""README's and the documentation's command examples are executed, and what they show
them printing must match.

Every ```sh block of README.md and of the pages under docs/ is a test. A comment right
before a block says how it is held to what it claims:

    <!-- example -->                   run each command; each must exit 0
    <!-- example: exits=0,1 -->        ... with these exit codes, in order
    <!-- example: in=repo -->          ... in the checkout itself (read-only commands)
    <!-- example: ci -->               each command is a step of .ci/run (CI executes it)
    <!-- example: skip="why" -->       not run, for the reason given (minutes, a URL of yours)
    <!-- example: output -->           (before a plain ``` block) its lines appear, in
                                       order, in what the commands above printed; ``…``
                                       stands for anything

A block without a comment is run like ``<!-- example -->``. Commands run with
``sh`` in a fresh copy of the checkout's scenarios and fixtures (the examples/
folder linked), on an embedded PostgreSQL. They take minutes, so the module is
marked ``readme``: ``pytest`` leaves it out and CI runs it as a step of its own
(``pytest -m readme tests/test_readme.py``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from runs import ROOT, run_env

pytestmark = pytest.mark.readme

README = ROOT / "README.md"
# the documentation site's pages (docs/gen holds its generator, not pages)
PAGES = [README, *sorted(p for p in (ROOT / "docs").rglob("*.md")
                         if "gen" not in p.relative_to(ROOT / "docs").parts)]
DIRECTIVE = re.compile(r"^<!-- example(?::\s*(?P<args>.*?))?\s*-->$")


@dataclass
class Block:
    file: str  # README.md, docs/tutorial.md, ...
    line: int  # of the opening fence, 1-based
    commands: list[str]
    exits: list[int]
    mode: str = "run"  # run, ci, skip
    why: str = ""  # a skip's reason
    in_repo: bool = False
    outputs: list[list[str]] = field(default_factory=list)  # the output blocks after it

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def _args(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for token in shlex.split(text or ""):
        key, _, value = token.partition("=")
        out[key] = value
    return out


def _commands(lines: list[str]) -> list[str]:
    """The block's commands: continuation lines joined, comment lines dropped."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def blocks(page: Path = README) -> list[Block]:
    name = page.relative_to(ROOT).as_posix()
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    directive: dict[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        match = DIRECTIVE.match(line.strip())
        if match:
            directive = _args(match.group("args") or "")
            i += 1
            continue
        if line.startswith("```"):
            lang = line[3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            body = lines[i + 1:end]
            if lang == "sh":
                args = directive or {}
                commands = _commands(body)
                mode = "skip" if "skip" in args else "ci" if "ci" in args else "run"
                exits = ([int(x) for x in args["exits"].split(",")] if "exits" in args
                         else [0] * len(commands))
                assert len(exits) == len(commands), f"{name}:{i + 1}: exits= vs commands"
                found.append(Block(name, i + 1, commands, exits, mode, args.get("skip", ""),
                                   args.get("in") == "repo"))
            elif lang in ("", "text") and directive is not None and "output" in directive:
                assert found, f"{name}:{i + 1}: an output block before any command block"
                found[-1].outputs.append(body)
            directive = None
            i = end + 1
            continue
        if line.strip():
            directive = None  # a directive belongs to the block right after it
        i += 1
    return found


BLOCKS = [block for page in PAGES for block in blocks(page)]


def test_the_readme_has_examples_and_says_why_it_skips_any() -> None:
    assert len(BLOCKS) >= 15
    for block in BLOCKS:
        assert block.commands, block.id
        if block.mode == "skip":
            assert len(block.why) > 10, f"{block.id}: a skipped example says why"
    executed = [b for b in BLOCKS if b.mode != "skip"]  # here, or by CI as its steps
    assert len(executed) >= 2 * (len(BLOCKS) - len(executed))  # skips stay the exception


def _ci_steps() -> list[list[str]]:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip()]


def _in_order(wanted: list[str], have: list[str]) -> bool:
    it = iter(have)
    return all(word in it for word in wanted)


def _matches(expected: list[str], printed: str) -> list[str]:
    """The expected lines not found, in order, in what was printed (``…``: anything)."""
    got = [line.rstrip() for line in printed.splitlines()]
    missing, at = [], 0
    for want in (w.rstrip() for w in expected):
        if not want.strip():
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in want.strip().split("…")))
        for k in range(at, len(got)):
            if pattern.search(got[k]):
                at = k + 1
                break
        else:
            missing.append(want)
    return missing


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder like a user's checkout: scenarios, fixtures, bench; examples linked."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("scenarios", "fixtures", "bench"):
        shutil.copytree(ROOT / name, work / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (work / "examples").symlink_to(ROOT / "examples")
    return work


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_the_example_does_what_the_readme_says(block: Block, workdir: Path,
                                               tmp_path: Path) -> None:
    if block.mode == "skip":
        return  # said why (above); nothing to run
    if block.mode == "ci":
        steps = _ci_steps()
        for command in block.commands:
            for part in command.split("&&"):
                words = shlex.split(part, comments=True)
                assert any(_in_order(words, step) for step in steps), (
                    f"{block.id}: {part.strip()!r} is not a step of .ci/run")
        return
    printed = ""
    env = run_env(tmp_path / "tmp", CHAT_HARNESS_DB="embedded")
    for command, exit_code in zip(block.commands, block.exits, strict=True):
        proc = subprocess.run(["sh", "-c", command], cwd=ROOT if block.in_repo else workdir,
                              env=env, capture_output=True, text=True, timeout=900)
        out = proc.stdout + proc.stderr
        printed += out
        assert proc.returncode == exit_code, (
            f"{block.id}: {command!r} exited {proc.returncode}, the page says {exit_code}\n"
            + out[-3000:])
        assert "Traceback" not in out or block.in_repo, f"{block.id}: {command!r}\n{out[-3000:]}"
    for shown in block.outputs:
        missing = _matches(shown, printed)
        assert not missing, (f"{block.id}: the page shows lines these commands did not print: "
                             f"{missing}\n--- printed ---\n{printed[-4000:]}")
