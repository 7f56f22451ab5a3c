"""The ``chat-harness`` command.

``chat-harness run [PATHS] [OPTIONS]`` runs scenarios through pytest with only
this plugin loaded (other installed pytest plugins cost start-up time and are
not needed), so a run from the command line and from ``pytest`` are the same.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from harness import options
from harness.config import default_scenarios
from harness.errors import EnvironmentProblem, HarnessError

if TYPE_CHECKING:
    from pathlib import Path

# pytest (and pytest-xdist) options that take a value, which `run` passes on: declared
# here, so that the value of `-n 2` or `-k seed` is not taken for a scenario path
PYTEST_VALUE_OPTIONS = (
    ("-n", "--numprocesses"), ("--dist",), ("--maxprocesses",), ("-k",), ("-m",), ("-p",),
    ("-o", "--override-ini"), ("--maxfail",), ("--tb",), ("-r",), ("--durations",),
    ("--deselect",), ("--ignore",), ("--ignore-glob",), ("-c",), ("--rootdir",),
    ("--basetemp",), ("--junitxml", "--junit-xml"), ("--log-level",),
)


def _dest(flags: tuple[str, ...]) -> str:
    return "pytest_" + flags[-1].lstrip("-").replace("-", "_")


def _pytest_options(args: argparse.Namespace) -> list[str]:
    """The pytest options of PYTEST_VALUE_OPTIONS given to `run`, as pytest takes them."""
    out: list[str] = []
    for flags in PYTEST_VALUE_OPTIONS:
        for value in getattr(args, _dest(flags)) or []:
            out += [flags[-1], value]
    return out


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    import pytest

    os.environ.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    if args.no_cache:  # read by harness.db.pgcache, here and in xdist workers
        os.environ["CHAT_HARNESS_NO_CACHE"] = "1"
    # with autoload off, -p loads our entry point by its name (and only it)
    paths = args.paths or [default_scenarios()]
    argv = ["-p", "chat_harness", *paths]
    if not args.paths and paths != ["scenarios"]:
        # the harness's own scenarios, from elsewhere: reports still go under here
        argv += ["--rootdir", os.getcwd()]
        print(f"chat-harness: no scenarios/ folder here: running the bundled contract suite "
              f"({paths[0]})", flush=True)
    argv += options.to_argv(args, options.forwarded("run"))
    passed_on = _pytest_options(args)
    if any(a.startswith(("-n", "--numprocesses", "--dist", "--maxprocesses"))
           for a in passed_on + rest):
        argv += ["-p", "xdist.plugin"]  # autoload is off: pytest-xdist only when asked for
    code = int(pytest.main(argv + passed_on + rest))
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print(f"chat-harness: no scenario found under {' '.join(paths)} (YAML files in a "
              "folder named scenarios/)", file=sys.stderr)
    return code


def _db(args: argparse.Namespace) -> int:
    import time

    from harness.db.image import DEFAULT_TAG, ensure_image

    tag = args.tag or DEFAULT_TAG
    began = time.monotonic()
    built = ensure_image(tag, force=args.force)
    state = "built" if built else "up to date, not rebuilt"
    print(f"{tag}: {state} ({time.monotonic() - began:.1f} s)")
    return 0


def _mutants(args: argparse.Namespace, rest: list[str]) -> int:
    from pathlib import Path

    from harness import killmatrix

    reports = Path(args.reports or "reports")
    # each run gets its own --reports folder
    extra = [*rest, *options.to_argv(args, options.forwarded("mutants", leave_out=["reports"]))]
    try:
        mutants, variants = killmatrix.split_names(args.only) if args.only else (None, None)
        if args.no_variants:
            variants = []
        elif args.compose_variants:
            from harness.reference.variants import VARIANTS, compositions

            variants = compositions(VARIANTS if variants is None else variants)
        if args.no_mutants:
            mutants = []
        if args.repeat is not None:
            return _killrate(args, mutants, variants, reports, extra)
        matrix = killmatrix.run_matrix(args.paths or [default_scenarios()], mutants=mutants,
                                       variants=variants, jobs=args.jobs, reports=reports,
                                       extra=extra)
    except ValueError as exc:
        print(f"chat-harness: {exc}", file=sys.stderr)
        return 2
    killmatrix.print_table(matrix)
    js, md = killmatrix.write(matrix, reports)
    print(f"matrix: {js} and {md}; each run's log and results under {reports / 'mutants'}/")
    return 0 if matrix.ok else 1


def _killrate(args: argparse.Namespace, mutants: list[str] | None,
              variants: list[str] | None, reports: object, extra: list[str]) -> int:
    """``mutants --repeat N``: each backend N times; how often each mutant is caught."""
    import os
    from pathlib import Path

    from harness import killrate
    from harness.reference.mutants import RACE_MUTANTS
    from harness.reference.variants import VARIANTS

    if args.repeat < 1:
        print("chat-harness: --repeat takes a number of runs, 1 or more", file=sys.stderr)
        return 2
    rates = killrate.run_rates(
        args.paths or [default_scenarios()],
        mutants=list(RACE_MUTANTS) if mutants is None else mutants,
        variants=sorted(VARIANTS) if variants is None else variants,
        repeat=args.repeat, jobs=args.jobs or os.cpu_count() or 1,
        reports=Path(str(reports)), extra=extra)
    print(killrate.render_markdown(rates), end="")
    js, md = killrate.write(rates, Path(str(reports)))
    print(f"kill probability: {js} and {md}; each run under {Path(str(reports)) / 'killrate'}/")
    return 0 if rates.ok else 1


def _list(*, mutants: bool) -> int:
    """The mutants (bugs the suite must catch), then the benign variants (answers it must
    accept); ``variants-list``: the variants alone."""
    from harness.reference.mutants import MUTANTS
    from harness.reference.variants import VARIANTS

    if mutants:
        for name, text in sorted(MUTANTS.items()):
            print(f"{name:28} {text}")
        print("\nbenign variants (--variant NAME; every scenario must pass on them):")
    for name, text in sorted(VARIANTS.items()):
        print(f"{name:28} {text}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    # bench/ is a tool of the checkout, next to harness/ (not part of the package)
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        from bench.runner import run
    except ImportError:
        print("chat-harness: bench runs from a checkout (bench/ next to harness/)",
              file=sys.stderr)
        return 2
    return run(quick=args.quick, only=args.only, reports=args.reports)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.errors import ConfigError
    from harness.reporting import html, jsonfile

    results = Path(args.results)
    if not results.is_file():
        raise ConfigError(f"{results}: no such results file",
                          hint="every 'chat-harness run' writes reports/results.json; "
                          "name another with 'chat-harness report PATH'")
    try:
        doc = jsonfile.read(results)
    except ValueError as exc:  # not JSON, or not our format
        raise ConfigError(f"{results} cannot be read as results: {exc}",
                          hint=f"give a {jsonfile.FORMAT} file written by a run") from None
    out = html.write(doc, Path(args.output) if args.output else results.with_name("report.html"))
    print(html.summary_line(doc, out))
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.importer import import_file

    text = import_file(Path(args.file), name=args.name)
    out = _write_or_print(text, args.output)
    if out is None:
        return 0
    print(f"scenario written to {out}; run it with: chat-harness run {out}")
    return 0


def _write_or_print(text: str, output: str | None) -> Path | None:
    """``text`` to standard output (no ``output``: None), else written to ``output``."""
    from pathlib import Path

    from harness.errors import UsageError

    if not output:
        sys.stdout.write(text)
        return None
    out = Path(output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{out} cannot be written: {exc.strerror}") from None
    return out


def _init(args: argparse.Namespace) -> int:
    """Write a commented profile (chat-harness.yaml) for the user's own backend."""
    from pathlib import Path

    from harness.errors import ConfigError
    from harness.profile import TEMPLATE

    out = Path(args.output)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists already", hint="give --force to write over it, or "
                          "-o another file")
    text = TEMPLATE
    if args.protocol != "ai-sdk":
        text = text.replace("protocol: ai-sdk", f"protocol: {args.protocol}", 1)
    _write_or_print(text, str(out))
    print(f"profile written to {out}: edit start, env, login and messages_sql for your "
          f"backend, then: chat-harness run --profile {out} scenarios/")
    return 0


