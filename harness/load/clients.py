"""One simulated client: its user, its model, its scripted conversation and its provider plan.

Each client is the harness's correct front end
(:class:`harness.scenario.frontend.ChatClient`) holding one conversation of its
own, as one of two clients of its user. Its script is drawn up front from a
seeded random generator: what each turn meets at the provider (a plain
answer, a 5xx the backend retries, a 429, a 5xx passed on as 502 and retried
by the client under the same id) and how its sync is sent (once, twice in a
row, twice at once, or at once by this client and its twin: the other client
of its user, a second tab flushing the same pending turn, so the turn's new
ids are posted twice at once from two connections: duplicate first posts).

The provider answers every client deterministically however the requests
interleave: each client asks for a model of its own, and :meth:`Client.plan`
queues its answers for that model (``for_model``), in the order its
conversation will ask for them.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.provider import Answer, ProviderControl
    from harness.scenario.frontend import ChatClient

USERS_NAMESPACE = uuid.UUID("0b6d1c59-5f37-4a1e-8f55-4c7c4f3b0a11")
START = datetime(2025, 8, 12, 14, 0, tzinfo=UTC)
# what a turn meets at the provider, and how often (weights)
TURN_KINDS = {"ok": 5, "retried-5xx": 2, "429": 2, "5xx-passed-on": 1}
# how a turn's batch is stored, and how often (weights): once; twice one after the
# other; twice at once by this client; at once by this client and its twin
SYNC_KINDS = {"once": 2, "twice": 1, "concurrent": 1, "twin": 1}
BACKEND_RETRIES = 2  # C-CHAT-3: a 5xx other than 503 is retried twice by the backend
# each client its own model, so its own queue of planned provider answers
MODEL = "load/client-{index:03d}"
_WORDS = ("why", "how", "llm", "token", "bedrock", "retry", "sync")


@dataclass
class Turn:
    """One turn of a client's script."""

    kind: str  # a key of TURN_KINDS
    text: str
    answers: list[Answer]  # what the provider answers this turn's first attempt
    retry_answers: list[Answer]  # ... and the client's retry under the same id, if any
    sync: str  # a key of SYNC_KINDS
    reply: str  # the text this client, and no other, must get back


class Client:
    """One conversation: its user, its model (its provider queue) and its script."""

    def __init__(self, index: int, seed: int, turns: int, jwt_secret: str, salt: str,
                 model: str = MODEL) -> None:
        """``salt`` keeps ids apart from an earlier load on a database not emptied since;
        ``model`` is formatted with the client's ``index`` (one name for all: one shared queue).
        """
        import jwt

        from harness.scenario.frontend import ChatClient, Clock

        self.index = index
        rng = random.Random(f"{salt}{seed}/{index}")
        # two clients per user: a user's sessions are written to at the same time
        self.user_id = str(uuid.uuid5(USERS_NAMESPACE, f"{salt}{seed}/user-{index // 2}"))
        self.model = model.format(index=index)
        self.client: ChatClient = ChatClient(
            session_id=f"conv_load{salt}_{seed}_{index:03d}",
            clock=Clock(START + timedelta(minutes=index)), rng=rng)
        self.token = jwt.encode({"sub": self.user_id, "exp": int(time.time()) + 24 * 3600},
                                jwt_secret, algorithm="HS256")
        self.turns: list[Turn] = [_script_turn(rng, index, t) for t in range(turns)]
        self.twin: Client | None = None  # the other client of its user (pair_twins)

    def plan(self, provider: ProviderControl) -> None:
        """Queue every answer of the conversation for this client's model, in order."""
        for turn in self.turns:
            for answer in turn.answers + turn.retry_answers:
                provider.plan(answer, for_model=self.model)


def pair_twins(clients: list[Client]) -> None:
    """Clients ``2k`` and ``2k+1`` share a user: each is the other's twin (a last odd one
    has none, and posts its "twin" syncs twice at once itself)."""
    for cl in clients:
        other = cl.index ^ 1
        cl.twin = clients[other] if other < len(clients) else None


def _script_turn(rng: random.Random, index: int, t: int) -> Turn:
    """Turn ``t`` of client ``index``: its kind, its text, its planned answers, its sync."""
    from harness.provider import Reply

    kinds, weights = zip(*TURN_KINDS.items(), strict=True)
    kind = rng.choices(kinds, weights)[0]
    text = f"client {index} turn {t}: " + " ".join(
        rng.choice(_WORDS) for _ in range(rng.randint(2, 12)))
    reply = Reply(content=f"answer {index}.{t}: " + text[::-1])
    first, retry = _answers(rng, kind, reply)
    sync = rng.choices(tuple(SYNC_KINDS), tuple(SYNC_KINDS.values()))[0]
    return Turn(kind, text, first, retry, sync, reply.content)


def _answers(rng: random.Random, kind: str, reply: Answer) -> tuple[list[Answer], list[Answer]]:
    """What the provider answers a turn of this kind: first attempt, the client's retry."""
    from harness.provider import ErrorAnswer

    if kind == "ok":
        return [reply], []
    if kind == "retried-5xx":
        return [ErrorAnswer(status=rng.choice((500, 502, 504))), reply], []
    if kind == "429":
        return [ErrorAnswer(status=429, retry_after=1)], [reply]
    # every attempt fails: the backend answers 502, the client retries later
    return [ErrorAnswer(status=502)] * (1 + BACKEND_RETRIES), [reply]
