"""The scripted provider in another process, driven as if it were in this one.

:class:`RemoteProvider` has the interface the runner and the checks use on a
:class:`~harness.provider.engine.ScriptedProvider` (``reset``, ``step``,
``plan``, ``calls``, ``calls_in_step``, ``pending``, ``discard_pending``) and
returns the very same dataclasses, so they cannot tell the difference.

:class:`ProviderServer` starts ``python -m harness.provider`` as a
:class:`~harness.processes.Child` (its own session: a Ctrl-C in the terminal
reaches the harness, which then stops the provider in order; it dies with a
harness killed outright) and always stops it again, whatever ends the block.
Its folder (port file, log) is named after the harness's pid: a harness killed
outright leaves it, and the next provider server removes it
(:func:`harness.folders.owned_folder`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

import harness
from harness.errors import InternalError, TargetError
from harness.provider import wire
from harness.provider.engine import Answer, Plan, ProviderCall, Side, StepEnd
from harness.provider.journal import ClientJournal
from harness.provider.wire import CONTROL_PREFIX, PROVIDER_PREFIX

if TYPE_CHECKING:
    from harness.processes import Child


class ProviderControlClient:
    """The control client of a ScriptedProvider served over HTTP: scripts it through the
    control API at ``control_url`` (``.../_chat-harness``), or, given the server's
    ``journal`` folder (a server on this machine), through two files with no round trip
    at all (:mod:`harness.provider.journal`; the control API still answers)."""

    def __init__(self, control_url: str, *, timeout: float = 10.0,
                 journal: Path | None = None, alive: Callable[[], bool] | None = None
                 ) -> None:
        self.control_url = control_url.rstrip("/")
        # trust_env=False: an HTTP(S)_PROXY from the environment must not see local calls
        self._http = httpx.Client(base_url=self.control_url, timeout=timeout, trust_env=False)
        self._journal = ClientJournal(journal) if journal is not None else None
        # through the journal no answer tells that the server is gone: its process does
        self._alive = alive

    def _journal_to(self, what: str) -> ClientJournal | None:
        """The journal, if this client uses one, after making sure the server still runs
        (as a failed round trip would tell over HTTP)."""
        if self._journal is not None and self._alive is not None and not self._alive():
            raise TargetError(
                f"the scripted provider at {self.control_url} is gone (its process ended) "
                f"before {what}",
                hint="did the provider process stop? (ProviderServer keeps its log)")
        return self._journal

    # -- plumbing ----------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise TargetError(
                f"the scripted provider at {self.control_url} did not answer "
                f"{method} {path}: {type(exc).__name__}: {exc}",
                hint="did the provider process stop? (ProviderServer keeps its log)",
            ) from None
        if response.status_code != 200:
            raise InternalError(
                f"the scripted provider refused {method} {path}: "
                f"{response.status_code} {response.text[:500]}"
            )
        return response.json()

    def close(self) -> None:
        self._http.close()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> ProviderControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the engine's interface ---------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The server's ``health`` answer (``status``, ``pid``, ``provider_path``)."""
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def reset(self) -> None:
        journal = self._journal_to("a reset")
        if journal is not None:
            journal.write({"op": "reset"})
            return
        self._call("POST", "/reset")

    @property
    def step(self) -> int | None:
        if self._journal is not None:
            return self._journal.step
        step: int | None = self._call("GET", "/step")["step"]
        return step

    @step.setter
    def step(self, value: int | None) -> None:
        if self._journal is not None:
            if value != self._journal.step:
                self._journal.write({"op": "step", "step": value})
            return
        self._call("PUT", "/step", json={"step": value})

    def plan(self, answer: Answer, *, for_model: str | None = None) -> None:
        """Queue ``answer`` for the next call (for ``for_model`` only, if given)."""
        if self._journal is not None:
            self._journal.write({"op": "plan", "plan": wire.plan_to_json(answer, for_model)})
            return
        self._call("POST", "/plan",
                   json={"answer": wire.answer_to_json(answer), "for_model": for_model})

    @property
    def calls(self) -> list[ProviderCall]:
        """Every recorded call (a fresh copy each time: the server holds the truth)."""
        if self._journal is not None:
            return self._journal.calls()
        return [wire.call_from_json(c) for c in self._call("GET", "/calls")["calls"]]

    def calls_in_step(self, step: int) -> list[ProviderCall]:
        if self._journal is not None:
            return self._journal.calls_in_step(step)
        data = self._call("GET", "/calls", params={"step": step})
        return [wire.call_from_json(c) for c in data["calls"]]

    def pending(self) -> list[tuple[str | None, Answer]]:
        """Planned answers no call has taken yet."""
        if self._journal is not None:
            return self._journal.pending()
        return wire.pending_from_json(self._call("GET", "/pending")["pending"])

    def discard_pending(self) -> None:
        if self._journal is not None:
            self._journal.write({"op": "discard"})
            return
        self._call("POST", "/discard-pending")

    # -- a step (the runner's path: see ScriptedProvider): one line written before and
    # one after through the journal; over HTTP, a round trip each ----------------------
    def begin_step(self, step: int, plans: Sequence[Plan] = (),
                   sides: Sequence[Side] = ()) -> None:
        payload: dict[str, Any] = {"step": step,
                                   "plans": [wire.plan_to_json(a, m) for a, m in plans]}
        if sides:
            payload["sides"] = [wire.side_to_json(r) for r in sides]
        journal = self._journal_to(f"step {step}")
        if journal is not None:
            journal.write({"op": "begin", **payload})
            return
        self._call("POST", "/begin-step", json=payload)

    def end_step(self, step: int) -> StepEnd:
        journal = self._journal_to(f"the end of step {step}")
        if journal is not None:
            return StepEnd(*journal.end(step))
        data = self._call("POST", "/end-step", json={"step": step})
        return StepEnd([wire.call_from_json(c) for c in data["calls"]],
                       wire.pending_from_json(data["pending"]))


