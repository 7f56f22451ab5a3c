"""The bad-scenario corpus: every malformed file is one clear error, never a traceback.

Each file under ``tests/corpus/bad/`` starts with a comment that says what the
harness must answer::

    # error: NAME.yaml:LINE: PHRASE             found when the file is loaded
    # run-time error: NAME.yaml:LINE: PHRASE    found only when the scenario runs

A file that cannot hold a comment (the empty file, a UTF-16 file) has its
expectation in ``NO_HEADER``; a byte-order mark may come before the comment.
``.yaml`` and ``.yml`` files are cases in any case of letters (``.YAML`` too).
Load-time errors are checked through ``load_file`` and once more through a real
``chat-harness run`` (pytest's collection); run-time errors through one real run
of all of them, where each must fail its item with ``file:line``, the phrase and
a hint.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from runs import chat_harness

from harness.coverage import coverage
from harness.errors import ScenarioError
from harness.scenario.load import load_file

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "bad"
HEADER = re.compile(rb"^# (error|run-time error): ([^:\s]+):(\d+): (.+)$")
NO_HEADER = {"empty.yaml": ("error", 1, "the file holds no scenario"),
             "utf16.yaml": ("error", 1, "the file is not UTF-8 text")}
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Case:
    path: Path
    phase: str  # "error" or "run-time error"
    line: int
    phrase: str

    @property
    def display(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _case(path: Path) -> Case:
    data = path.read_bytes()
    if path.name in NO_HEADER:
        assert not data.startswith(b"# "), f"{path.name} can hold its header: give it one"
        phase, line, phrase = NO_HEADER[path.name]
        return Case(path, phase, line, phrase)
    found = HEADER.match(data.removeprefix(BOM).split(b"\n", 1)[0])
    assert found, f"{path.name} does not start with '# error: {path.name}:LINE: PHRASE'"
    assert found.group(2).decode() == path.name, f"{path.name} names another file"
    return Case(path, found.group(1).decode(), int(found.group(3)), found.group(4).decode())


CASES = [_case(p) for p in sorted(CORPUS.iterdir())
         if p.suffix.lower() in (".yaml", ".yml")]
LOADING = [c for c in CASES if c.phase == "error"]
RUNNING = [c for c in CASES if c.phase == "run-time error"]


def _ids(cases: list[Case]) -> list[str]:
    return [c.path.stem for c in cases]


def _assert_answer(case: Case, text: str) -> None:
    """``text`` names the file and line, says the phrase, gives a hint, shows no traceback."""
    assert f"{case.display}:{case.line}: " in text, text
    assert case.phrase in text, text
    assert "\nHint: " in text, text
    assert "Traceback" not in text, text


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 150
    assert len(list(CORPUS.iterdir())) == len(CASES)  # nothing in the folder is skipped
    # what can be told from the file is told when it is loaded: only what needs
    # the run's options (the fixtures folder) or the database waits for the run
    assert len(RUNNING) >= 2 and len(LOADING) > 10 * len(RUNNING)
    # no two files test the same thing under another name
    assert len({c.path.read_bytes() for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", LOADING, ids=_ids(LOADING))
def test_loading_answers_file_line_and_hint(case: Case) -> None:
    with pytest.raises(ScenarioError) as info:
        load_file(case.path, display=case.display)
    error = info.value
    assert error.location.file == case.display
    assert error.location.line == case.line, error.render()
    assert error.hint, error.render()
    _assert_answer(case, error.render())


def test_an_unknown_clause_is_refused_by_coverage_too() -> None:
    unknown = CORPUS / "covers-unknown-clause.yaml"
    with pytest.raises(ScenarioError) as info:
        coverage([unknown.relative_to(ROOT)])
    assert "'C-MSG-99' is not a clause of the contract" in info.value.render()


def _cli(*args: str, tmp: Path, timeout: float = 180, cwd: Path = ROOT
         ) -> subprocess.CompletedProcess[str]:
    return chat_harness(*args, tmp=tmp, timeout=timeout, cwd=cwd)


def test_a_real_run_reports_every_broken_file_without_a_traceback(tmp_path: Path) -> None:
    """pytest's collection of the same files: one error each, all in one run."""
    proc = _cli("run", *(c.display for c in LOADING), "--db", "embedded",
                "--reports", str(tmp_path), "-q", "-p", "no:cacheprovider",
                "-o", "chat_harness_scenario_dirs=bad", tmp=tmp_path / "tmp")
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert f"{len(LOADING)} errors" in out, out[-3000:]
    assert "Traceback" not in out
    for case in LOADING:
        assert f"{case.display}:{case.line}: " in out, case.display


