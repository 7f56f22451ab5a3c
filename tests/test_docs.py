"""The documentation site: built strictly, its reference generated from the code.

``mkdocs build --strict`` fails on a broken link, a missing anchor or a page left out of
the nav; the reference sections come from ``docs/gen/reference.py`` (the command's parser,
the option table, the step-kind table, the schema, the check catalog, the coverage data,
the provider's routes), so every option and step kind is there without a hand-written
list. Pages other branches write (``docs/gen/hooks.py``, ``OPTIONAL``) are in the nav when
they exist and left out while they do not.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runs import ROOT

from harness.checks.catalog import NOT_JUDGING
from harness.cli import build_parser
from harness.contract.clauses import clause_ids
from harness.options import OPTIONS
from harness.result import Check
from harness.scenario.steps import KINDS

sys.path.insert(0, str(ROOT / "docs" / "gen"))
import hooks  # docs/gen/hooks.py
import reference  # docs/gen/reference.py


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _flags(sub)
        elif action.help != argparse.SUPPRESS:
            found |= {f for f in action.option_strings if f not in ("-h", "--help")}
    return found


def _commands(parser: argparse.ArgumentParser, words: str = "chat-harness") -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= {f"{words} {name}"} | _commands(sub, f"{words} {name}")
    return found


def test_every_command_option_and_step_kind_is_in_the_generated_reference() -> None:
    cli = reference.cli()
    parser = build_parser()
    flags = _flags(parser)
    assert {"--target-cmd", "--shard", "--only", "--port-file", "--output"} <= flags
    assert not [f for f in flags if f"`{f}`" not in cli]
    assert not [c for c in _commands(parser) if f"### `{c}`" not in cli]
    table = reference.options()
    assert not [o.flag for o in OPTIONS if f"`{o.flag}`" not in table or o.help not in table]
    kinds, keys = reference.step_kinds(), reference.scenario_keys()
    for kind in KINDS.values():
        assert f"| `{kind.name}` |" in kinds and f"### {kind.model.__name__}" in keys
    assert not [c for c in Check if c not in NOT_JUDGING and f"`{c.value}`" not in
                reference.checks()]
    clauses = reference.clauses()
    assert not [c for c in clause_ids() if f"`{c}`" not in clauses]
    assert "`/_chat-harness/begin-step`" in reference.provider_api()


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.fail("mkdocs is a dev dependency: pip install -e '.[dev]'")
    return subprocess.run([mkdocs, "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=300,
                          env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)
                               + ":/usr/bin:/bin"})


def test_the_site_builds_strictly_with_the_reference_in_it(tmp_path: Path) -> None:
    built = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "<!-- generated:" not in cli
    assert not [o.flag for o in OPTIONS if o.flag not in cli]
    scenarios = (tmp_path / "site" / "reference" / "scenarios" / "index.html").read_text(
        encoding="utf-8")
    assert not [k for k in KINDS if f"<code>{k}</code>" not in scenarios]
    assert (tmp_path / "site" / "report.png").is_file()  # the screenshot the pages show


def test_pages_of_other_branches_join_the_nav_once_they_exist(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (docs / "speed.md").write_text("# Speed\n\nFast.\n", encoding="utf-8")
    built = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "site" / "speed" / "index.html").is_file()
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'href="speed/"' in home and 'href="protocols/"' not in home  # in the nav


def test_the_nav_drops_only_missing_optional_pages(tmp_path: Path) -> None:
    (tmp_path / "here.md").write_text("# here\n", encoding="utf-8")
    nav = [{"A": "here.md"}, {"B": [{"C": "speed.md"}, {"D": "missing.md"}]}, "ai-sdk.md"]
    assert hooks._prune(nav, tmp_path) == [{"A": "here.md"}, {"B": [{"D": "missing.md"}]}]
    assert {"protocols.md", "ai-sdk.md", "speed.md"} == hooks.OPTIONAL
