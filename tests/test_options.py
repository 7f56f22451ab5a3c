"""The run options are declared once (harness/options.py) and every command, the pytest
plugin, RunConfig and the reproduce command line follow that table."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from harness import options
from harness.cli import build_parser
from harness.config import RunConfig
from harness.db import KINDS

# every flag each command took before the table (README and the tests use them)
FLAGS = {
    "run": {"--target", "--mutant", "--variant", "--db", "--db-url", "--db-image",
            "--fixtures-dir", "--target-cmd", "--target-url", "--provider-port", "--no-schema",
            "--reset-db", "--jwt-secret", "--start-timeout", "--shard", "--step-timeout",
            "--strict-fields", "--reports", "--no-cache"},
    "explore": {"--mutant", "--variant", "--db", "--db-url", "--db-image", "--fixtures-dir",
                "--target-cmd", "--target-url", "--provider-port", "--no-schema", "--reset-db",
                "--jwt-secret", "--start-timeout"},
    "load": {"--mutant", "--variant", "--db", "--db-url", "--db-image", "--fixtures-dir",
             "--target-cmd", "--target-url", "--provider-port", "--no-schema", "--reset-db",
             "--jwt-secret", "--start-timeout", "--step-timeout", "--reports"},
    "fuzz": {"--target-url", "--jwt-secret", "--mutant", "--db", "--db-url", "--db-image"},
    "mutants": {"--reports", "--db", "--db-url", "--db-image", "--target-cmd"},
}


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_each_command_takes_its_options_from_the_table(command: str) -> None:
    actions = _flags(_subparser(command))
    table = {o.flag: o for o in options.options_of(command)}
    assert FLAGS[command] <= set(actions)  # no flag lost
    assert set(table) <= set(actions)
    for flag, option in table.items():
        assert actions[flag].help == option.help  # one help text per option
    assert actions["--db"].choices == KINDS if "--db" in table else True


def test_the_plugin_takes_the_table_and_run_hands_it_on(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("-p", "harness.plugin", "--help")
    text = " ".join(result.stdout.str().split())
    for option in options.options_of(options.PYTEST):
        assert option.flag in text
        assert " ".join(option.help.split()) in text
    # run takes every plugin option, and hands every one of them on
    run = {o.flag for o in options.options_of(options.RUN)}
    assert {o.flag for o in options.options_of(options.PYTEST)} <= run
    assert {o.flag for o in options.forwarded(options.RUN)} == {
        o.flag for o in options.options_of(options.PYTEST)}


def test_run_hands_its_options_to_pytest_as_given() -> None:
    argv = ["run", "scenarios/seed", "--mutant", "a", "--mutant", "b", "--db", "embedded",
            "--target-cmd", "exec x", "--reports", "", "--no-schema", "--provider-port", "0",
            "--step-timeout", "2.5", "--no-cache"]
    args, rest = build_parser().parse_known_args(argv)
    assert rest == []
    handed = options.to_argv(args, options.forwarded(options.RUN))
    assert handed == ["--target-cmd", "exec x", "--provider-port", "0", "--no-schema",
                      "--mutant", "a", "--mutant", "b", "--db", "embedded",
                      "--step-timeout", "2.5", "--reports", ""]  # --no-cache stays with run


def test_the_cli_and_the_plugin_make_the_same_run_config() -> None:
    argv = ["run", "--target-url", "http://127.0.0.1:3000", "--db-url", "postgresql://h/db",
            "--reset-db", "--jwt-secret", "s" * 32, "--start-timeout", "5", "--reports", "out"]
    args, _ = build_parser().parse_known_args(argv)
    from_cli = RunConfig.from_options(**options.config_options(args, options.RUN))
    pytest_values = {o.dest: getattr(args, o.dest) for o in options.options_of(options.PYTEST)}
    from_plugin = RunConfig.from_options(
        **options.config_options(pytest_values.get, options.PYTEST))
    assert from_cli == from_plugin
    assert (from_cli.target_url, from_cli.db, from_cli.reset_db, from_cli.start_timeout_s,
            from_cli.reports) == ("http://127.0.0.1:3000", "url", True, 5.0, Path("out"))


def test_the_reproduce_line_writes_back_what_the_config_holds_but_secrets() -> None:
    config = RunConfig.from_options(
        mutants=["insert-not-upsert,request-id-first-match"], db="embedded",
        db_image="pg:16", target_cmd="exec python -m harness.reference", provider_port=9100,
        no_schema=True, jwt_secret="a-secret-of-at-least-32-bytes-long!!")
    line = shlex.join(options.reproduce_argv(config))
    assert line == ("--target-cmd 'exec python -m harness.reference' --provider-port 9100 "
                    "--no-schema --mutant insert-not-upsert --mutant request-id-first-match "
                    "--db embedded --db-image pg:16")
    args, rest = build_parser().parse_known_args(["run", *shlex.split(line)])
    assert rest == [] and RunConfig.from_options(
        **options.config_options(args)).mutants == config.mutants  # it parses back
    url = RunConfig.from_options(target_url="http://h:1", db_url="postgresql://u:pw@h/d",
                                 reset_db=True)
    assert options.reproduce_argv(url) == ["--target-url", "http://h:1", "--reset-db",
                                           "--db", "url"]  # never the URL's password


def test_the_provider_timeout_follows_the_mode_unless_given() -> None:
    from harness.config import PROVIDER_TIMEOUT_DEFAULTS

    assert RunConfig.from_options().provider_timeout_ms == PROVIDER_TIMEOUT_DEFAULTS["reference"]
    cmd = RunConfig.from_options(target_cmd="exec x")
    assert cmd.provider_timeout_ms == PROVIDER_TIMEOUT_DEFAULTS["cmd"]
    assert options.reproduce_argv(cmd) == ["--target-cmd", "exec x"]  # the default: not written
    given = RunConfig.from_options(target_cmd="exec x", provider_timeout_ms=1500)
    assert given.provider_timeout_ms == 1500
    line = options.reproduce_argv(given)
    assert line == ["--target-cmd", "exec x", "--provider-timeout", "1500"]
    args, rest = build_parser().parse_known_args(["run", *line])
    assert rest == [] and RunConfig.from_options(**options.config_options(args)) == given


def test_a_provider_timeout_below_one_ms_is_refused() -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="--provider-timeout must be a positive"):
        RunConfig.from_options(provider_timeout_ms=0)


@pytest.mark.parametrize("timeout_ms", [50, 250, 1000, 30_000])
def test_a_timeout_answer_comes_after_the_runs_own_timeout(timeout_ms: int) -> None:
    from harness.scenario.model import ProviderAnswer

    headers = ProviderAnswer(reply="late", timeout=True).to_answer(timeout_ms)
    first_token = ProviderAnswer(reply="late", timeout="first_token").to_answer(timeout_ms)
    assert headers.delay_ms >= timeout_ms + 25 and headers.delay_ms <= timeout_ms + 300
    assert first_token.delay_ms == 0 and first_token.first_gap_ms == headers.delay_ms