def test_coverage_command_answers_without_a_traceback(tmp_path: Path) -> None:
    unknown = next(c for c in CASES if c.path.name == "covers-unknown-clause.yaml")
    proc = _cli("coverage", unknown.display, tmp=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    _assert_answer(unknown, proc.stderr)


@pytest.fixture(scope="module")
def run_time_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One real run of every run-time case: each item's failure text, by file."""
    reports = tmp_path_factory.mktemp("corpus-reports")
    proc = _cli("run", *(c.display for c in RUNNING), "--db", "embedded",
                "--reports", str(reports), "-q", "-p", "no:cacheprovider",
                "-o", "chat_harness_scenario_dirs=bad", tmp=reports / "tmp")
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    assert f"{len(RUNNING)} failed" in out, out[-3000:]
    sections = re.split(r"^_{3,} .* _{3,}$", proc.stdout, flags=re.MULTILINE)
    by_file: dict[str, str] = {}
    for section in sections[1:]:
        text = section.split("\n= ", 1)[0].strip("\n")  # up to pytest's next banner
        by_file[text.split(":", 1)[0]] = text
    return by_file


@pytest.mark.parametrize("case", RUNNING, ids=_ids(RUNNING))
def test_run_time_errors_fail_the_item_with_file_line_and_hint(
    case: Case, run_time_output: dict[str, str]
) -> None:
    load_file(case.path)  # collection accepts it: only running it can tell
    assert case.display in run_time_output, sorted(run_time_output)
    _assert_answer(case, run_time_output[case.display])


def test_a_scenario_link_to_nothing_is_a_located_error(tmp_path: Path) -> None:
    """A dangling link in a scenario folder is neither skipped nor a traceback: loading
    it, discovering its folder and a real run each say where it is and what it points to."""
    from harness.scenario.load import discover

    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "fine.yaml").write_text("name: fine\nsteps:\n  - http: GET /api/health\n")
    link = folder / "gone.yaml"
    link.symlink_to(tmp_path / "moved-away.yaml")
    with pytest.raises(ScenarioError) as info:
        load_file(link, display="scenarios/gone.yaml")
    assert info.value.render().startswith("scenarios/gone.yaml:1: the link points to ")
    assert "moved-away.yaml', which does not exist\nHint: " in info.value.render()
    with pytest.raises(ScenarioError) as info:
        discover([folder])
    assert info.value.location.file == str(link) and info.value.location.line == 1
    proc = _cli("run", "scenarios", "--reports", str(tmp_path / "reports"), "-q",
                "-p", "no:cacheprovider", tmp=tmp_path / "tmp", timeout=120, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert "scenarios/gone.yaml:1: the link points to " in out and "Traceback" not in out


def test_upper_case_suffixes_are_scenarios(tmp_path: Path) -> None:
    """``.YAML`` and ``.Yml`` are collected like ``.yaml`` (they were passed over)."""
    from harness.scenario.load import discover

    for name in ("a.YAML", "b.Yml", "c.yaml", "notes.txt"):
        (tmp_path / name).write_text("name: x\nsteps:\n  - http: GET /api/health\n")
    assert [p.name for p in discover([tmp_path])] == ["a.YAML", "b.Yml", "c.yaml"]


def test_a_folder_the_user_may_not_read_is_left_to_pytest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Walking to the scenarios, pytest passes folders of other users (in /tmp: another
    user's 0700 folder); the plugin's look for dangling links must not turn their
    PermissionError into a collection error (pytest itself skips them). As root nothing
    is unreadable, so the refusal is made here."""
    from types import SimpleNamespace

    from harness import plugin

    locked = tmp_path / "locked"
    locked.mkdir()
    real_exists = Path.exists

    def exists(self: Path) -> bool:
        if self.parent == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", exists)
    parent = SimpleNamespace(config=None)
    assert plugin.pytest_collect_directory(locked, parent) is None  # type: ignore[arg-type]
