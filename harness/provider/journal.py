"""The control of a provider server on this machine, through two files instead of HTTP.

A black-box step used to make two control round trips to the provider server
(``begin-step``, ``end-step``): on a busy 2-core machine each costs a wake-up of
the other process, about a millisecond, as much as half a request to the backend.
When the harness starts the provider server itself (always on this machine,
:class:`~harness.provider.remote.ProviderServer`), both share a folder with two
append-only files of JSON lines:

- ``commands`` (harness → server): ``reset``, ``begin`` (a step and its planned
  answers), ``plan``, ``step``, ``discard``, ``end`` (the step's untaken answers
  discarded, no step). The server applies the lines it has not applied yet
  before it handles anything (a provider call, a control request), so a command
  written before the backend is asked anything is in force when the backend
  calls the provider: ``write`` returns once the line is in the page cache.
- ``calls`` (server → harness): every call, written when it is handled (before
  its answer is sent), with the number of commands applied by then.

So a step writes one line before and one after, and reads the calls file: no
round trip, nothing blocking. What the harness reads back (a step's calls, the
answers left) is computed from these two files exactly as the server holds it.
A reader only takes whole lines; a line being written is taken on the next read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.provider import wire
from harness.provider.engine import Answer, ProviderCall, ScriptedProvider

COMMANDS = "commands"
CALLS = "calls"


class _Lines:
    """The whole lines appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._rest = b""

    def read(self) -> list[Any]:
        chunks = [self._rest]
        while True:
            data = os.read(self._fd, 1 << 20)
            if not data:
                break
            chunks.append(data)
        data = b"".join(chunks)
        end = data.rfind(b"\n") + 1
        self._rest = data[end:]
        return [json.loads(line) for line in data[:end].splitlines() if line]

    def close(self) -> None:
        os.close(self._fd)


def _append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def create(folder: Path) -> Path:
    """The two (empty) files in ``folder``, before the server starts."""
    for name in (COMMANDS, CALLS):
        (folder / name).write_bytes(b"")
    return folder


class ServerJournal:
    """The server's side: applies the harness's commands, records the calls."""

    def __init__(self, folder: Path) -> None:
        self._commands = _Lines(folder / COMMANDS)
        self._calls = _append(folder / CALLS)
        self.applied = 0

    def apply(self, engine: ScriptedProvider) -> None:
        """Apply the commands written since the last time, in order."""
        for command in self._commands.read():
            apply_command(engine, command)
            self.applied += 1

    def record(self, call: ProviderCall) -> None:
        line = json.dumps({"call": wire.call_to_json(call), "applied": self.applied})
        os.write(self._calls, line.encode() + b"\n")

    def close(self) -> None:
        self._commands.close()
        os.close(self._calls)


def apply_command(engine: ScriptedProvider, command: dict[str, Any]) -> None:
    op = command.get("op")
    if op == "reset":
        engine.reset()
    elif op == "begin":
        engine.begin_step(command["step"],
                          [wire.plan_from_json(p) for p in command.get("plans", [])],
                          [wire.side_from_json(r) for r in command.get("sides") or []])
    elif op == "plan":
        answer, for_model = wire.plan_from_json(command["plan"])
        engine.plan(answer, for_model=for_model)
    elif op == "step":
        engine.step = command["step"]
    elif op == "discard":
        engine.discard_pending()
    elif op == "end":
        engine.discard_pending()
        engine.step = None
    else:
        raise wire.WireError(f"unknown journal command {command!r}")


class ClientJournal:
    """The harness's side: writes commands; reads the calls and works out, from both
    files, what the server holds (its step, its calls, its planned answers)."""

    def __init__(self, folder: Path) -> None:
        self._commands = _append(folder / COMMANDS)
        self._calls = _Lines(folder / CALLS)
        self._written: list[dict[str, Any]] = []  # every command, in order
        self._reset_at = -1  # index of the last reset command
        self._records: list[dict[str, Any]] = []  # call records after that reset
        self.step: int | None = None  # the server's step once it applies what is written
        # pending(): the server's queues, replayed (commands up to _mirror_at, records
        # up to _replayed)
        self._mirror = ScriptedProvider()
        self._mirror_at = 0
        self._replayed = 0

    def write(self, command: dict[str, Any]) -> None:
        os.write(self._commands, json.dumps(command).encode() + b"\n")
        index = len(self._written)
        self._written.append(command)
        op = command["op"]
        if op == "reset":
            self._reset_at = index
            self._records = []
            self._replayed = 0
        if op in ("reset", "end"):
            self.step = None
        elif op in ("begin", "step"):
            self.step = command["step"]

    def _read(self) -> list[dict[str, Any]]:
        for record in self._calls.read():
            if record["applied"] > self._reset_at:  # handled after the last reset
                self._records.append(record)
        return self._records

    def calls(self) -> list[ProviderCall]:
        return [wire.call_from_json(r["call"]) for r in self._read()]

    def calls_in_step(self, step: int) -> list[ProviderCall]:
        return [wire.call_from_json(r["call"]) for r in self._read()
                if r["call"].get("step") == step]

    def pending(self, upto: int | None = None) -> list[tuple[str | None, Answer]]:
        """The planned answers no call has taken, as the server holds them once it has
        applied the first ``upto`` commands (all written so far: None). The commands and
        the calls are replayed, in the server's order, on an engine of our own."""
        upto = len(self._written) if upto is None else upto
        records = self._read()
        while self._replayed < len(records) and records[self._replayed]["applied"] <= upto:
            record = records[self._replayed]
            self._catch_up(record["applied"])
            call = record["call"]
            if (call["method"] == "POST" and call["path"].endswith("/chat/completions")
                    and not call.get("side")):  # a side rule's call takes no planned answer
                body = wire.decode_body(call)
                # the engine's own choice of the queue a call takes from
                self._mirror._take(body.get("model") if isinstance(body, dict) else None)
            self._replayed += 1
        self._catch_up(upto)
        return self._mirror.pending()

    def end(self, step: int) -> tuple[list[ProviderCall], list[tuple[str | None, Answer]]]:
        """End ``step``: its calls and the answers it left, which the server discards."""
        at = len(self._written)
        self.write({"op": "end", "step": step})
        pending = self.pending(upto=at)
        return self.calls_in_step(step), pending

    def _catch_up(self, applied: int) -> None:
        while self._mirror_at < applied:
            apply_command(self._mirror, self._written[self._mirror_at])
            self._mirror_at += 1

    def close(self) -> None:
        os.close(self._commands)
        self._calls.close()


__all__ = ["CALLS", "COMMANDS", "ClientJournal", "ServerJournal", "apply_command", "create"]
