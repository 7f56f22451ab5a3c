"""The pytest plugin: scenario files become test items.

A good citizen in other people's sessions: installed, it is loaded everywhere
(entry point ``chat_harness``, see :mod:`harness.plugin_entry`), but until it
collects a scenario it changes nothing: no reports, no junit.xml, no signal
handler, no option of other tests. Collecting one switches it on
(:func:`_activate`): reports, junit.xml in the reports folder, SIGTERM handled
as Ctrl-C. A fixture of :mod:`harness.fixtures` starting a backend installs the
signal handlers only. The scenario engine, the database and the backend are
imported when a scenario is collected or run, so loading the plugin costs
other test suites nothing. Run state lives in ``config.stash``.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.runner.result import ScenarioResult
    from harness.runner.session import Harness
    from harness.scenario.load import Scenario

_HARNESS = pytest.StashKey["Harness"]()
_SCENARIOS = pytest.StashKey[list["Scenario"]]()
_RESULTS = pytest.StashKey[dict[str, "ScenarioResult"]]()  # by nodeid
_WORKERS = pytest.StashKey[list[str]]()  # xdist controller: JSON each worker sent
_SIGNALLED = pytest.StashKey[list[str]]()  # SIGINT/SIGTERM received, in order
_CLOSING = pytest.StashKey[str]()  # the run's last line, pointing at report.html
_WRITTEN = pytest.StashKey[str]()  # the results.json written
_ACTIVE = pytest.StashKey[bool]()  # a scenario was collected: a chat-harness run
_ARMED = pytest.StashKey[bool]()  # our SIGINT/SIGTERM handler is in place
_GIVEN = pytest.StashKey[list[Any]]()  # the paths given on the command line, resolved
SUFFIXES = (".yaml", ".yml")
# chat_backend, chat_provider, chat_db: light until a test asks for one
pytest_plugins = ["harness.fixtures", "harness.plugin_xdist"]


def pytest_addoption(parser: pytest.Parser) -> None:
    from harness.options import add_pytest_options

    group = parser.getgroup("chat-harness", "chat-harness: LLM chat backend conformance")
    add_pytest_options(group)  # the table of harness/options.py
    parser.addini("chat_harness_scenario_dirs", type="args", default=["scenarios"],
                  help="folder names whose YAML files are scenarios")


def _reports_dir(config: pytest.Config) -> Any:
    from pathlib import Path

    value = config.getoption("reports")
    if value == "":
        return None
    return Path(value) if value else config.rootpath / "reports"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hooks  # custom checks and step kinds (docs/guides/extending.md)

    hooks.add_to(pluginmanager)


def pytest_configure(config: pytest.Config) -> None:
    """Nothing that changes the session: the plugin switches itself on (:func:`_activate`)
    when it collects a scenario."""
    config.stash[_RESULTS] = {}
    config.stash[_SIGNALLED] = []
    if (config.getoption("target_url", None) and getattr(config.option, "numprocesses", None)
            and not hasattr(config, "workerinput")):
        # one running backend calls one provider port: the workers' scripts would mix
        raise pytest.UsageError(
            "--target-url runs one backend against one scripted provider, so it cannot "
            "run with -n (pytest-xdist): the workers would take each other's provider "
            "answers. Run it serially, shard it over backends (--shard I/N, one backend "
            "and --provider-port each), or use --target-cmd, which starts one backend per "
            "worker.")
    if not hasattr(config, "workerinput"):  # the process that writes the reports
        from harness.reporting.ledger import RunLedger

        # passive: it writes reports only for a run that collected scenarios
        config.pluginmanager.register(
            RunLedger(config, signals=config.stash[_SIGNALLED], finish=_finish),
            "chat-harness-ledger")


def _activate(config: pytest.Config) -> None:
    """A scenario was collected: this is a chat-harness run. From now on Ctrl-C and
    SIGTERM stop it cleanly, and junit.xml goes to the reports folder (unless
    ``--junitxml`` says where). Sessions that collect no scenario never get here."""
    if config.stash.get(_ACTIVE, False):
        return
    config.stash[_ACTIVE] = True
    _arm_signals(config)
    reports = _reports_dir(config)
    if (reports is not None and hasattr(config.option, "xmlpath")
            and not getattr(config.option, "xmlpath", None)
            and not hasattr(config, "workerinput")):
        _start_junit(config, str(reports / "junit.xml"))


def _start_junit(config: pytest.Config, path: str) -> None:
    """What pytest's junitxml plugin does at configure time for ``--junitxml PATH``,
    done when the run turns out to be a chat-harness run."""
    from _pytest import junitxml

    config.option.xmlpath = path
    xml = junitxml.LogXML(
        path, config.option.junitprefix, config.getini("junit_suite_name"),
        config.getini("junit_logging"), config.getini("junit_duration_report"),
        config.getini("junit_family"), config.getini("junit_log_passing_tests"))
    config.stash[junitxml.xml_key] = xml  # junitxml's unconfigure unregisters it
    config.pluginmanager.register(xml)
    xml.pytest_sessionstart()  # the session started before anyone knew


def _arm_signals(config: pytest.Config) -> None:
    """SIGTERM (CI cancelling a job) takes the same road as Ctrl-C, so every server,
    database and subprocess the harness started is stopped by the usual clean-up.

    Only once the harness is about to start something (a scenario collected, a fixture
    asked for a backend): other sessions keep their handlers. The signals are also
    noted: a handler's KeyboardInterrupt can land in a weakref callback or a __del__,
    where Python prints it and carries on; the run then stops before the next scenario
    (or fails at the end) all the same."""
    if config.stash.get(_ARMED, False):
        return
    config.stash[_ARMED] = True
    signalled = config.stash[_SIGNALLED]

    def _interrupt(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        signalled.append(name)
        raise KeyboardInterrupt(name)

    for sig, default in ((signal.SIGTERM, (signal.SIG_DFL, None)),
                         (signal.SIGINT, (signal.default_int_handler,))):
        if signal.getsignal(sig) in default:
            with contextlib.suppress(ValueError):  # not the main thread
                previous = signal.signal(sig, _interrupt)
                config.add_cleanup(functools.partial(_restore, sig, previous, _interrupt))


def _restore(sig: int, previous: Any, ours: Any) -> None:
    """Give the session's handler back (pytester runs sessions in the same process)."""
    if signal.getsignal(sig) is ours:
        with contextlib.suppress(ValueError):
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)