FOLDER_PREFIX = "chat-harness-provider-"  # in TMPDIR, then the harness's pid


class ProviderServer:
    """``with ProviderServer() as ps:`` a provider process at ``ps.base_url``.

    ``port=0`` picks a free port (the server reports the bound one through a
    port file); a fixed ``port`` serves ``--provider-port``. Start-up is polled
    against a deadline; a process that exits early raises
    :class:`~harness.errors.TargetError` with the end of its log. On exit
    (normal, exception or KeyboardInterrupt) it gets SIGTERM, then SIGKILL
    for its whole process group after ``stop_timeout``, and its temporary
    directory (port file, log) is removed.
    """

    def __init__(
        self,
        port: int | None = 0,
        *,
        host: str = "127.0.0.1",
        start_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        python: str = sys.executable,
    ) -> None:
        self.host = host
        self.requested_port = port or 0  # None or 0: any free port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.python = python
        self.port = 0
        self.startup_s = 0.0  # how long the start took (reported by the harness's own tests)
        self._child: Child | None = None
        self._dir: Path | None = None
        self._provider: RemoteProvider | None = None

    # -- what a caller uses --------------------------------------------------------
    @property
    def base_url(self) -> str:
        """What a backend uses as ``OPENROUTER_BASE_URL``."""
        return f"{self._origin()}{PROVIDER_PREFIX}"

    @property
    def control_url(self) -> str:
        return f"{self._origin()}{CONTROL_PREFIX}"

    @property
    def provider(self) -> RemoteProvider:
        if self._provider is None:
            raise RuntimeError("the provider server is not running (use it as a context manager)")
        return self._provider

    @property
    def pid(self) -> int:
        if self._child is None:
            raise RuntimeError("the provider server was never started")
        return self._child.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once stopped (0: it stopped cleanly on SIGTERM), else None."""
        return self._child.proc.poll() if self._child is not None else None

    @property
    def log_path(self) -> Path | None:
        """The server's log (stdout and stderr); gone once the context has exited."""
        return self._dir / "provider.log" if self._dir is not None else None

    def log_tail(self, lines: int = 20) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        text = path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- life cycle -------------------------------------------------------------------
    def __enter__(self) -> ProviderServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def command(self, port_file: Path) -> Sequence[str]:
        return [self.python, "-m", "harness.provider", "--host", self.host,
                "--port", str(self.requested_port), "--port-file", str(port_file),
                "--journal", str(port_file.parent)]

    def start(self) -> None:
        from harness.folders import owned_folder
        from harness.processes import Child
        from harness.provider import journal

        started = time.monotonic()
        self._dir = owned_folder(FOLDER_PREFIX)
        journal.create(self._dir)
        port_file = self._dir / "port"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # the child imports the same harness as this process, wherever it lives
        root = str(Path(harness.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._child = Child(list(self.command(port_file)), log=self._dir / "provider.log",
                            env=env, what="the scripted provider")

        def ready() -> bool:
            if not self.port and port_file.exists():
                with contextlib.suppress(ValueError):
                    self.port = int(port_file.read_text(encoding="utf-8").strip())
            return bool(self.port) and self._healthy()

        self._child.wait_ready(ready, timeout_s=self.start_timeout,
                               hint="is the port in use? (--provider-port)"
                               if self.requested_port else None)
        self._provider = RemoteProvider(self.control_url, journal=self._dir,
                                        alive=self._child.alive)
        self.startup_s = time.monotonic() - started

    def _healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.control_url}/health", timeout=1.0, trust_env=False)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.json().get("status") == "ok"

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL its group) and remove its files."""
        try:
            if self._provider is not None:
                self._provider.close()
                self._provider = None
            if self._child is not None:
                self._child.stop(self.stop_timeout)
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None


RemoteProvider = ProviderControlClient  # its old name
