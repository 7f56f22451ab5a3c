"""The ``chat-harness`` command.

``chat-harness run [PATHS] [OPTIONS]`` runs scenarios through pytest with only
this plugin loaded (other installed pytest plugins cost start-up time and are
not needed), so a run from the command line and from ``pytest`` are the same.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from harness.errors import HarnessError


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    import pytest

    os.environ.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # with autoload off, -p loads our entry point by its name (and only it)
    argv = ["-p", "chat_harness", *(args.paths or ["scenarios"])]
    for mutant in args.mutant:
        argv += ["--mutant", mutant]
    for opt in ("db", "db_url", "db_image", "target", "fixtures_dir"):
        value = getattr(args, opt)
        if value:
            argv += [f"--{opt.replace('_', '-')}", value]
    return int(pytest.main(argv + rest))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-harness",
        description="Conformance and regression tests for LLM chat backends.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run scenarios (extra arguments go to pytest)")
    run.add_argument("paths", nargs="*", help="scenario files or folders (default: scenarios)")
    run.add_argument("--mutant", action="append", default=[], metavar="NAME",
                     help="switch on a deliberate bug in the reference backend (repeatable)")
    run.add_argument("--target", default=None, help="backend under test: reference (default)")
    run.add_argument("--db", default=None, choices=("auto", "embedded", "container", "url"))
    run.add_argument("--db-url", default=None, metavar="URL")
    run.add_argument("--db-image", default=None, metavar="IMAGE")
    run.add_argument("--fixtures-dir", default=None, metavar="DIR")
    cov = sub.add_parser("coverage", help="which scenarios cover which contract clause; "
                         "exits 1 if a clause is uncovered")
    cov.add_argument("paths", nargs="*", help="scenario files or folders (default: scenarios)")
    cov.add_argument("-v", "--verbose", action="store_true", help="name the scenarios")
    sub.add_parser("mutants-list", help="list the reference backend's mutants")
    return parser


def main(argv: list[str] | None = None) -> int:
    # A shell without job control starts background jobs with SIGINT ignored;
    # Ctrl-C / SIGINT must still stop the run cleanly, so take it back.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "run":
            return _run(args, rest)
        if args.command == "coverage":
            from pathlib import Path

            from harness.coverage import coverage, render_coverage

            report = coverage([Path(p) for p in args.paths or ["scenarios"]])
            print(render_coverage(report, verbose=args.verbose))
            return 0 if report.complete else 1
        if args.command == "mutants-list":
            from harness.reference.mutants import MUTANTS

            for name, text in sorted(MUTANTS.items()):
                print(f"{name:28} {text}")
            return 0
    except HarnessError as exc:
        print(f"chat-harness: {exc.render()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
