"""``chat-harness fuzz``: its options, and the mutant report.

Kept apart from the run itself so that building the command line (every
``chat-harness`` call does) never imports schemathesis.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import time
from typing import TYPE_CHECKING

from harness.options import FUZZ, add_options

if TYPE_CHECKING:
    from harness.fuzz.run import FuzzOptions


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fuzz", help="schemathesis over the contract's OpenAPI description, with chat checks; "
        "exits 1 if it found a failure (extra arguments go to `schemathesis run`)")
    p.add_argument("--profile", choices=("ci", "deep"), default="ci",
                   help="ci: bounded, fixed seed (default); deep: many examples, new seed")
    p.add_argument("--token", action="append", default=[], metavar="TOKEN",
                   help="act with this token instead (repeat once more for the peer user)")
    p.add_argument("--max-examples", type=int, default=None, metavar="N",
                   help="test cases per operation and phase (default: the profile's)")
    p.add_argument("--max-time", type=int, default=None, metavar="SECONDS",
                   help="stop after this long")
    p.add_argument("--rate", default=None, metavar="N/UNIT",
                   help="at most N requests per s, m or h (e.g. 5/s)")
    p.add_argument("--read-only", action="store_true",
                   help="GET requests only (and OPTIONS/TRACE probes): nothing is written")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--mutants", action="store_true",
                   help="fuzz with each mutant in turn and print which ones are found")
    add_options(p, FUZZ)  # the target and the database, as for run


def _options(args: argparse.Namespace, rest: list[str]) -> FuzzOptions:
    from harness.config import RunConfig
    from harness.fuzz.run import FuzzOptions

    mutants = RunConfig.from_options(mutants=args.mutant).mutants  # validates the names
    return FuzzOptions(
        profile=args.profile, target_url=args.target_url, token=args.token,
        jwt_secret=args.jwt_secret, mutants=mutants, db=args.db or "auto", db_url=args.db_url,
        db_image=args.db_image, max_examples=args.max_examples, max_time_s=args.max_time,
        rate=args.rate, read_only=args.read_only, seed=args.seed, workers=args.workers,
        extra=rest,
    )


def main(args: argparse.Namespace, rest: list[str]) -> int:
    from harness.fuzz.run import run_fuzz

    options = _options(args, rest)
    if not args.mutants:
        return run_fuzz(options)
    found = fuzz_mutants(options)
    hits = sorted(n for n, ok in found.items() if ok)
    print(f"found {len(hits)}/{len(found)}: {', '.join(hits) or 'none'}")
    missed = sorted(n for n, ok in found.items() if not ok)
    if missed:
        print(f"not reached: {', '.join(missed)}")
    return 0


def fuzz_mutants(options: FuzzOptions) -> dict[str, bool]:
    """Fuzz with each mutant on (output kept quiet), one PostgreSQL for all: which fail?"""
    from harness.config import RunConfig
    from harness.db import provision
    from harness.errors import ConfigError
    from harness.fuzz.run import run_fuzz
    from harness.reference.mutants import MUTANTS

    if options.target_url:
        raise ConfigError("--mutants needs the in-process reference",
                          hint="leave out --target-url to fuzz the reference with mutants")
    config = RunConfig.from_options(db=options.db, db_url=options.db_url,
                                    db_image=options.db_image)
    out: dict[str, bool] = {}
    db = provision(config.db, url=config.db_url, image=config.db_image)
    try:
        for name in sorted(MUTANTS):
            began = time.perf_counter()
            one = dataclasses.replace(options, mutants=frozenset([name]))
            with contextlib.redirect_stdout(io.StringIO()) as output:
                code = run_fuzz(one, db=db)
            out[name] = code == 1
            verdict = {0: "missed", 1: "found"}.get(code, f"error (exit {code})")
            print(f"  {name:28} {verdict} ({time.perf_counter() - began:.1f} s)", flush=True)
            if code not in (0, 1):  # the run's own report says what went wrong
                print(output.getvalue().rstrip()[-2000:], flush=True)
    finally:
        db.close()
    return out
