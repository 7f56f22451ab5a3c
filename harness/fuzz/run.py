"""``chat-harness fuzz``: schemathesis 4 over the contract's OpenAPI description.

Scenarios check the conversations someone thought of; the fuzzer sends what
nobody would write by hand (odd types, unicode, huge and empty values, wrong
methods, every documented link between operations) and holds each answer to
the schema and to the chat checks of :mod:`harness.fuzz.checks`.

The run is schemathesis' own command line, called in-process with arguments
built here, so its output, failure report and ``curl`` reproduction lines are
the ones its users know. Around it the harness puts what a chat backend
needs: a target (the reference on a loopback port with a database and a
provider that always answers, or ``--target-url``), two generated users
(``alice`` runs the tests, ``bob`` is the peer schemathesis' object-level
authorization check reads as) with JWTs signed with the backend's secret,
and the bounds that keep a run against staging polite.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.db import Database

# The checks of schemathesis that hold a backend to more than the contract
# says, left out: positive_data_acceptance (a schema-valid request may still
# break a rule across fields: current_message_id not in messages is a 422,
# C-CHAT-2), negative_data_rejection (bodies are open and the reference takes
# a null optional field as absent, which the schema does not say), and
# allow_header_conformance (the contract does not ask for Allow on a 405).
EXCLUDED_CHECKS = ("positive_data_acceptance", "negative_data_rejection",
                   "allow_header_conformance")
# Headers whose values never show in output; the defaults of schemathesis also
# hide anything named like "session" or "token", which here are the data
# (sessionId, input_tokens) a reproduction needs.
SECRET_KEYS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key")
SECRET_MARKERS = ("password", "secret")
SAFE_METHODS = ("options", "trace")  # what read-only may probe as "unsupported"


@dataclass(frozen=True)
class FuzzProfile:
    """How hard to look: examples per operation, phases, time."""

    name: str
    max_examples: int
    max_time_s: int | None
    seed: int | None  # None: a new one each run (printed, so a run can be repeated)
    phases: tuple[str, ...] = ("examples", "coverage", "fuzzing", "stateful")


PROFILES = {
    # deterministic, about half a minute against the in-process reference here
    "ci": FuzzProfile("ci", max_examples=30, max_time_s=None, seed=20250812),
    "deep": FuzzProfile("deep", max_examples=1000, max_time_s=1800, seed=None),
}


@dataclass
class FuzzOptions:
    profile: str = "ci"
    target_url: str | None = None
    token: list[str] = field(default_factory=list)  # 1st: the tester, 2nd: a peer
    jwt_secret: str | None = None
    mutants: frozenset[str] = frozenset()
    db: str = "auto"
    db_url: str | None = None
    db_image: str | None = None
    max_examples: int | None = None
    max_time_s: int | None = None
    rate: str | None = None  # e.g. 10/s, 300/m
    read_only: bool = False
    seed: int | None = None
    workers: int = 1
    extra: list[str] = field(default_factory=list)  # passed to `schemathesis run` as is


def _rate(value: str) -> str:
    """``N/s``, ``N/m`` or ``N/h`` as schemathesis' ``--rate-limit`` takes it."""
    number, _, unit = value.partition("/")
    if not number.isdigit() or int(number) < 1 or unit not in ("s", "m", "h"):
        raise ConfigError(f"--rate expects requests per unit such as 10/s or 300/m, got {value!r}",
                          hint="units: s, m, h")
    return value


def _token(secret: str, hours: float) -> str:
    import jwt

    claims = {"sub": str(uuid.uuid4()), "exp": int(time.time() + hours * 3600)}
    return jwt.encode(claims, secret, algorithm="HS256")


def identities(options: FuzzOptions, secret: str | None, hours: float) -> list[tuple[str, str]]:
    """(name, bearer token) of the users the run acts as: generated, or given."""
    if options.token:
        if len(options.token) > 2:
            raise ConfigError("--token takes one or two tokens",
                              hint="the first one runs the tests, a second one is the peer "
                              "that must not see the first one's data")
        return list(zip(("alice", "bob"), options.token, strict=False))
    if secret is None:
        raise ConfigError("a backend at --target-url needs tokens it accepts",
                          hint="give --jwt-secret SECRET (users are generated) or --token TOKEN")
    # fresh users each run: nothing generated lands in anyone's data
    return [("alice", _token(secret, hours)), ("bob", _token(secret, hours))]


def write_files(folder: Path, users: list[tuple[str, str]], *, read_only: bool
                ) -> tuple[Path, Path]:
    """The schemathesis configuration and the WFC file with the users' headers."""
    auth = {"auth": [{"name": name, "fixedHeaders": [
        {"name": "Authorization", "value": f"Bearer {token}"}]} for name, token in users]}
    auth_file = folder / "users.json"
    auth_file.write_text(json.dumps(auth), encoding="utf-8")
    auth_file.chmod(0o600)
    lines = [
        # schemathesis keeps the failures of a run in .schemathesis/ under the working
        # directory and replays them at the start of the next: requests made for another
        # target, port and users, in the user's checkout; a run is its --seed alone
        "[cache]",
        "enabled = false",
        "",
        "[output.sanitization]",
        f"keys-to-sanitize = {json.dumps(list(SECRET_KEYS))}",
        f"sensitive-markers = {json.dumps(list(SECRET_MARKERS))}",
    ]
    peer = dict(users).get("bob")
    lines += ["", "[checks.chat_foreign_session]",
              f"peer_authorization = {json.dumps(f'Bearer {peer}' if peer else '')}",
              f"writes = {'false' if read_only else 'true'}"]
    if read_only:
        lines += ["", "[phases.coverage]", f"unexpected-methods = {json.dumps(list(SAFE_METHODS))}"]
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config.chmod(0o600)  # the peer's token
    return config, auth_file


