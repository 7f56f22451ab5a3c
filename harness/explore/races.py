"""The explorer's second client: two actions at once (``parallel:`` steps).

Chat front ends send concurrently all the time: two tabs of one user flush the
same pending message, a tab stores a new turn while another replays an old
sync or renames the chat, two users' clients claim one message id. Each rule of
:class:`RaceRules` fires two such requests as one ``parallel:`` step of raw
``http`` steps with explicit bodies, so the step means the same whatever order
its requests run in, and a shrunk failure is a scenario any ``run`` replays.

What must hold whatever the interleaving is what a correct backend guarantees
for every order: no 5xx, each answer one of the allowed ones (the steps'
``expect``), one row per message id in one session, nothing stored lost, stats
equal to the rows (the built-in checks and :mod:`harness.explore.invariants`),
and for two users claiming one id, exactly one winner
(:func:`harness.explore.invariants.check_claims`).
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from harness.contract.oracle import format_ts
from harness.explore.invariants import Claim
from harness.scenario.model import Expect, HttpStep, ParallelStep

if TYPE_CHECKING:
    from harness.explore.driver import LiveRun
    from harness.scenario.frontend import ChatClient, Sync

SYNC = "POST /api/chat/messages"
BOB_SESSION = "conv_bob_race"  # not the machine's: bob may win it
CLAIM_SESSION = "${session_id}_claim"  # alice's other chat: who wins changes nothing drawn
TEXTS = ("hello from both tabs", "what is amazon bedrock?", "Ça marche? 🚀")
REPLY = "Amazon Bedrock is a managed service."
MODEL = "openai/gpt-4o-mini"
# what two tabs of one user do at once; the last two need a stored conversation
TABS = ("the same batch", "overlapping batches", "different messages", "with a replay",
        "with a rename")


def parallel(*steps: HttpStep) -> ParallelStep:
    """A ``parallel:`` group of raw steps, as the loader builds one.

    The one place that knows the group's form: ``parallel:`` holds the steps
    (``rounds:`` and ``barrier:`` may join it as the language grows).
    """
    return ParallelStep(parallel=[s.http for s in steps], parsed=steps)


def sync(body: dict[str, Any], title: str, *, actor: str = "alice",
         expect: Expect | None = None) -> HttpStep:
    step = HttpStep(title=title, http=SYNC, body=body, expect=expect)
    return step.model_copy(update={"actor": actor}) if actor != "alice" else step


class RaceRules:
    """Rules firing two requests at once; mixed into the conversation machine."""

    live: LiveRun
    races: int

    @property
    def client(self) -> ChatClient:
        raise NotImplementedError

    def accepted(self) -> list[Sync]:
        raise NotImplementedError

    # -- new messages, as a front end makes them -----------------------------------
    def _turn(self, data: st.DataObject, *, answered: bool | None = None) -> list[dict[str, Any]]:
        """A new user message (and maybe its answer, paired): ids never posted before."""
        self.races += 1
        text = data.draw(st.sampled_from(TEXTS), label="text")
        user = {"id": f"msg_race_{self.races}", "role": "user", "content": text,
                "timestamp": format_ts(self.client.clock.next()), "originalModel": MODEL}
        if answered is None:
            answered = data.draw(st.booleans(), label="with its answer")
        if not answered:
            return [user]
        answer = {"id": f"msg_race_{self.races}_answer", "role": "assistant", "content": REPLY,
                  "timestamp": format_ts(self.client.clock.next()), "model": MODEL,
                  "user_message_id": user["id"], "input_tokens": 7, "output_tokens": 9,
                  "total_tokens": 16}
        return [user, answer]

    def _race(self, group: ParallelStep) -> None:
        """Run ``group``; its syncs are then recorded in the group's order, not in the order
        their answers came: what the rules draw next (the last sync, the accepted ones) must
        not depend on the interleaving, or Hypothesis could not replay a sequence."""
        syncs = self.client.syncs
        before = len(syncs)
        self.live.step(group)
        session = self.client.session_id

        def key(actor: str, body: Any) -> str:
            return actor + json.dumps(body, sort_keys=True).replace("${session_id}", session)

        order = [key(s.actor, s.body) for s in group.parsed if s.http == SYNC]
        syncs[before:] = sorted(syncs[before:], key=lambda s: order.index(key(s.actor, s.body))
                                if key(s.actor, s.body) in order else len(order))

    # -- the rules -----------------------------------------------------------------
    @rule(data=st.data())
    def two_at_once(self, data: st.DataObject) -> None:
        """Two tabs of one user, or two users, send at once (one rule: each rule more
        thins out how often the others are drawn)."""
        if data.draw(st.booleans(), label="two users"):
            self._two_users_one_id(data)
        else:
            self._two_tabs(data)

    def _two_tabs(self, data: st.DataObject) -> None:
        """Two tabs of one user store at once (C-MSG-2): the same new batch, two batches
        sharing a new message, two new messages (stats under concurrent batches, C-MSG-7),
        a new batch racing a replay of a stored one, or a rename (C-MSG-6, C-SES-3).
        Before any sync, the first two create the session at once."""
        kinds = TABS if self.accepted() else TABS[:3]
        kind = data.draw(st.sampled_from(kinds), label="two tabs")
        first = self._turn(data)
        one = sync({"sessionId": "${session_id}", "messages": first}, "tab 1: a new batch")
        if kind == "the same batch":
            other = sync({"sessionId": "${session_id}", "messages": copy.deepcopy(first)},
                         "tab 2: the same batch")
        elif kind in ("overlapping batches", "different messages"):
            more = self._turn(data, answered=False)
            batch = [*copy.deepcopy(first), *more] if kind == "overlapping batches" else more
            other = sync({"sessionId": "${session_id}", "messages": batch},
                         f"tab 2: {'the same and one more' if batch != more else 'another'}")
        elif kind == "with a replay":
            old = data.draw(st.sampled_from(self.accepted()), label="replayed sync")
            other = sync(copy.deepcopy(old.body), "tab 2: an earlier sync again")
        else:
            title = data.draw(st.sampled_from(TEXTS), label="title")
            other = HttpStep(title="tab 2: rename the chat", http="POST /api/chat/session",
                             body={"id": "${session_id}", "title": title},
                             expect=Expect(status=200))
        self._race(parallel(one, other))

    def _two_users_one_id(self, data: st.DataObject) -> None:
        """Alice (in another chat of hers) and bob post one new message id into their own
        new sessions at once (C-AUTH-3): one wins (201), the other gets 409, nothing of
        the loser's batch stored (its new session neither, C-MSG-3)."""
        [mine] = self._turn(data, answered=False)
        theirs = {**mine, "content": "bob's now"}
        either = Expect(status=[201, 409])
        self._race(parallel(
            sync({"sessionId": CLAIM_SESSION, "message": mine}, "alice posts a new id",
                 expect=either),
            sync({"sessionId": BOB_SESSION, "message": theirs}, "bob posts the same id",
                 actor="bob", expect=either)))
        alice = CLAIM_SESSION.replace("${session_id}", self.client.session_id)
        self.live.claims.append(Claim(mine["id"], len(self.live.steps) - 1,
                                      (alice, BOB_SESSION)))
