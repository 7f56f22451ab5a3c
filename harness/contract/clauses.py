"""The contract's clauses as data, and their Markdown rendering.

``clauses.yaml`` (package data) is the one source of the contract's words:
the coverage report reads its ids and titles, users read ``CONTRACT.md``,
which is generated from it so the two can never say different things::

    python -m harness.contract.clauses > harness/contract/CONTRACT.md

A malformed ``clauses.yaml`` is a bug of chat-harness, not of the user, hence
:class:`~harness.errors.InternalError`.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from harness.errors import InternalError, Location, ScenarioError

CLAUSE_ID = re.compile(r"^C-[A-Z]+-\d+$")
WIDTH = 79  # the wrapping width of CONTRACT.md
REGENERATE = "python -m harness.contract.clauses > harness/contract/CONTRACT.md"
_HINT = "fix harness/contract/clauses.yaml"


@dataclass(frozen=True)
class Section:
    """A group of clauses; ``intro`` is Markdown shown before them (may be empty)."""

    id: str
    title: str
    intro: str = ""


@dataclass(frozen=True)
class Clause:
    """One numbered requirement of the contract, and what covering it takes."""

    id: str
    title: str
    text: str
    checks: tuple[str, ...]
    section: Section


@dataclass(frozen=True)
class Document:
    """The whole contract: a title, a preamble (Markdown) and the clauses in order."""

    title: str
    preamble: str
    clauses: tuple[Clause, ...]


# -- loading -----------------------------------------------------------------


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = raw.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value.strip()):
        raise InternalError(
            f"clauses.yaml: {where}.{key}: expected a non-empty string, got {value!r}",
            hint=_HINT,
        )
    return value.strip()


def _clause(raw: Any, where: str, section: Section) -> Clause:
    if not isinstance(raw, dict):
        raise InternalError(f"clauses.yaml: {where}: expected a mapping, got {raw!r}", hint=_HINT)
    cid = _text(raw, "id", where)
    if not CLAUSE_ID.match(cid):
        raise InternalError(
            f"clauses.yaml: {where}.id: expected an id such as C-MSG-2, got {cid!r}", hint=_HINT
        )
    checks = raw.get("checks")
    if (not isinstance(checks, list) or not checks
            or not all(isinstance(c, str) and c.strip() for c in checks)):
        raise InternalError(
            f"clauses.yaml: {cid}.checks: expected a non-empty list of strings, got {checks!r}",
            hint=_HINT,
        )
    return Clause(
        id=cid,
        title=_text(raw, "title", cid),
        text=_text(raw, "text", cid),
        checks=tuple(c.strip() for c in checks),
        section=section,
    )


def parse_document(data: Any) -> Document:
    """Validate the parsed YAML and build the :class:`Document`.

    Separate from reading the file so that tests can feed broken documents.
    """
    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        raise InternalError("clauses.yaml: expected a mapping with 'sections:'", hint=_HINT)
    clauses: list[Clause] = []
    seen: set[str] = set()
    for i, raw_section in enumerate(data["sections"]):
        where = f"sections[{i}]"
        if not isinstance(raw_section, dict) or not isinstance(raw_section.get("clauses"), list):
            raise InternalError(f"clauses.yaml: {where}: expected id, title, clauses", hint=_HINT)
        section = Section(
            id=_text(raw_section, "id", where),
            title=_text(raw_section, "title", where),
            intro=_text(raw_section, "intro", where, required=False),
        )
        for j, raw in enumerate(raw_section["clauses"]):
            clause = _clause(raw, f"{where}.clauses[{j}]", section)
            if clause.id in seen:
                raise InternalError(f"clauses.yaml: {clause.id} is defined twice", hint=_HINT)
            seen.add(clause.id)
            clauses.append(clause)
    if not clauses:
        raise InternalError("clauses.yaml: no clause at all", hint=_HINT)
    return Document(
        title=_text(data, "title", "document"),
        preamble=_text(data, "preamble", "document", required=False),
        clauses=tuple(clauses),
    )


@functools.cache
def load_document() -> Document:
    """The packaged contract, read once per process."""
    source = resources.files("harness.contract").joinpath("clauses.yaml")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InternalError(f"clauses.yaml cannot be read: {exc}", hint=_HINT) from None
    return parse_document(data)


def load_clauses() -> list[Clause]:
    """Every clause of the contract, in the contract's order (a fresh list, cached items)."""
    return list(load_document().clauses)