def _schema(args: argparse.Namespace) -> int:

    from harness.scenario import schema

    text = schema.render()
    out = _write_or_print(text, args.output)
    if out is None:
        return 0
    print(f"JSON Schema of scenario files written to {out}; an editor with a YAML language "
          f"server uses it through the line '# yaml-language-server: $schema={out.resolve()}' "
          "(or a path relative to the scenario file) or the "
          "setting yaml.schemas (and yaml.customTags for the tags: see its description)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-harness",
        description="Conformance and regression tests for LLM chat backends.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # no abbreviations: pytest's own (--co) must reach pytest, not match one of ours
    run = sub.add_parser("run", help="run scenarios (extra arguments go to pytest)",
                         allow_abbrev=False)
    run.add_argument("paths", nargs="*", help="scenario files or folders (default: scenarios)")
    options.add_options(run, "run")
    for flags in PYTEST_VALUE_OPTIONS:  # passed on to pytest as given
        run.add_argument(*flags, dest=_dest(flags), action="append", default=None,
                         help=("run on N workers (pytest-xdist; 'auto': one per CPU)"
                               if flags[0] == "-n" else argparse.SUPPRESS),
                         metavar="N" if flags[0] == "-n" else None)
    ini = sub.add_parser("init", help="write a commented backend profile (chat-harness.yaml): "
                         "protocol, start command, environment names, login, routes, the SQL "
                         "of a chat's messages")
    ini.add_argument("-o", "--output", default="chat-harness.yaml", metavar="FILE",
                     help="default: chat-harness.yaml")
    ini.add_argument("--protocol", choices=("ai-sdk", "contract"), default="ai-sdk",
                     help="the protocol your backend speaks (default: ai-sdk)")
    ini.add_argument("--force", action="store_true", help="write over an existing file")
    cov = sub.add_parser("coverage", help="which scenarios cover which contract clause; "
                         "exits 1 if a clause is uncovered")
    cov.add_argument("paths", nargs="*", help="scenario files or folders (default: scenarios)")
    cov.add_argument("-v", "--verbose", action="store_true", help="name the scenarios")
    sub.add_parser("mutants-list", help="list the reference backend's mutants and benign "
                   "variants")
    sub.add_parser("variants-list", help="list the reference backend's benign variants "
                   "(answers the contract allows)")
    mut = sub.add_parser("mutants", help="the kill matrix: the suite against the correct "
                         "reference, each mutant and each benign variant; exits 1 if a mutant "
                         "survives or a benign variant fails a scenario")
    mut.add_argument("paths", nargs="*", help="scenario files or folders (default: scenarios)")
    mut.add_argument("--only", action="append", default=None, metavar="NAME",
                     help="just these mutants and benign variants (repeatable; default: all); "
                     "variants joined by + are one backend with all of them on "
                     "(gzip+slow-provider)")
    mut.add_argument("--no-variants", action="store_true",
                     help="leave out the benign variants (the kill matrix alone)")
    mut.add_argument("--compose-variants", action="store_true",
                     help="the benign variants composed into as few backends as can hold "
                     "them (two for all of them): each variant still answers in every run, "
                     "in a fraction of the runs (CI)")
    mut.add_argument("--no-mutants", action="store_true",
                     help="leave out the mutants: with --repeat and --no-variants, how many "
                     "of N runs your own --target-cmd backend passes (flaky scenarios)")
    mut.add_argument("--jobs", "-j", type=int, default=None,
                     help="runs at a time (default: the number of CPUs)")
    mut.add_argument("--repeat", type=int, default=None, metavar="N",
                     help="the kill probability: run the suite N times against the reference, "
                     "each mutant (default: the race mutants) and each benign variant; print "
                     "'caught in k of N' per mutant, 'passes in k of N' per the others")
    # known here, not passed along as unknown ones: their values would be taken for paths
    options.add_options(mut, "mutants")
    db = sub.add_parser("db", help="the PostgreSQL of --db container")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    build = db_sub.add_parser("build-image", help="build the local PostgreSQL image "
                              "(no registry needed; skipped when it is current)")
    build.add_argument("--tag", default=None, help="default chat-harness/postgres:16-local")
    build.add_argument("--force", action="store_true", help="rebuild even when current")
    prov = sub.add_parser("provider", help="serve the scripted LLM provider over HTTP "
                          "(OpenRouter paths under /api/v1, control API under /_chat-harness/)")
    prov.add_argument("--port", type=int, default=9100, help="0 picks a free port (default 9100)")
    prov.add_argument("--host", default="127.0.0.1")
    prov.add_argument("--port-file", default=None, metavar="PATH",
                      help="also write the bound port to this file")
    rep = sub.add_parser("report", help="render a run's results.json as one self-contained "
                         "HTML file (every run also writes report.html next to it)")
    rep.add_argument("results", nargs="?", default="reports/results.json", metavar="RESULTS_JSON")
    rep.add_argument("-o", "--output", default=None, metavar="OUT.html",
                     help="default: report.html next to RESULTS_JSON")
    imp = sub.add_parser("import", help="turn a recorded exchange (HAR, or a JSON list of "
                         "request/response pairs) into a scenario YAML")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("-o", "--output", default=None, metavar="OUT.yaml",
                     help="write there (put it under a scenarios/ folder); default: stdout")
    imp.add_argument("--name", default=None, help="the scenario's name (default: from FILE)")
    sch = sub.add_parser("schema", help="print the JSON Schema of scenario files (for an "
                         "editor's YAML language server: completion and checks as you type)")
    sch.add_argument("-o", "--output", default=None, metavar="OUT.json",
                     help="write there; default: stdout")
    ben = sub.add_parser("bench", help="the benchmark table (and reports/bench.json), from a "
                         "checkout: medians, each cost against a floor measured in the same run")
    ben.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ben.add_argument("--only", action="append", default=None, metavar="NAME",
                     help="just this figure (repeatable): pg, restore, isolation, step, "
                     "startup, timeout, autoload, suite, tavern")
    ben.add_argument("--reports", default="reports", metavar="DIR", help="default: reports")
    from harness import load as load_command

    load_command.add_parser(sub)
    from harness.explore import command as explore_command
    from harness.fuzz import command as fuzz_command

    explore_command.add_parser(sub)
    fuzz_command.add_parser(sub)
    return parser


def _dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 <pid>`` prints where every thread of a run that seems stuck is, to
    stderr (and the run goes on): what a bug report about a hang needs."""
    import faulthandler

    global _STACKS
    usr1 = getattr(signal, "SIGUSR1", None)
    if usr1 is None or signal.getsignal(usr1) != signal.SIG_DFL:
        return
    with contextlib.suppress(ValueError, RuntimeError, OSError, AttributeError):  # no stderr
        # a copy of stderr's descriptor: pytest's capture puts its own file on fd 2 for
        # the session (and faulthandler writes to the descriptor, kept open here)
        _STACKS = os.fdopen(os.dup(sys.stderr.fileno()), "w")
        faulthandler.register(usr1, file=_STACKS, all_threads=True)


_STACKS: Any = None  # where SIGUSR1's stacks go, once main() has run


def main(argv: list[str] | None = None) -> int:
    # A shell without job control starts background jobs with SIGINT ignored;
    # Ctrl-C / SIGINT must still stop the run cleanly, so take it back.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _dump_stacks_on_sigusr1()
    try:  # a Ctrl-C while the parser's imports load is an interruption too, not a traceback
        parser = build_parser()
        args, rest = parser.parse_known_args(argv)
        if args.command == "run":
            return _run(args, rest)
        if args.command == "init":
            return _init(args)
        if args.command == "coverage":
            from pathlib import Path

            from harness.coverage import coverage, render_coverage

            report = coverage([Path(p) for p in args.paths or [default_scenarios()]])
            print(render_coverage(report, verbose=args.verbose))
            return 0 if report.complete else 1
        if args.command == "provider":
            from harness.provider.server import serve

            return serve(args.host, args.port, args.port_file)
        if args.command == "db":
            return _db(args)
        if args.command == "mutants":
            return _mutants(args, rest)
        if args.command == "report":
            return _report(args)
        if args.command == "import":
            return _import(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "schema":
            return _schema(args)
        if args.command == "load":
            from harness import load as load_command

            return load_command.main(args)
        if args.command == "explore":
            from harness.explore import command as explore_command

            return explore_command.main(args, rest)
        if args.command == "fuzz":
            from harness.fuzz import command as fuzz_command

            return fuzz_command.main(args, rest)
        if args.command in ("mutants-list", "variants-list"):
            return _list(mutants=args.command == "mutants-list")
    except EnvironmentProblem as exc:  # as for run: the backend or the database
        print(f"chat-harness: {exc.render()}", file=sys.stderr)
        return 3
    except HarnessError as exc:
        print(f"chat-harness: {exc.render()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
