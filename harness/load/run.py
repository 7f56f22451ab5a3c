"""The whole load: start the database and the target, load, audit, stop; and its command.

:func:`run_load` starts what a run starts (:class:`harness.runner.session.Harness`),
plans every client's provider answers, plays all conversations at once, audits
what was stored, and counts the planned answers nobody asked for.
``chat-harness load`` (:func:`add_parser`, :func:`main`) takes the options of
``run`` that say what to start, and the load's own; it prints the report and
exits 1 on a problem, 3 when the backend refused the load (401s to its tokens,
404s on its routes: nothing was tested).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.load.audit import audit
from harness.load.clients import MODEL, Client, pair_twins
from harness.load.report import LoadReport
from harness.load.traffic import Traffic
from harness.options import LOAD, add_options, config_options

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.db import Database
    from harness.provider import ProviderControl


@dataclass(frozen=True)
class LoadOptions:
    clients: int = 50
    turns: int = 6
    seed: int = 1
    request_timeout_s: float = 30.0
    # each client's model, formatted with its index: one name for all makes the
    # clients share one provider queue (answers reach the wrong client: a test's mutant)
    model: str = MODEL


def run_load(config: RunConfig, options: LoadOptions) -> LoadReport:
    """Start the database and the target as a run does, load it, audit it, stop it all."""
    from harness.runner.session import Harness

    # a database the harness did not create may hold an earlier load's ids
    salt = secrets.token_hex(3) if config.mode == "url" else ""
    clients = [Client(i, options.seed, options.turns, config.jwt_secret, salt, options.model)
               for i in range(options.clients)]
    pair_twins(clients)
    with Harness(config) as harness:
        harness.start()
        if config.mode == "url" and config.reset_db and harness.has_db:
            harness.db.reset()  # --reset-db: the backend's test database starts empty
        target = harness.target
        assert target is not None
        report = LoadReport(options.clients, options.turns, target.name)
        provider = target.provider
        provider.reset()
        for cl in clients:
            cl.plan(provider)
        traffic = Traffic(target.client, report, options.request_timeout_s)
        harness.call(_run(traffic, clients, harness.db if harness.has_db else None))
        _count_planned_left(provider, report)
    report.refused = _refused(report)
    return report


_ROUTES = {"chat": "/api/chat", "sync": "/api/chat/messages"}


def _refused(report: LoadReport) -> tuple[str, str] | None:
    """Whether the backend refused the load (:mod:`harness.refusals`): every client's
    request carries a valid token of its own."""
    from harness.refusals import Tally

    tally = Tally("load")
    for sample in report.samples:
        if sample.status and sample.kind in _ROUTES:
            tally.add("POST", _ROUTES[sample.kind], sample.status)
    return tally.verdict()


async def _run(traffic: Traffic, clients: list[Client], db: Database | None) -> None:
    began = time.perf_counter()
    await asyncio.gather(*(traffic.conversation(cl) for cl in clients))
    traffic.report.wall_s = time.perf_counter() - began
    await audit(traffic, clients, db)


def _count_planned_left(provider: ProviderControl, report: LoadReport) -> None:
    """Every planned answer must have been asked for; then the queues are emptied."""
    left = provider.pending()
    report.planned_left = len(left)
    if left:
        models = Counter(model for model, _ in left)
        report.problems.append(f"{len(left)} planned provider answers were never asked "
                               f"for: {dict(models)}")
    provider.discard_pending()


# -- the command -------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """``chat-harness load``: the options of ``run`` that say what to start, and the load's."""
    load = sub.add_parser("load", help="many concurrent simulated clients against a backend, "
                          "then an audit (lost, duplicated, 5xx, stats); exits 1 on a problem")
    defaults = LoadOptions()
    load.add_argument("--clients", type=int, default=defaults.clients,
                      help=f"concurrent clients ({defaults.clients})")
    load.add_argument("--turns", type=int, default=defaults.turns,
                      help=f"turns per conversation ({defaults.turns})")
    load.add_argument("--seed", type=int, default=defaults.seed,
                      help=f"seed of the clients' scripts ({defaults.seed})")
    add_options(load, LOAD)


def main(args: argparse.Namespace) -> int:
    from harness.config import RunConfig
    from harness.errors import ConfigError

    step_timeout = (args.step_timeout if args.step_timeout is not None
                    else LoadOptions().request_timeout_s)
    if args.clients < 1 or args.turns < 1 or step_timeout <= 0:
        raise ConfigError(
            f"--clients {args.clients} --turns {args.turns} --step-timeout {args.step_timeout}: "
            "clients and turns must be at least 1, the step timeout above 0",
            hint="e.g. chat-harness load --clients 10 --turns 3")
    config = RunConfig.from_options(**config_options(args, LOAD))
    report = run_load(config, LoadOptions(clients=args.clients, turns=args.turns,
                                          seed=args.seed, request_timeout_s=step_timeout))
    print(report.render())
    if report.refused is not None:  # nothing was tested: said as such, exit 3
        from harness.errors import TargetRefused

        raise TargetRefused(report.refused[0], hint=report.refused[1])
    return 0 if report.ok else 1
