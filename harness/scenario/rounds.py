"""The requests of one ``parallel:`` round: who they are, and the barrier that holds them.

Each step of a round runs in a task of its own that holds a :class:`Slot`
(round, request, the exchanges it made) in :data:`SLOT`; the runner's ``send``
reads it, records the exchange there, and makes the request's first send wait
at the round's :class:`Barrier` (``barrier: true``). The barrier opens once
every request of the round is ready to send (or has finished without sending):
first it opens one connection per request (``warm``), then it releases them all
at once, so that the backend sees the requests arrive together on concurrent
connections, not one after another as each connects.

Fresh ids: ``${fresh.NAME}`` is a new id for every round (the same for all the
requests of one round), ``${round}`` the round's number; see :class:`Fresh`.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.result import Exchange

_ALPHABET = string.ascii_lowercase + string.digits
PREFIX = "fresh."


class Barrier:
    """Holds the first send of each of ``size`` requests until all are ready."""

    def __init__(self, size: int, warm: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.size = size
        self.warm = warm
        self.ready = 0
        self.open = asyncio.Event()

    async def arrive(self) -> None:
        """A request is ready to send: wait until every request of the round is."""
        self.ready += 1
        if self.ready >= self.size:
            await self._release()
        else:
            await self.open.wait()

    async def leave(self) -> None:
        """A request ended without (another) send: it no longer holds the others back."""
        self.ready += 1
        if self.ready >= self.size:
            await self._release()

    async def _release(self) -> None:
        if self.open.is_set():
            return
        try:
            if self.warm is not None:
                await self.warm(self.size)
        finally:
            self.open.set()


@dataclass
class Slot:
    """One request of one round (1-based numbers), and the exchanges it made."""

    round: int
    rounds: int
    request: int
    line: int
    barrier: Barrier | None = None
    passed: bool = False  # its first send went through the barrier
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def where(self) -> str:
        line = f" (line {self.line})" if self.line > 0 else ""  # an explored group has none
        return f"round {self.round} of {self.rounds}, request {self.request}{line}"

    async def before_send(self) -> None:
        if self.barrier is not None and not self.passed:
            self.passed = True
            await self.barrier.arrive()

    async def done(self) -> None:
        if self.barrier is not None and not self.passed:
            self.passed = True
            await self.barrier.leave()


SLOT: ContextVar[Slot | None] = ContextVar("chat_harness_slot", default=None)


class Fresh:
    """``${fresh.NAME}``: ``NAME_<ms>_<9 random>``, new at every :meth:`next_round`.

    Values are drawn from the run's seeded generator, in the order names are
    first used within a round; the run salts it where the database is not
    emptied between runs, so ids never collide with an earlier run's.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.round = 1
        self.ms = 0
        self.values: dict[str, str] = {}

    def next_round(self, number: int, ms: int, names: Iterable[str] = ()) -> None:
        """Forget the last round's ids; draw those of ``names`` now, in a fixed order."""
        self.round, self.ms = number, ms
        self.values = {}
        for name in sorted(set(names)):
            self.get(name)

    def get(self, name: str) -> str:
        if name not in self.values:
            tail = "".join(self.rng.choice(_ALPHABET) for _ in range(9))
            self.values[name] = f"{name}_{self.ms}_{tail}"
        return self.values[name]


__all__ = ["PREFIX", "SLOT", "Barrier", "Fresh", "Slot"]
