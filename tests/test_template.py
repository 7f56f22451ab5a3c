"""``${name}`` variables: what is substituted, what is text, what is an error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import Location
from harness.scenario import template

HERE = Location("t.yaml", 3)


def _render(value: object, **variables: object) -> object:
    return template.render(value, variables, location=HERE, key="steps[0].chat")


def test_a_whole_variable_keeps_its_type_and_text_takes_its_text() -> None:
    assert _render("${n}", n=7) == 7
    assert _render("n=${n}", n=7) == "n=7"


@pytest.mark.parametrize(("written", "sent"), [
    ("$${name}", "${name}"),
    ("$${ not a variable }", "${ not a variable }"),  # was sent as "$${ not a variable }"
    ("$${", "${"),
    ("${a}-$${a}", "1-${a}"),
    ("$$${a}", "$${a}"),  # "$" then the escape: leftmost first
])
def test_dollar_dollar_brace_is_the_text_dollar_brace(written: str, sent: str) -> None:
    assert _render(written, a=1) == sent


@pytest.mark.parametrize(("text", "problem"), [
    ("${nope", "'${' is never closed"),
    ("id ${ session_id }", "'${ session_id }' has spaces inside the braces"),
    ("${1st}", "'${1st}' is not a variable name"),
    ("${}", "'${}' is not a variable name"),
    ("${a} and ${b", "'${' is never closed"),
])
def test_a_dollar_brace_that_starts_no_variable_is_named(text: str, problem: str) -> None:
    found = template.malformed(text)
    assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize("text", ["${a}", "$${ x", "cost: $5 {sic}", "$${a", "{}$", ""])
def test_well_formed_text_has_no_problem(text: str) -> None:
    assert template.malformed(text) is None


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("${}ab _.1")), max_size=30))
def test_escaped_text_renders_back_to_itself(text: str) -> None:
    """What the importer writes with escape() is sent as it was captured, and is never
    a malformed variable."""
    escaped = template.escape(text)
    assert template.malformed(escaped) is None
    assert _render(escaped) == text