def cli_args(options: FuzzOptions, url: str, config: Path, auth_file: Path) -> list[str]:
    """The ``schemathesis`` command line of this run."""
    from importlib import resources

    profile = PROFILES[options.profile]
    spec = resources.files("harness.contract").joinpath("openapi.yaml")
    args = ["--config-file", str(config), "run", str(spec), "--url", url,
            "--auth-wfc", str(auth_file), "--auth-wfc-user", "alice",
            "--exclude-checks", ",".join(EXCLUDED_CHECKS),
            "--phases", ",".join(profile.phases),
            "--max-examples", str(options.max_examples or profile.max_examples),
            "--workers", str(options.workers), "--generation-database", "none",
            "--warnings", "off"]
    seed = options.seed if options.seed is not None else profile.seed
    if seed is not None:
        args += ["--seed", str(seed)]
    max_time = options.max_time_s or profile.max_time_s
    if max_time:
        args += ["--max-time", str(max_time)]
    if options.rate:
        args += ["--rate-limit", _rate(options.rate)]
    if options.read_only:
        args += ["--include-method", "GET"]
    return args + options.extra


@contextlib.contextmanager
def _target(options: FuzzOptions, shared: Database | None = None
            ) -> Iterator[tuple[str, str | None]]:
    """(base URL, JWT secret) of the backend under test, started here if it is ours.

    ``shared`` is a running PostgreSQL to use (emptied first, not closed).
    """
    if options.target_url:
        if options.mutants:
            raise ConfigError("--mutant needs the in-process reference",
                              hint="leave out --target-url to fuzz the reference with mutants")
        yield options.target_url.rstrip("/"), (options.jwt_secret
                                               or os.environ.get("CHAT_HARNESS_JWT_SECRET"))
        return
    from harness.config import RunConfig
    from harness.db import provision
    from harness.targets.served import serve_reference

    config = RunConfig.from_options(db=options.db, db_url=options.db_url,
                                    db_image=options.db_image)
    secret = options.jwt_secret or config.jwt_secret
    db = shared or provision(config.db, url=config.db_url, image=config.db_image)
    try:
        db.apply_schema(config.schema)
        db.reset()
        with serve_reference(db, jwt_secret=secret, mutants=options.mutants,
                             provider_timeout_ms=config.provider_timeout_ms) as url:
            yield url, secret
    finally:
        if shared is None:
            db.close()


def _schemathesis(args: list[str]) -> int:
    import click
    from schemathesis.cli import schemathesis as cli

    try:
        code: Any = cli.main(args, prog_name="schemathesis", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    except click.ClickException as exc:  # options it does not take (extra ones go to it)
        raise ConfigError(f"schemathesis run: {exc.format_message()}",
                          hint="chat-harness fuzz passes the options it does not know to "
                          "'schemathesis run'; see chat-harness fuzz --help and "
                          "schemathesis run --help") from None
    except click.exceptions.Abort:  # click's form of Ctrl-C outside standalone mode
        raise KeyboardInterrupt from None
    return code if isinstance(code, int) else (0 if code is None else 1)


def run_fuzz(options: FuzzOptions, *, db: Database | None = None) -> int:
    """Fuzz the target; 0 when nothing was found, 1 on failures, 2 on errors. A backend
    that refused the run (:mod:`harness.refusals`) raises ``TargetRefused``.

    ``db`` shares a running PostgreSQL with the in-process reference (not closed).
    """
    if options.profile not in PROFILES:
        raise ConfigError(f"unknown profile {options.profile!r}",
                          hint="choose " + " or ".join(PROFILES))
    import harness.fuzz.checks
    import harness.fuzz.probes  # noqa: F401  (importing them registers checks and hook)
    from harness.folders import temporary
    from harness.fuzz import hooks
    from harness.refusals import Tally

    profile = PROFILES[options.profile]
    budget = options.max_time_s or profile.max_time_s or 3600
    with _target(options, db) as (url, secret), temporary("chat-harness-fuzz-") as tmp:
        users = identities(options, secret, hours=max(1.0, 2 * budget / 3600))
        config, auth_file = write_files(tmp, users, read_only=options.read_only)
        args = cli_args(options, url, config, auth_file)
        print(f"chat-harness fuzz: {'the in-process reference' if not options.target_url else url}"
              + "".join(f" --mutant {m}" for m in sorted(options.mutants))
              + f", profile {profile.name}, users {', '.join(n for n, _ in users)}", flush=True)
        tally = Tally("fuzz", auth_hint="check --jwt-secret: it must be the backend's "
                      "JWT_SECRET (or give --token with tokens the backend accepts)",
                      route_hint="check --target-url: the chat API must be at its root "
                      "(/api/chat, /api/health)")
        with hooks.counting(tally, frozenset(f"Bearer {t}" for _, t in users)):
            code = _schemathesis(args)
        sys.stdout.flush()
    tally.check()  # a backend that refused the run: no "no issues found"
    if code == 1 and not options.target_url:
        print("The curl lines above name the in-process reference's port, gone now; rerun the "
              "same command (same --seed), or serve the reference with "
              "'python -m harness.reference' and pass --target-url.")
    return code
