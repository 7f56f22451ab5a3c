"""The coverage report: which scenarios cover which clause, what is uncovered, typos."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.contract.clauses import clause_ids, load_clauses
from harness.coverage import coverage, coverage_of, render_coverage, summary_line
from harness.errors import ScenarioError
from harness.scenario.load import load_file

ROOT = Path(__file__).resolve().parents[1]
TOTAL = len(clause_ids())


def _scenario(folder: Path, name: str, covers: str, *, matrix: bool = False) -> Path:
    lines = [f"name: {name}", "model: m/x", f"covers: {covers}"]
    if matrix:
        lines += ["matrix:", "  current_message_id: [true, false]"]
    lines += ["steps:", "  - chat: hello", "    provider: {reply: hi}", ""]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    (folder / "sub").mkdir(parents=True)
    _scenario(folder, "pairing", "[C-CHAT-2, C-MSG-2]", matrix=True)
    _scenario(folder / "sub", "replay", "[C-MSG-2, C-MSG-10, C-MSG-2]")
    _scenario(folder, "nothing", "[]")
    return folder


def test_counts_scenarios_per_clause(suite: Path) -> None:
    report = coverage([suite])
    assert [c.id for c in report.clauses] == clause_ids()
    assert report.by_clause["C-CHAT-2"] == (
        "pairing[current_message_id=true]", "pairing[current_message_id=false]",
    )
    assert report.by_clause["C-MSG-2"] == (
        "pairing[current_message_id=true]", "pairing[current_message_id=false]", "replay",
    )
    assert report.by_clause["C-MSG-10"] == ("replay",)  # named twice in one file: counted once
    assert report.by_clause["C-RUN-1"] == ()


def test_detects_uncovered_clauses(suite: Path) -> None:
    report = coverage([suite])
    covered = {"C-CHAT-2", "C-MSG-2", "C-MSG-10"}
    assert report.uncovered == [cid for cid in clause_ids() if cid not in covered]
    assert report.covered_count == 3
    assert not report.complete


def test_a_suite_covering_everything_is_complete(tmp_path: Path) -> None:
    _scenario(tmp_path, "all", "[" + ", ".join(clause_ids()) + "]")
    report = coverage([tmp_path])
    assert report.uncovered == [] and report.complete
    assert summary_line(report) == f"coverage: {TOTAL}/{TOTAL} clauses covered"


def test_summary_line_names_the_uncovered(suite: Path) -> None:
    report = coverage([suite])
    line = summary_line(report)
    assert line == (f"coverage: 3/{TOTAL} clauses covered; {TOTAL - 3} uncovered by the "
                    "scenarios run (chat-harness coverage -v lists them)")


def test_summary_line_names_a_few_uncovered(suite: Path) -> None:
    from dataclasses import replace

    report = coverage([suite])
    few = replace(report, by_clause={c.id: ("x",) for c in report.clauses[2:]})
    assert summary_line(few) == (f"coverage: {TOTAL - 2}/{TOTAL} clauses covered; "
                                 "uncovered: C-RUN-1, C-RUN-2")


def test_table_lists_every_clause_with_title_and_count(suite: Path) -> None:
    text = render_coverage(coverage([suite]), verbose=False)
    lines = text.splitlines()
    assert lines[0].split() == ["clause", "title", "scenarios"]
    rows = {line.split()[0]: line for line in lines[1:TOTAL + 1]}
    assert list(rows) == clause_ids()
    titles = {c.id: c.title for c in load_clauses()}
    assert titles["C-MSG-2"] in rows["C-MSG-2"] and rows["C-MSG-2"].endswith(" 3")
    assert rows["C-MSG-10"].endswith(" 1")
    assert rows["C-RUN-1"].endswith(" 0")
    assert "replay" not in text
    assert lines[-2] == ""
    assert lines[-1] == summary_line(coverage([suite]))


def test_verbose_table_names_the_scenarios(suite: Path) -> None:
    text = render_coverage(coverage([suite]), verbose=True)
    row = next(line for line in text.splitlines() if line.startswith("C-MSG-2 "))
    assert row.endswith(
        " 3  pairing[current_message_id=true], pairing[current_message_id=false], replay"
    )
    uncovered = next(line for line in text.splitlines() if line.startswith("C-RUN-1 "))
    assert uncovered.endswith(" 0")
    assert text.splitlines()[0].split() == ["clause", "title", "scenarios", "names"]


def test_an_unknown_clause_id_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "name: typo\n"
        "covers:\n"
        "  - C-MSG-2\n"
        "  - C-MSG-11\n"
        "steps:\n"
        "  - chat: hello\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as info:
        coverage([tmp_path])
    err = info.value
    assert err.location.file == str(path)
    assert err.location.line == 4
    assert err.key == "covers[1]"
    assert "'C-MSG-11' is not a clause of the contract" in err.render()
    assert "did you mean C-MSG-1?" in (err.hint or "")
    assert err.render().startswith(f"{path}:4: covers[1]: ")


def test_an_unknown_clause_id_fails_the_file_when_it_loads(tmp_path: Path) -> None:
    # not only the coverage command: a run refuses the file (collection), naming the id
    path = _scenario(tmp_path, "typos", "[C-CHAT-2, C-SESSION-1]", matrix=True)
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    assert info.value.render() == (
        f"{path}:3: covers[1]: 'C-SESSION-1' is not a clause of the contract\n"
        "Hint: did you mean C-SES-1? the clause ids are in harness/contract/CONTRACT.md "
        "(or run: chat-harness coverage)")


def test_coverage_of_loaded_scenarios(suite: Path) -> None:
    scenarios = load_file(suite / "pairing.yaml")
    report = coverage_of(scenarios)
    assert report.by_clause["C-MSG-2"] == tuple(s.id for s in scenarios)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("name: x\nsteps: [\n", "YAML syntax error"),
        ("- just a list\n", "a scenario file holds one mapping"),
        ("name: x\ncovers: [c-msg-2]\nsteps:\n  - chat: hi\n", "expected a clause id such as"),
        ("name: x\ncovers: [C-MSG-2]\n", "required key is missing"),
    ],
)
def test_a_broken_scenario_file_is_a_scenario_error(
    tmp_path: Path, content: str, words: str
) -> None:
    (tmp_path / "broken.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        coverage([tmp_path])
    assert words in info.value.render()
    assert str(tmp_path / "broken.yaml") in info.value.render()


def test_a_missing_path_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the file"):
        coverage([tmp_path / "nope.yaml"])


def test_the_project_scenarios_name_only_known_clauses() -> None:
    report = coverage([ROOT / "scenarios"])
    assert report.covered_count >= 1


def test_scenarios_of_the_same_name_in_two_files_both_count(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _scenario(tmp_path / folder, "same", "[C-MSG-4]")
    assert coverage([tmp_path]).by_clause["C-MSG-4"] == ("same", "same")