def clause_ids() -> list[str]:
    """The clause ids, in the contract's order."""
    return [c.id for c in load_document().clauses]


# -- rendering ---------------------------------------------------------------

_CODE_SPAN = re.compile(r"`[^`]*`")
# A wrapped line that starts with one of these would turn into a list item, a
# heading, a quote or a setext underline; such words stay on the line before.
_BLOCK_START = re.compile(r"^(?:[-+*#>=|]|\d+[.)])")
_GLUE = "\x00"


def _wrap(text: str, *, first: str = "", rest: str = "") -> str:
    """Wrap prose for Markdown without ever breaking a code span or starting a block."""
    text = _CODE_SPAN.sub(lambda m: m.group(0).replace(" ", _GLUE), text)
    words = text.split()
    glued = words[:1]
    for word in words[1:]:
        if _BLOCK_START.match(word):
            glued[-1] += _GLUE + word
        else:
            glued.append(word)
    lines = textwrap.wrap(
        " ".join(glued), width=WIDTH, initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    )
    return "\n".join(lines).replace(_GLUE, " ")


def render_markdown(
    clauses: Sequence[Clause], *, title: str | None = None, preamble: str | None = None
) -> str:
    """CONTRACT.md: title, preamble, then per section its intro and its clauses.

    ``title`` and ``preamble`` default to the packaged document's.
    """
    if title is None or preamble is None:
        doc = load_document()
        title = doc.title if title is None else title
        preamble = doc.preamble if preamble is None else preamble
    parts = [
        f"# {title}",
        f"<!-- Generated from clauses.yaml; do not edit. Regenerate with:\n     {REGENERATE} -->",
    ]
    if preamble:
        parts.append(preamble)
    current: Section | None = None
    for clause in clauses:
        if clause.section != current:
            current = clause.section
            parts.append(f"## {current.title}")
            if current.intro:
                parts.append(current.intro)
        parts.append(f"### {clause.id} {clause.title}")
        parts.append(_wrap(clause.text))
        checks = "\n".join(_wrap(c, first="- ", rest="  ") for c in clause.checks)
        parts.append(f"To cover it, a scenario checks:\n\n{checks}")
    return "\n\n".join(parts) + "\n"


def main() -> None:
    """Print CONTRACT.md (the ``python -m harness.contract.clauses`` entry)."""
    sys.stdout.write(render_markdown(load_clauses()))


if __name__ == "__main__":
    main()


# -- a covers: id that names no clause (the loader refuses it; coverage reports) --

_WHERE_IDS = "the clause ids are in harness/contract/CONTRACT.md (or run: chat-harness coverage)"


@dataclass(frozen=True)
class UnknownClause:
    """A ``covers:`` entry that names no clause of the contract."""

    clause: str
    scenario: str
    location: Location
    key: str
    suggestion: str | None = None

    def error(self) -> ScenarioError:
        """The error to show the user, with a did-you-mean when one is close."""
        hint = f"did you mean {self.suggestion}? " if self.suggestion else ""
        return ScenarioError(
            f"{self.clause!r} is not a clause of the contract",
            location=self.location, key=self.key, hint=hint + _WHERE_IDS,
        )


def suggest(clause: str, known: list[str]) -> str | None:
    close = difflib.get_close_matches(clause, known, n=1, cutoff=0.6)
    return close[0] if close else None