def pytest_runtest_setup(item: pytest.Item) -> None:
    signalled = item.config.stash.get(_SIGNALLED, None)
    if signalled:
        raise KeyboardInterrupt(signalled[0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    if isinstance(item, ScenarioItem) and report.failed:
        report.chat_harness_text = True  # travels with the report to xdist's controller
    return report


@pytest.hookimpl(wrapper=True)
def pytest_report_from_serializable(config: pytest.Config, data: dict[str, Any]) -> Any:
    """A worker's report arrives with its failure text as a plain string: give the short
    summary its one line back."""
    report = yield
    if data.get("chat_harness_text") and isinstance(getattr(report, "longrepr", None), str):
        from harness.reporting.terminal import FailureText

        report.longrepr = FailureText(report.longrepr)
    return report


def _is_scenario(config: pytest.Config, path: Any) -> bool:
    if path.suffix.lower() not in SUFFIXES:  # .YAML and .Yml too
        return False
    dirs = set(config.getini("chat_harness_scenario_dirs"))
    # a folder of that name at or below the rootdir or a path given on the
    # command line, or one that holds a given path (`run scenarios/x.yaml`)
    from pathlib import Path

    given = config.stash.get(_GIVEN, None)
    if given is None:  # once: pytest asks for every file of a folder, once per path given
        given = config.stash[_GIVEN] = [Path(a.split("::")[0]).resolve() for a in config.args]
    if Path(path).resolve() in given:
        return True  # a YAML file named on the command line is a scenario wherever it is
    anchors = [config.rootpath, *given]
    return any(
        parent.name in dirs and any(
            parent.is_relative_to(anchor) or anchor.is_relative_to(parent) for anchor in anchors)
        for parent in path.parents)


def _dangling(config: pytest.Config, folder: Any) -> list[Any]:
    return [p for p in sorted(folder.iterdir())
            if p.is_symlink() and not p.exists() and _is_scenario(config, p)]


def pytest_collect_directory(path: Any, parent: pytest.Collector) -> pytest.Collector | None:
    """A folder with a scenario file that links to nothing: pytest would pass it over
    without a word; it becomes a file whose collection says so."""
    try:
        if not (path / "__init__.py").exists() and _dangling(parent.config, path):
            return _LinkedDir.from_parent(parent, path=path)
    except PermissionError:  # a folder we may not read (another user's, in /tmp): pytest's
        pass
    return None


class _LinkedDir(pytest.Dir):  # type: ignore[misc]  # final for typing; adds one thing
    def collect(self) -> Any:
        yield from super().collect()
        for link in _dangling(self.config, self.path):
            yield ScenarioFile.from_parent(self, path=link)


def pytest_collect_file(file_path: Any, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_scenario(parent.config, file_path):
        _activate(parent.config)
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from harness.errors import ScenarioError
        from harness.scenario.load import load_file

        try:
            # as the user can type it again from here (the rerun command uses it)
            from pathlib import Path

            here = Path.cwd()
            shown = (self.path.relative_to(here).as_posix() if self.path.is_relative_to(here)
                     else str(self.path))
            scenarios = load_file(self.path, display=shown)
        except ScenarioError as exc:
            raise self.CollectError(exc.render()) from None
        for scenario in scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.id, scenario=scenario)


def _shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in value.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--shard {value}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return index, count


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("shard", None)
    if shard:
        # round robin over the collected order: shares stay even and every test
        # lands in exactly one shard, whatever N is
        index, count = _shard(shard)
        keep = [item for n, item in enumerate(items) if n % count == index - 1]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_SCENARIOS] = [i.scenario for i in session.items
                                        if isinstance(i, ScenarioItem)]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """How much of the contract the run covered, and where its results are."""
    scenarios: list[Any] = config.stash.get(_SCENARIOS, [])
    if _WORKERS in config.stash:  # pytest-xdist: what the workers sent back
        scenarios, _ = _from_workers(config.stash[_WORKERS])
    if scenarios:
        from harness.coverage import coverage_of, summary_line

        terminalreporter.write_line(summary_line(coverage_of(scenarios)))
    harness = config.stash.get(_HARNESS, None)
    if harness is not None and not harness.has_db:
        terminalreporter.write_line(
            "notice: no database given (--db-url): db steps skipped their scenarios and "
            "the DB-level checks (rows, stored timestamps) did not run")
    _write_notes(terminalreporter, config)
    if _WRITTEN in config.stash:
        terminalreporter.write_line(f"results: {config.stash[_WRITTEN]}")


def _write_notes(terminalreporter: Any, config: pytest.Config) -> None:
    """--strict-fields: the extra fields seen in the run's answers, each once."""
    if not config.getoption("strict_fields", False):
        return
    if _WORKERS in config.stash:
        _, sent = _from_workers(config.stash[_WORKERS])
        notes = [n for r in sent for n in r.get("notes") or []]
    else:
        notes = [n for r in config.stash[_RESULTS].values() for n in r.notes]
    unique = sorted(set(notes))
    terminalreporter.write_line(
        f"notes (--strict-fields): {len(unique)} kind(s) of answer carry fields beyond "
        "those their clause lists (allowed by the contract; not failures)"
        + ("" if unique else ": none"))
    for note in unique:
        terminalreporter.write_line(f"  {note}")


def _finish(config: pytest.Config, ledger: Any, reason: str | None) -> None:
    """At the end of a run that collected scenarios (called by the run's ledger, after
    junit.xml is written): results.json and report.html, and the closing line."""
    from harness.reporting import jsonfile
    from harness.reporting.ledger import write_reports

    if _WORKERS in config.stash:  # pytest-xdist: the records the workers sent back
        _, sent = _from_workers(config.stash[_WORKERS])
        rich = {r["nodeid"]: r for r in sent if "nodeid" in r}
    else:
        rich = {n: jsonfile.record(r, nodeid=n) for n, r in config.stash[_RESULTS].items()}
    harness = config.stash.get(_HARNESS, None)
    target = harness.target.name if harness is not None and harness.target is not None else (
        next((str(r.get("target")) for r in rich.values()), _target_label(config)))
    meta = {"target": harness.config.target if harness else _target_label(config),
            "mutants": _names(config.getoption("mutant")),
            "variants": _names(config.getoption("variant"))}
    closing, written = write_reports(config, ledger, rich, target=target, meta=meta,
                                     reason=reason, reports=_reports_dir(config))
    config.stash[_CLOSING] = closing
    if written is not None:
        config.stash[_WRITTEN] = str(written)


def _names(given: list[str] | None) -> list[str]:
    """``--mutant a,b --mutant c`` as ["a", "b", "c"]."""
    return sorted({n.strip() for item in given or [] for n in item.split(",") if n.strip()})


def pytest_unconfigure(config: pytest.Config) -> None:
    """After pytest's own summary: the run in one line, and where the report is."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if _CLOSING in config.stash and reporter is not None:
        reporter.write_line(config.stash[_CLOSING])


def _target_label(config: pytest.Config) -> str:
    return ("cmd" if config.getoption("target_cmd") else
            "url" if config.getoption("target_url") else "reference")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A signal the last scenario swallowed still fails the run."""
    if session.config.stash.get(_SIGNALLED, None) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.INTERRUPTED


def _from_workers(sent: list[str]) -> tuple[list[Any], list[Any]]:
    """The workers' scenarios (as light stand-ins, for coverage) and result records."""
    import json
    from types import SimpleNamespace

    scenarios: dict[str, Any] = {}
    records: list[Any] = []
    for text in sent:
        data = json.loads(text)
        records += data["records"]
        for sid, display, covers in data["covers"]:
            scenarios.setdefault(sid, SimpleNamespace(
                id=sid, display=display, file=display,
                header=SimpleNamespace(covers=covers)))
    return list(scenarios.values()), records


def harness_of(config: pytest.Config) -> Harness:
    """The session's :class:`~harness.runner.session.Harness`, started on first use (the
    database, the target); stopped when the session ends. Scenarios and the fixtures
    of :mod:`harness.fixtures` share it."""
    if _HARNESS not in config.stash:
        import dataclasses

        from harness.config import RunConfig
        from harness.errors import HarnessError
        from harness.options import PYTEST, config_options
        from harness.runner.session import Harness

        _arm_signals(config)  # from here on there are processes to stop
        try:
            reports = _reports_dir(config)
            shared = getattr(config, "workerinput", {}).get("chat_harness_db_url")
            given = config_options(lambda dest: config.getoption(dest), PYTEST)
            run_config = dataclasses.replace(RunConfig.from_options(**{
                **given, "reports": str(reports) if reports is not None else "",
                **({"db": "url", "db_url": shared} if shared else {})}),
                worker=getattr(config, "workerinput", {}).get("workerid"))
            harness = Harness(run_config)
            config.add_cleanup(harness.close)
            harness.start()
            # what is alive now (modules, the app, the collected scenarios) lives until the
            # end: out of the collector's way, its full passes (pytest runs several at
            # exit) walk only what the run makes
            import gc

            gc.freeze()
        except HarnessError as exc:
            # Nothing can run without the database or the target: stop the session.
            from harness.reporting.startup import stop

            stop(config, exc)
        config.stash[_HARNESS] = harness
    return config.stash[_HARNESS]


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        for clause in scenario.header.covers:
            self.user_properties.append(("covers", clause))

    def runtest(self) -> None:
        from harness.errors import EnvironmentProblem, ScenarioFailed

        harness = harness_of(self.config)
        try:
            result = harness.run(self.scenario)
        except EnvironmentProblem as exc:
            # the backend or the database is gone: every later scenario would fail too
            from harness.reporting.startup import stop

            stop(self.config, exc, "cannot go on")
        self.config.stash[_RESULTS][self.nodeid] = result
        self.user_properties.append(("duration_s", round(result.duration_s, 4)))
        if result.skipped is not None:
            pytest.skip(result.skipped)
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
                     ) -> str | Any:
        from harness.errors import HarnessError, ScenarioFailed
        from harness.reporting.terminal import FailureText, render_failure

        if isinstance(excinfo.value, ScenarioFailed):
            return FailureText(render_failure(excinfo.value.result))
        if isinstance(excinfo.value, HarnessError):
            return FailureText(excinfo.value.render())
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, 0, f"scenario: {self.name}"
