"""The run options, declared once.

:data:`OPTIONS` is the one table of the options that say what to test and
where: each option's flag, type, default, choices (from their source of truth),
its one help text, the commands that take it, the keyword of
:meth:`harness.config.RunConfig.from_options` it fills, and how a
:class:`~harness.config.RunConfig` writes it back into the command line that
reruns a scenario. Everything else is generated from it:

- :func:`add_options`: the argparse options of ``chat-harness run``, ``explore``,
  ``load``, ``fuzz`` and ``mutants``;
- :func:`add_pytest_options`: the options of the pytest plugin;
- :func:`config_options`: the keywords of ``RunConfig.from_options``;
- :func:`to_argv`: options as a command line (``run`` hands its options to
  pytest, ``mutants`` to each of its runs);
- :func:`reproduce_argv`: the options of the command that reruns a scenario.

Light on purpose (the plugin imports it): the standard library and
``harness.db``'s names only.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.db import KINDS
from harness.profile import PROTOCOLS

if TYPE_CHECKING:
    from harness.config import RunConfig

# the commands an option can belong to; "pytest" is the plugin (pytest's own command line)
RUN, PYTEST, EXPLORE, LOAD, FUZZ, MUTANTS = "run", "pytest", "explore", "load", "fuzz", "mutants"
_STARTS = frozenset({RUN, PYTEST, EXPLORE, LOAD})  # the commands that start a backend
_DB = _STARTS | {FUZZ, MUTANTS}


@dataclass(frozen=True)
class Option:
    flag: str  # "--db-url"
    help: str
    commands: frozenset[str]
    action: str = "value"  # "value", "flag" (on when given) or "list" (repeatable)
    type: Callable[[str], Any] | None = None  # int, float; None: the text as given
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    # the keyword of RunConfig.from_options it fills; None: not part of the RunConfig
    config: str | None = None
    # the value a RunConfig writes back into the rerun command line (None / False /
    # []: nothing); None here: never written back (a secret, a machine's own path)
    reproduce: Callable[[RunConfig], Any] | None = None
    empty: bool = False  # '' is a value of its own (--reports '': no reports)

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


def _option(flag: str, help: str, *commands: str | frozenset[str], **kw: Any) -> Option:
    """An :class:`Option`; ``commands``: names, or sets of names, of the commands taking it."""
    names: set[str] = set()
    for item in commands:
        names.update({item} if isinstance(item, str) else item)
    return Option(flag, help, frozenset(names), **kw)


OPTIONS: tuple[Option, ...] = (
    _option("--target", "backend under test: reference, the in-process reference backend "
            "(default); see --target-cmd and --target-url for others", RUN, PYTEST,
            config="target"),
    _option("--target-cmd", "start CMD (through sh) as the backend under test, with the "
            "environment of C-RUN-1 (PORT, DATABASE_URL, OPENROUTER_BASE_URL, ...); mutants "
            "and variants reach it as CHAT_HARNESS_MUTANT / CHAT_HARNESS_VARIANT",
            _STARTS | {MUTANTS}, metavar="CMD", config="target_cmd",
            reproduce=lambda c: None if c.profile is not None and c.target_cmd == c.profile.start
            else c.target_cmd),
    _option("--protocol", "the protocol the backend speaks: contract (CONTRACT.md, the "
            "default) or ai-sdk (the AI SDK 5 UI message stream); runs the scenarios that "
            "speak it (docs/protocols.md)", RUN, PYTEST, choices=PROTOCOLS, config="protocol",
            reproduce=lambda c: c.protocol if c.protocol != c.profile_protocol else None),
    _option("--profile", "the backend's profile (chat-harness.yaml, or a pyproject.toml with "
            "[tool.chat-harness]): protocol, start command, environment names, login, routes, "
            "the SQL of a chat's messages (default: ./chat-harness.yaml if there is one; "
            "chat-harness init writes one)", RUN, PYTEST, metavar="FILE", config="profile",
            reproduce=lambda c: c.profile.source if c.profile is not None else None),
    _option("--target-url", "test a backend already running at URL (explore and load: needs "
            "--db-url and --reset-db; fuzz: default the in-process reference)",
            _STARTS | {FUZZ}, metavar="URL", config="target_url",
            reproduce=lambda c: c.target_url),
    _option("--provider-port", "serve the scripted provider on this port (default: a free "
            "one)", _STARTS, type=int, metavar="N", config="provider_port",
            reproduce=lambda c: c.provider_port or None),
    _option("--no-schema", "do not apply fixtures/schema.sql: the backend migrates itself",
            _STARTS, action="flag", config="no_schema",
            reproduce=lambda c: not c.apply_schema and (c.profile is None or c.profile.schema)),
    _option("--reset-db", "with --target-url and --db-url: empty the chat tables of that "
            "database between scenarios (explore: sequences; load: before the load); only for "
            "a database kept for tests", _STARTS, action="flag", config="reset_db",
            reproduce=lambda c: bool(c.target_url and c.reset_db)),
    _option("--mutant", "switch on a deliberate bug in the reference backend (repeatable; "
            "chat-harness mutants-list names them)", _STARTS | {FUZZ}, action="list",
            metavar="NAME", config="mutants", reproduce=lambda c: sorted(c.mutants)),
    _option("--variant", "switch on a benign variant of the reference backend: another "
            "answer the contract allows (repeatable)", _STARTS, action="list", metavar="NAME",
            config="variants", reproduce=lambda c: sorted(c.variants)),
    _option("--db", "PostgreSQL provider (default: auto: container if Docker answers, else "
            "embedded; env CHAT_HARNESS_DB)", _DB, choices=KINDS, config="db",
            reproduce=lambda c: c.db if c.db != "auto" else None),
    # never written back: a URL may carry a password, and CHAT_HARNESS_DATABASE_URL gives
    # it to the rerun anyway
    _option("--db-url", "PostgreSQL server to use; a fresh database is created on it (env "
            "CHAT_HARNESS_DATABASE_URL)", _DB, metavar="URL", config="db_url"),
    _option("--db-image", "image for --db container (default: chat-harness/postgres:16-local, "
            "built locally when missing)", _DB, metavar="IMAGE", config="db_image",
            reproduce=lambda c: c.db_image),
    _option("--fixtures-dir", "fixtures folder with schema.sql (default: ./fixtures, else the "
            "harness's own)", _STARTS, metavar="DIR", config="fixtures"),
    _option("--jwt-secret", "JWT_SECRET of the backend (default: the harness's own; env "
            "CHAT_HARNESS_JWT_SECRET)", _STARTS | {FUZZ}, metavar="SECRET",
            config="jwt_secret"),
    _option("--start-timeout", "how long --target-cmd may take to answer GET /api/health "
            "(default 60)", _STARTS, type=float, metavar="SECONDS", config="start_timeout_s"),
    _option("--provider-timeout", "PROVIDER_TIMEOUT_MS of the backend, in ms: how long it "
            "waits for the scripted provider; `timeout:` answers come just after it (default: "
            "80 in-process, 250 with --target-cmd, 1000 with --target-url: set it to the "
            "running backend's own)", _STARTS, type=int, metavar="MS",
            config="provider_timeout_ms", reproduce=lambda c: c.provider_timeout_given),
    _option("--step-timeout", "how long one request may take before the step fails "
            "(default 30)", RUN, PYTEST, LOAD, type=float, metavar="SECONDS",
            config="step_timeout_s"),
    _option("--strict-fields", "list the JSON fields answers carry beyond those a clause "
            "lists, as notes (never failures: the contract allows them)", RUN, PYTEST,
            action="flag", config="strict_fields"),
    _option("--shard", "run only the I-th of N equal shares of the collected tests (for N CI "
            "machines; I counts from 1)", RUN, PYTEST, metavar="I/N"),
    _option("--reports", "write results.json, junit.xml, report.html and the backend's log "
            "there (default: reports; '' for none)", RUN, PYTEST, LOAD, MUTANTS,
            metavar="DIR", config="reports", empty=True),
    _option("--no-cache", "embedded PostgreSQL: initdb every run, no warm cache", RUN,
            action="flag"),
)

BY_DEST = {o.dest: o for o in OPTIONS}


def options_of(command: str) -> list[Option]:
    return [o for o in OPTIONS if command in o.commands]


def _spec(option: Option) -> dict[str, Any]:
    """The keywords of ``add_argument`` (argparse's and pytest's alike)."""
    if option.action == "flag":
        return {"action": "store_true", "default": False, "help": option.help}
    spec: dict[str, Any] = {"default": [] if option.action == "list" else None,
                            "help": option.help}
    if option.action == "list":
        spec["action"] = "append"
    for key in ("type", "choices", "metavar"):
        if getattr(option, key) is not None:
            spec[key] = getattr(option, key)
    return spec


def add_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The options of ``command`` (run, explore, load, fuzz, mutants) on its parser."""
    for option in options_of(command):
        parser.add_argument(option.flag, **_spec(option))


