"""The packaged contract: the same clause ids as the shared one, complete, in sync.

``clauses.yaml`` restates ``../shared/CONTRACT.md`` in our own words; these
tests keep the two aligned (ids, order) without letting ours become a copy,
and keep the generated ``CONTRACT.md`` equal to its source.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.contract import clauses as contract
from harness.contract.clauses import (
    REGENERATE,
    Clause,
    Section,
    clause_ids,
    load_clauses,
    load_document,
    parse_document,
    render_markdown,
)
from harness.errors import InternalError

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"
GENERATED = ROOT / "harness" / "contract" / "CONTRACT.md"
ID = re.compile(r"\bC-[A-Z]+-\d+\b")


def _shared_text() -> str:
    if not SHARED.is_file():
        reason = f"{SHARED} is absent: nothing to compare the clause ids with"
        print(reason)
        pytest.skip(reason)
    return SHARED.read_text(encoding="utf-8")


# -- against the shared contract ---------------------------------------------


def test_clause_ids_are_exactly_those_of_the_shared_contract_in_order() -> None:
    text = _shared_text()
    defined = re.findall(r"^- (C-[A-Z]+-\d+)\b", text, flags=re.MULTILINE)
    assert defined, f"no clause definitions ('- C-…') found in {SHARED}"
    assert set(ID.findall(text)) <= set(defined), "the shared contract cites an undefined id"
    assert clause_ids() == defined


def _prose_words(text: str) -> list[str]:
    """Lower-case words outside code spans: field names and literals may match."""
    return re.findall(r"[a-z]+", re.sub(r"`[^`]*`", " ", text).lower())


def test_our_words_are_not_copied_sentences() -> None:
    run = 8  # words in a row that both documents may share
    shared = _prose_words(_shared_text())
    grams = {tuple(shared[i:i + run]) for i in range(len(shared) - run + 1)}
    doc = load_document()
    pieces = [("preamble", doc.preamble)]
    for c in doc.clauses:
        pieces += [(f"{c.section.id} intro", c.section.intro), (c.id, c.text)]
        pieces += [(f"{c.id} check", check) for check in c.checks]
    copied = sorted({
        f"{where}: {' '.join(words[i:i + run])}"
        for where, piece in pieces
        for words in [_prose_words(piece)]
        for i in range(len(words) - run + 1)
        if tuple(words[i:i + run]) in grams
    })
    assert not copied, "reword these (copied from the shared contract):\n" + "\n".join(copied)


# -- the packaged clauses ----------------------------------------------------


def test_every_clause_is_complete() -> None:
    for clause in load_clauses():
        assert clause.title.strip() and len(clause.title) <= 60, clause.id
        assert len(clause.text.split()) >= 10, f"{clause.id}: text too thin"
        assert clause.checks, clause.id
        assert all(check.strip() for check in clause.checks), clause.id
        assert clause.section.title, clause.id


def test_clauses_are_grouped_in_sections_by_prefix() -> None:
    for clause in load_clauses():
        prefix = clause.id.split("-")[1].lower()
        assert prefix == clause.section.id, f"{clause.id} is in section {clause.section.id!r}"


def test_every_cited_clause_exists() -> None:
    known = set(clause_ids())
    doc = load_document()
    texts = [doc.preamble] + [c.section.intro for c in doc.clauses]
    texts += [c.text for c in doc.clauses] + [x for c in doc.clauses for x in c.checks]
    cited = {cid for text in texts for cid in ID.findall(text)}
    assert cited <= known, f"cited but not defined: {sorted(cited - known)}"


def test_loading_is_cached_but_returns_a_fresh_list() -> None:
    first, second = load_clauses(), load_clauses()
    assert first == second and first is not second
    assert first[0] is second[0]
    first.clear()
    assert load_clauses()
    assert clause_ids() == [c.id for c in load_clauses()]


# -- validation --------------------------------------------------------------


def _doc(*clauses: dict[str, Any]) -> dict[str, Any]:
    return {"title": "T", "sections": [{"id": "msg", "title": "S", "clauses": list(clauses)}]}


def _clause(cid: str = "C-MSG-1", **over: Any) -> dict[str, Any]:
    return {"id": cid, "title": "t", "text": "the rule", "checks": ["a check"], **over}


def test_a_valid_document_parses() -> None:
    doc = parse_document(_doc(_clause(), _clause("C-MSG-2")))
    assert [c.id for c in doc.clauses] == ["C-MSG-1", "C-MSG-2"]
    assert doc.clauses[0].section == Section("msg", "S")
    assert doc.clauses[0].checks == ("a check",)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_doc(_clause(), _clause()), "C-MSG-1 is defined twice"),
        (_doc(_clause("C-msg-1")), "expected an id such as C-MSG-2, got 'C-msg-1'"),
        (_doc(_clause("CMSG1")), "got 'CMSG1'"),
        (_doc(_clause(text="  ")), "C-MSG-1.text: expected a non-empty string"),
        (_doc(_clause(checks=[])), "C-MSG-1.checks: expected a non-empty list"),
        (_doc(_clause(checks="one")), "C-MSG-1.checks"),
        (_doc(_clause(title=None)), "C-MSG-1.title"),
        (_doc(), "no clause at all"),
        ({"title": "T"}, "expected a mapping with 'sections:'"),
        (["not a mapping"], "expected a mapping with 'sections:'"),
    ],
)
def test_a_broken_document_is_an_internal_error(data: Any, words: str) -> None:
    with pytest.raises(InternalError) as info:
        parse_document(data)
    assert words in str(info.value)
    assert "Hint: fix harness/contract/clauses.yaml" in str(info.value)


# -- rendering ---------------------------------------------------------------


def test_committed_contract_md_is_the_rendering_of_clauses_yaml() -> None:
    rendered = render_markdown(load_clauses())
    committed = GENERATED.read_text(encoding="utf-8") if GENERATED.is_file() else ""
    assert committed == rendered, (
        "harness/contract/CONTRACT.md is out of date with clauses.yaml; "
        f"regenerate it with: {REGENERATE}"
    )


def test_python_m_prints_the_rendering() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness.contract.clauses"],
        capture_output=True, text=True, encoding="utf-8", check=True,
    )
    assert out.stdout == render_markdown(load_clauses())


def test_rendering_shows_every_clause_with_its_checks() -> None:
    text = render_markdown(load_clauses())
    for clause in load_clauses():
        assert f"### {clause.id} {clause.title}\n" in text
    assert text.count("To cover it, a scenario checks:") == len(load_clauses())
    assert text.startswith(f"# {load_document().title}\n")


def test_wrapping_never_starts_a_markdown_block_nor_splits_code() -> None:
    tricky = " ".join(
        f"word{i} - {i}. + * # > `a code span {i}`" for i in range(40)
    )
    section = Section("msg", "S")
    clause = Clause("C-MSG-1", "t", tricky, (tricky,), section)
    text = render_markdown([clause], title="T", preamble="")
    body = text.split("### C-MSG-1 t\n\n", 1)[1]
    paragraph, checks = body.split("\n\nTo cover it, a scenario checks:\n\n")
    for line in paragraph.splitlines():
        assert not re.match(r"^(?:[-+*#>=|]|\d+[.)])", line), line
        assert len(line) <= contract.WIDTH or line.count("`") == 2, line
        assert line.count("`") % 2 == 0, f"a code span is split: {line!r}"
    lines = checks.splitlines()
    assert lines[0].startswith("- ")
    for line in lines[1:]:
        assert line.startswith("  ") and not re.match(r"^ *(?:[-+*#>=|]|\d+[.)])", line), line
    assert " ".join(paragraph.split()) == " ".join(tricky.split())


def test_wrapping_keeps_spaces_inside_code_spans() -> None:
    clause = Clause("C-MSG-1", "t", 'send `message: "   "` then', ("x",), Section("msg", "S"))
    assert 'send `message: "   "` then' in render_markdown([clause], title="T", preamble="")
