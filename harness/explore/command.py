"""``chat-harness explore``: its options and what it prints.

Kept apart from the exploration itself so that building the command line
(every ``chat-harness`` call does) never imports Hypothesis.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.options import EXPLORE, add_options, config_options


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "explore", help="generated conversations (Hypothesis) against the target; a failure "
        "is printed as scenario YAML; exits 1 if the contract broke")
    p.add_argument("--profile", choices=("ci", "deep"), default="ci",
                   help="ci: bounded and deterministic (default); deep: long and random")
    p.add_argument("--mutants", action="store_true",
                   help="explore with each mutant in turn and print which ones are found")
    p.add_argument("--max-examples", type=int, default=None, metavar="N",
                   help="sequences to try (default: the profile's)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="at most N client actions per sequence (default: the profile's)")
    p.add_argument("--save", default=None, metavar="FILE",
                   help="also write the failing scenario to FILE")
    add_options(p, EXPLORE)


def main(args: argparse.Namespace, rest: list[str]) -> int:
    from harness.config import RunConfig
    from harness.errors import ConfigError
    from harness.explore.runner import explore, explore_mutants

    if rest:
        raise ConfigError(f"unknown option(s) {' '.join(rest)}",
                          hint="see chat-harness explore --help")

    config = RunConfig.from_options(**config_options(args, EXPLORE))
    if args.mutants:
        print(f"explore ({args.profile}) with each mutant of the reference backend:")
        results = explore_mutants(config, args.profile, max_examples=args.max_examples,
                                  steps=args.steps)
        found = sorted(n for n, r in results.items() if not r.passed)
        missed = sorted(n for n, r in results.items() if r.passed)
        print(f"found {len(found)}/{len(results)}: {', '.join(found) or 'none'}")
        if missed:
            print(f"not reached: {', '.join(missed)}")
        return 0
    result = explore(config, args.profile, max_examples=args.max_examples, steps=args.steps)
    print(result.summary())
    if result.yaml is None:
        return 0
    print("\n" + result.yaml)
    if args.save:
        Path(args.save).write_text(result.yaml, encoding="utf-8")
        print(f"saved to {args.save}", file=sys.stderr)
    return 1