def add_pytest_options(group: Any) -> None:
    """The plugin's options, on pytest's option group ``group``."""
    for option in options_of(PYTEST):
        group.addoption(option.flag, **_spec(option))


def _get(values: Any, dest: str) -> Any:
    if isinstance(values, Mapping):
        return values.get(dest)
    if callable(values):
        return values(dest)
    return getattr(values, dest, None)


def config_options(values: Any, command: str = RUN) -> dict[str, Any]:
    """``command``'s options as keywords of :meth:`~harness.config.RunConfig.from_options`.

    ``values``: an argparse namespace, a mapping by dest, or a function of the dest
    (pytest's ``config.getoption``)."""
    return {o.config: _get(values, o.dest) for o in options_of(command)
            if o.config is not None}


def to_argv(values: Any, options: Iterable[Option]) -> list[str]:
    """``options`` with their values in ``values`` (as for :func:`config_options`) as a
    command line: a list option once per item, a flag when on, a value when given."""
    argv: list[str] = []
    for option in options:
        value = _get(values, option.dest)
        if option.action == "list":
            for item in value or []:
                argv += [option.flag, str(item)]
        elif option.action == "flag":
            if value:
                argv.append(option.flag)
        elif value is not None and (value != "" or option.empty):
            argv += [option.flag, str(value)]
    return argv


def forwarded(command: str, *, leave_out: Iterable[str] = ()) -> list[Option]:
    """The options of ``command`` that it hands on to what it starts: pytest for ``run``,
    ``chat-harness run`` for ``mutants``."""
    to = PYTEST if command == RUN else RUN
    left = set(leave_out)
    return [o for o in options_of(command) if to in o.commands and o.dest not in left]


def reproduce_argv(config: RunConfig) -> list[str]:
    """The options of the command line that reruns a scenario with ``config``."""
    written = [o for o in OPTIONS if o.reproduce is not None]
    return to_argv({o.dest: o.reproduce(config) for o in written if o.reproduce}, written)
