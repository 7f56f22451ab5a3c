"""The command-line options that say what to test and where: one set for
``run``, ``explore`` and ``load`` (``fuzz`` targets a URL or the reference only)."""

from __future__ import annotations

import argparse
from typing import Any

from harness.db import KINDS


def add_target_options(parser: argparse.ArgumentParser, *,
                       target_url_help: str = "test a backend already running at URL",
                       reset_db_help: str = "--target-url: empty the chat tables of --db-url "
                       "between scenarios") -> None:
    parser.add_argument("--mutant", action="append", default=[], metavar="NAME",
                        help="switch on a deliberate bug in the reference backend (repeatable)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME",
                        help="switch on a benign variant of the reference backend: another "
                        "answer the contract allows (repeatable)")
    parser.add_argument("--db", default=None, choices=KINDS)
    parser.add_argument("--db-url", default=None, metavar="URL")
    parser.add_argument("--db-image", default=None, metavar="IMAGE")
    parser.add_argument("--fixtures-dir", default=None, metavar="DIR")
    parser.add_argument("--target-cmd", default=None, metavar="CMD",
                        help="start CMD as the backend (environment of C-RUN-1)")
    parser.add_argument("--target-url", default=None, metavar="URL", help=target_url_help)
    parser.add_argument("--provider-port", default=None, type=int, metavar="N",
                        help="serve the scripted provider on this port")
    parser.add_argument("--no-schema", action="store_true", help="the backend migrates itself")
    parser.add_argument("--reset-db", action="store_true", help=reset_db_help)
    parser.add_argument("--jwt-secret", default=None, metavar="SECRET")
    parser.add_argument("--start-timeout", default=None, type=float, metavar="SECONDS")


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """Those options as keywords of :meth:`harness.config.RunConfig.from_options`."""
    return {
        "mutants": args.mutant, "variants": args.variant, "db": args.db, "db_url": args.db_url,
        "db_image": args.db_image, "fixtures": args.fixtures_dir,
        "target_cmd": args.target_cmd, "target_url": args.target_url,
        "provider_port": args.provider_port, "no_schema": args.no_schema,
        "reset_db": args.reset_db, "jwt_secret": args.jwt_secret,
        "start_timeout_s": args.start_timeout,
    }
