"""The conversation state machine: a chat client's actions as rules.

Each rule is something a user of the chat front end (or a second user, or a
flaky network) does; it becomes one step of the scenario language and runs at
once against the backend. After every step the contract must hold
(:meth:`ConversationMachine.the_contract_holds`). Hypothesis picks the rules
and their data, and when the contract breaks it shrinks the sequence to the
fewest, simplest steps that still break it.

Generated data stays inside what a correct client sends, so every failure is
the backend's: texts are never blank, never over 20000 characters and free of
NUL and ``${``; a message goes without ``current_message_id`` only where the
latest message with its text is the one being sent (else the contract itself
names another message, C-CHAT-2); a second user only pokes at a session that
exists. The exceptions are deliberate: a half-valid batch
(:meth:`ConversationMachine.half_valid_batch`) expects its refusal, and what
must hold is that nothing of it was stored; an outdated client's stray request
(:meth:`ConversationMachine.stray_request`) expects a 404 or 405 in the
contract's error envelope.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from harness.checks.conversation import owners
from harness.contract.oracle import format_ts, parse_ts
from harness.explore.driver import DEFAULT_MODEL, ExploreHarness, LiveRun
from harness.explore.invariants import Claim, stored_messages
from harness.explore.races import RaceRules
from harness.result import Failure
from harness.runner.run import ScenarioRun
from harness.scenario.frontend import ChatClient, Sync
from harness.scenario.model import (
    ChatStep,
    Expect,
    HttpStep,
    ParallelStep,
    ProviderAnswer,
    ResyncStep,
    RetryStep,
    Step,
    StreamStep,
)

MODELS = (DEFAULT_MODEL, "google/gemini-2.5-flash-lite", "openai/gpt-4o-mini")
WORDS = ("hello", "what is amazon bedrock?", "List some LLM providers", "thanks!",
         "Ça marche? 🚀", "同じ質問をもう一度")
REPLIES = ("Amazon Bedrock is a managed service.", "Here are some providers:\n- OpenRouter\n"
           "- Amazon Bedrock", "Sure. 🚀", "line one\n\nline three")
STORY = "Once upon a time there was a backend that lost its stream. " * 2  # > 3 chunks
LOREM = "lorem ipsum dolor sit amet, consectetur adipiscing elit. "
MAX_CHARS = 20_000  # C-CHAT-1, after trimming
BOB_SESSION = "conv_bob_explore"
SYNC = "POST /api/chat/messages"
NOT_FOUND = {"code": "not_found"}  # C-AUTH-2: as for a session nobody has
# an outdated or mistyped client: a route that is not there, a method a route does
# not take (C-ERR-2), and the code the envelope must carry
STRAY = {
    "GET /api/chat/message": (404, "not_found"),
    "POST /api/v2/chat": (404, "not_found"),
    "PUT /api/chat/messages": (405, "method_not_allowed"),
    "DELETE /api/chat": (405, "method_not_allowed"),
}
# what makes the second message of a half-valid batch refused (the value it gets)
HURRIED = {"carried over": "", "bad timestamp": "soon", "bad role": "model"}


def _valid(text: str) -> bool:
    return 0 < len(text.strip()) <= MAX_CHARS and "${" not in text


# utf-8: no lone surrogates (category Cs), which st.characters() draws otherwise
FRESH = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                max_size=40)
LONG = st.integers(1000, MAX_CHARS).map(lambda n: (LOREM * (n // len(LOREM) + 1))[:n])


def texts(earlier: list[str]) -> st.SearchStrategy[str]:
    """A message: a common phrase, an earlier text (as is or padded), unicode, or long."""
    options: list[st.SearchStrategy[str]] = [st.sampled_from(WORDS)]
    if earlier:
        options += [st.sampled_from(earlier), st.sampled_from(earlier).map(lambda t: f"  {t} ")]
    options += [FRESH, LONG]
    return st.one_of(options).filter(_valid)


Plan = ProviderAnswer | list[ProviderAnswer]


REPLY = st.sampled_from(REPLIES).map(lambda t: ProviderAnswer(reply=t))


def answers(*, streaming: bool, timeouts: bool) -> st.SearchStrategy[Plan]:
    """What the provider does with the call(s) of one message."""
    retry_after = st.one_of(st.none(), st.integers(1, 300))
    kinds: list[st.SearchStrategy[Plan]] = [
        REPLY,
        retry_after.map(lambda s: ProviderAnswer(status=429, retry_after=s,
                                                 error="Rate limit exceeded")),
        retry_after.map(lambda s: ProviderAnswer(status=503, retry_after=s, error="overloaded")),
        st.sampled_from((500, 502)).map(lambda c: [  # one failure, retried, then a reply
            ProviderAnswer(status=c, error="upstream error"), ProviderAnswer(reply=REPLIES[0])]),
        st.sampled_from((500, 502)).map(  # every attempt fails: 502 after two retries
            lambda c: [ProviderAnswer(status=c, error="upstream error")] * 3),
    ]
    if streaming:  # the connection drops after a few chunks
        kinds.append(st.integers(1, 3).map(lambda k: ProviderAnswer(reply=STORY, cut_after=k)))
    if timeouts:  # each one costs the backend's provider timeout (~1.3 s)
        kinds.append(st.just(ProviderAnswer(reply="too late", timeout=True)))
    return st.one_of(kinds)


class ContractBroken(AssertionError):
    """The backend broke the contract; the failures say how."""


@dataclass
class Found:
    """A failing sequence, as it ran: the steps, the failures, the run."""

    steps: tuple[Step, ...]
    failures: list[Failure]
    run: ScenarioRun
    claims: tuple[Claim, ...] = ()


class ConversationMachine(RaceRules, RuleBasedStateMachine):
    """Bound to a harness session by :func:`bind` (Hypothesis makes one per example).

    Its rules are one client's actions, a second user's pokes, and (from
    :class:`~harness.explore.races.RaceRules`) two actions at once.
    """

    harness: ClassVar[ExploreHarness]
    timeouts: ClassVar[bool] = False
    found: ClassVar[list[Found]] = []

    def __init__(self) -> None:
        super().__init__()
        self.live = LiveRun(self.harness)
        self.model = DEFAULT_MODEL
        self.checked = 0
        self.pokes = 0
        self.hurried = 0
        self.races = 0

    # -- state the rules read ----------------------------------------------------
    @property
    def client(self) -> ChatClient:
        return self.live.run.client

    def earlier_texts(self) -> list[str]:
        return [m["content"] for m in self.client.history if m["role"] == "user"]

    def failed(self) -> list[dict[str, Any]]:
        return [m for m in self.client.history if m["role"] == "user" and m.get("error")]

    def accepted(self) -> list[Sync]:
        return [s for s in self.client.syncs if s.accepted and s.actor == "alice"
                and s.body.get("sessionId") == self.client.session_id]

    def stored(self) -> list[dict[str, Any]]:
        return stored_messages(self.live.run, self.client.session_id)

    def can_resync(self) -> bool:
        syncs = self.client.syncs
        return bool(syncs) and syncs[-1].accepted and syncs[-1].actor == "alice"

    def _model(self, default: Any = DEFAULT_MODEL) -> str | None:
        return None if self.model == default else self.model

    def _answers(self, data: st.DataObject, streaming: bool) -> Plan:
        return data.draw(answers(streaming=streaming, timeouts=self.timeouts), label="provider")

    def _latest_with(self, text: str) -> bool:
        """Would a backend matching by text (no current_message_id) pick a message sent now?"""
        clock = self.client.clock
        when = clock.now + clock.tick
        return all((parse_ts(m["timestamp"]) or when) <= when for m in self.client.history
                   if m["role"] == "user" and m["content"].strip() == text.strip())

    # -- the rules: one client action each ----------------------------------------
    @rule(data=st.data(), streaming=st.booleans())
    def send(self, data: st.DataObject, streaming: bool) -> None:
        """Send a message (through the stream route or not), whatever the provider does."""
        text = data.draw(texts(self.earlier_texts()), label="text")
        self._send(data, text, streaming)

    @precondition(lambda self: self.failed())
    @rule(data=st.data(), streaming=st.booleans())
    def resend(self, data: st.DataObject, streaming: bool) -> None:
        """Send the text of a failed message again, as a new message (the seed's bug)."""
        msg = data.draw(st.sampled_from(self.failed()), label="failed message")
        self._send(data, msg["content"], streaming)

    def _send(self, data: st.DataObject, text: str, streaming: bool) -> None:
        when = data.draw(st.sampled_from(("clock",) * 4 + ("same time", "earlier")),
                         label="timestamp")
        at = None
        if when == "same time" and self.client.history:  # equal timestamps (C-MSG-9)
            at = format_ts(self.client.clock.now)
        elif when == "earlier" and self.client.history:  # another device's clock
            seconds = data.draw(st.integers(1, 3600), label="seconds earlier")
            at = format_ts(self.client.clock.now - timedelta(seconds=seconds))
        without_id = data.draw(st.booleans(), label="without current_message_id")
        current = False if without_id and at is None and self._latest_with(text) else None
        fields: dict[str, Any] = {"provider": self._answers(data, streaming),
                                  "model": self._model(), "at": at,
                                  "current_message_id": current}
        self.live.step(StreamStep(stream=text, **fields) if streaming
                       else ChatStep(chat=text, **fields))

    @rule(model=st.sampled_from(MODELS))
    def switch_model(self, model: str) -> None:
        """Pick another model for what comes next (no request of its own)."""
        self.model = model

    @precondition(lambda self: self.failed())
    @rule(data=st.data(), streaming=st.booleans())
    def retry(self, data: st.DataObject, streaming: bool) -> None:
        """Retry a failed message under its own id (C-MSG-5), maybe with another model."""
        msg = data.draw(st.sampled_from(self.failed()), label="failed message")
        # mostly a success: a retry that works is where a stored row must change
        plan = data.draw(st.one_of(REPLY, REPLY, answers(streaming=streaming,
                                                         timeouts=self.timeouts)),
                         label="provider")
        self.live.step(RetryStep(retry=self.client.step_of[msg["id"]] + 1, streaming=streaming,
                                 model=self._model(msg.get("originalModel")), provider=plan))

    @precondition(lambda self: self.can_resync())
    @rule()
    def resync(self) -> None:
        """Post the last sync again (a retried request, C-MSG-2)."""
        self.live.step(ResyncStep())

    @precondition(lambda self: self.accepted())
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """Post an earlier accepted sync again, late (an offline queue flushing)."""
        sync = data.draw(st.sampled_from(self.accepted()), label="sync")
        self.live.step(self._replay_step(sync))

    def _replay_step(self, sync: Sync) -> HttpStep:
        step = f" of step {sync.step + 1}" if sync.step is not None else ""
        return HttpStep(title=f"the sync{step} again", http=SYNC, body=copy.deepcopy(sync.body))

    @precondition(lambda self: self.can_resync())
    @rule(data=st.data(), copies=st.integers(2, 3))
    def concurrent_syncs(self, data: st.DataObject, copies: int) -> None:
        """The same sync posted several times at once (double clicks, retries; C-MSG-2)."""
        if data.draw(st.booleans(), label="an earlier sync"):
            sync = data.draw(st.sampled_from(self.accepted()), label="sync")
            parsed: tuple[Step, ...] = tuple(self._replay_step(sync) for _ in range(copies))
        else:
            parsed = tuple(ResyncStep() for _ in range(copies))
        self.live.step(ParallelStep(parallel=["resync"] * copies, parsed=parsed))

    @precondition(lambda self: any(m["role"] == "user" for m in self.stored()))
    @rule(data=st.data(), fault=st.sampled_from(tuple(HURRIED)))
    def half_valid_batch(self, data: st.DataObject, fault: str) -> None:
        """A buggy client's sync: a new message, then one that must be refused (C-MSG-3).

        ``carried over``: the user opens a new chat and the client carries the
        last user message over under its id, which the first session holds
        (409; the refusal comes while writing, after the new message). ``bad
        timestamp``, ``bad role``: the next message of this session with a
        sibling that fails validation (400, C-MSG-1). Either way the whole
        batch is refused: the built-in checks see a stored new message in
        this session; :func:`~harness.explore.invariants.check_refused`, a new
        session that a refused batch created.
        """
        self.hurried += 1
        now = format_ts(self.client.clock.now)
        new = {"id": f"msg_hurried_{self.hurried}", "role": "user",
               "content": data.draw(st.sampled_from(WORDS), label="text"), "timestamp": now}
        session = "${session_id}"
        if fault == "carried over":
            session += "_new"
            mine = [m for m in self.stored() if m["role"] == "user"]
            bad = copy.deepcopy(data.draw(st.sampled_from(mine), label="carried message"))
            status, code = 409, "conflict"
        else:
            bad = {"id": f"msg_hurried_{self.hurried}_b", "role": "user", "content": "and this",
                   "timestamp": now}
            bad["timestamp" if fault == "bad timestamp" else "role"] = HURRIED[fault]
            status, code = 400, "bad_request"
        self.live.step(HttpStep(
            title=f"a half-valid batch ({fault}): refused whole", http=SYNC,
            body={"sessionId": session, "messages": [new, bad]},
            expect=Expect(status=status, body={"code": code})))

    @precondition(lambda self: self.accepted())
    @rule(data=st.data())
    def poll(self, data: st.DataObject) -> None:
        """Ask for what came after a stored message (``since_ts``, C-MSG-9)."""
        stored = self.stored()
        since = data.draw(st.sampled_from([m["timestamp"] for m in stored]), label="since_ts")
        cut = parse_ts(since)
        newer = sum(1 for m in stored if cut is not None and
                    (parse_ts(m["timestamp"]) or cut) > cut)
        self.live.step(HttpStep(
            http="GET /api/chat/messages", query={"session_id": "${session_id}",
                                                  "since_ts": since},
            expect=Expect(status=200, body={"count": newer, "up_to_date": newer == 0})))

    @rule(http=st.sampled_from(tuple(STRAY)))
    def stray_request(self, http: str) -> None:
        """An outdated client calls a route that is gone, or with a wrong method (C-ERR-2):
        the answer is the contract's error envelope, like any other error (C-ERR-1)."""
        status, code = STRAY[http]
        self.live.step(HttpStep(title="an outdated client's request", http=http,
                                body={"sessionId": "${session_id}"} if http[0] == "P" else None,
                                expect=Expect(status=status, body={"code": code})))

    @precondition(lambda self: self.accepted())
    @rule(data=st.data())
    def second_user(self, data: st.DataObject) -> None:
        """Bob, another user, reads or writes alice's session: it is not his (C-AUTH-2/3)."""
        pokes: dict[str, Callable[[], HttpStep]] = {
            "read": self._bob_reads, "read session": self._bob_reads_session,
            "rename": self._bob_renames, "delete": self._bob_deletes,
            "store into": self._bob_stores, "take a message id": self._bob_takes_an_id,
            "list": self._bob_lists,
        }
        self.pokes += 1
        self.live.step(pokes[data.draw(st.sampled_from(sorted(pokes)), label="poke")]())

    def _bob(self, http: str, status: int, want: dict[str, Any], **fields: Any) -> HttpStep:
        step = HttpStep(http=http, expect=Expect(status=status, body=want), **fields)
        return step.model_copy(update={"actor": "bob"})

    def _bob_reads(self) -> HttpStep:
        return self._bob("GET /api/chat/messages", 404, NOT_FOUND,
                         query={"session_id": "${session_id}"})

    def _bob_reads_session(self) -> HttpStep:
        return self._bob("GET /api/chat/session", 404, NOT_FOUND, query={"id": "${session_id}"})

    def _bob_renames(self) -> HttpStep:
        return self._bob("POST /api/chat/session", 404, NOT_FOUND,
                         body={"id": "${session_id}", "title": "renamed by bob"})

    def _bob_deletes(self) -> HttpStep:
        return self._bob("DELETE /api/chat/sessions", 404, NOT_FOUND,
                         query={"id": "${session_id}"})

    def _bob_stores(self) -> HttpStep:
        message = {"id": f"msg_bob_{self.pokes}", "role": "user", "content": "bob was here",
                   "timestamp": format_ts(self.client.clock.now)}
        return self._bob(SYNC, 404, NOT_FOUND,
                         body={"sessionId": "${session_id}", "message": message})

    def _bob_takes_an_id(self) -> HttpStep:
        theirs = self.stored()[0]
        message = {"id": theirs["id"], "role": "user", "content": "bob's now",
                   "timestamp": theirs["timestamp"]}
        return self._bob(SYNC, 409, {"code": "conflict"}, body={"sessionId": BOB_SESSION,
                                                      "message": message})

    def _bob_lists(self) -> HttpStep:
        """Only the sessions he won a race for (harness.explore.races)."""
        his = sum(1 for actor in owners(self.live.run).values() if actor == "bob")
        return self._bob("GET /api/chat/sessions", 200, {"count": his})

    # -- the invariant ---------------------------------------------------------------
    @invariant()
    def the_contract_holds(self) -> None:
        """After every step: the built-in checks, the stats (harness.explore.invariants)."""
        steps = self.live.steps
        if len(steps) == self.checked:
            return  # no new step (a model switch): nothing new to check
        self.checked = len(steps)
        self._judge(self.live.check())

    def teardown(self) -> None:
        """At the end of the sequence: replaying every accepted sync changes nothing."""
        if self.live.steps and not self.live.run.result.failures:
            self._judge(self.live.check(final=True))

    def _judge(self, failures: list[Failure]) -> None:
        if failures:
            self.found.append(Found(steps=self.live.steps, failures=failures,
                                    run=self.live.run, claims=tuple(self.live.claims)))
            raise ContractBroken("; ".join(f"[{f.check}] {f.message}" for f in failures[:3]))


def bind(harness: ExploreHarness, *, timeouts: bool) -> type[ConversationMachine]:
    """A machine class on ``harness``: every example it runs is a fresh run there."""
    return type("ConversationMachine", (ConversationMachine,),
                {"harness": harness, "timeouts": timeouts, "found": []})
