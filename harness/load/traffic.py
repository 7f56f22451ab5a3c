"""The load's HTTP side: clients play their scripts against the backend, every request recorded.

:class:`Traffic` sends each client's requests with its own bearer token,
records a :class:`~harness.load.report.Sample` per request of the load phase,
and writes down as a problem every answer the script did not call for: a
status other than the one planned, an answer meant for another client, a
sync the backend refused. The audit reads through the same sender, unrecorded.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from harness.load.report import LoadReport, Sample

if TYPE_CHECKING:
    import httpx

    from harness.load.clients import Client, Turn

SYNC_PATH = "/api/chat/messages"


class Traffic:
    """Runs the clients against one HTTP client, recording every request."""

    def __init__(self, http: httpx.AsyncClient, report: LoadReport, timeout_s: float) -> None:
        self.http = http
        self.report = report
        self.timeout_s = timeout_s
        # ids posted at once by a client and its twin: id -> the client whose turn it is
        self.twin_posts: dict[str, Client] = {}
        self.posted: set[str] = set()  # every id a sync has carried

    async def send(self, client: Client, kind: str, method: str, path: str, *,
                   body: Any = None, params: dict[str, str] | None = None,
                   expected_5xx: bool = False, record: bool = True) -> tuple[int, Any]:
        """One request as ``client``: its status (0: no answer) and its parsed body."""
        import httpx

        headers = {"authorization": f"Bearer {client.token}"}
        started = time.perf_counter()
        status, parsed, error = 0, None, None
        try:
            response = await asyncio.wait_for(
                self.http.request(method, path, json=body, params=params, headers=headers),
                self.timeout_s)
            status = response.status_code
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
        except TimeoutError:
            error = f"no answer within {self.timeout_s:.0f} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if record:
            self.report.samples.append(Sample(kind, status, (time.perf_counter() - started)
                                              * 1000, expected_5xx and status >= 500, error))
        if error is not None:
            self.problem(client, f"{method} {path}: {error}")
        return status, parsed

    def problem(self, client: Client, text: str) -> None:
        self.report.problems.append(f"client {client.index} ({client.client.session_id}): {text}")

    async def conversation(self, client: Client) -> None:
        """The client's whole script, turn by turn; a failed turn retried if the script says."""
        c = client.client
        for t, turn in enumerate(client.turns):
            msg = c.user_message(turn.text, client.model, t)
            if not await self.chat(client, turn, msg, retrying=False) and turn.retry_answers:
                await self.chat(client, turn, msg, retrying=True)

    async def chat(self, client: Client, turn: Turn, msg: dict[str, Any], *,
                   retrying: bool) -> bool:
        """One POST /api/chat and its sync(s); whether the answer came."""
        c = client.client
        body = c.chat_body(msg, client.model, current_id=True)
        failing = not retrying and turn.kind in ("429", "5xx-passed-on")
        want = (429 if turn.kind == "429" else 502) if failing else 200
        status, answer = await self.send(client, "chat", "POST", "/api/chat", body=body,
                                         expected_5xx=failing)
        if status != want:
            self.problem(client, f"POST /api/chat of {msg['id']} answered {status}, "
                         f"expected {want} ({turn.kind}{', retry' if retrying else ''}): "
                         f"{str(answer)[:200]}")
        data = answer.get("data") if isinstance(answer, dict) and status == 200 else None
        if isinstance(data, dict):
            self._check_answer(client, turn, msg, data)
            _, batch = c.on_success(data, 0, clear_error=retrying)
        else:
            batch = [c.on_failure(msg, answer if isinstance(answer, dict) else {})]
        await self.sync(client, turn, {"messages": batch, "sessionId": c.session_id})
        return data is not None

    def _check_answer(self, client: Client, turn: Turn, msg: dict[str, Any],
                      data: dict[str, Any]) -> None:
        """The answer names the message sent and is the one planned for this client."""
        if data.get("request_id") != msg["id"]:
            self.problem(client, f"request_id {data.get('request_id')!r} does not name "
                         f"the message sent, {msg['id']}")
        if data.get("response") != turn.reply:
            self.problem(client, f"got the answer {str(data.get('response'))[:60]!r}, "
                         f"planned for it: {turn.reply[:60]!r}")

    async def sync(self, client: Client, turn: Turn, body: dict[str, Any]) -> None:
        """Store the batch; again right after, or twice at once (by this client, or by
        this client and its twin: duplicate first posts), as the turn says."""
        times = 1 if turn.sync == "once" else 2
        if turn.sync in ("concurrent", "twin"):
            senders = [client, client.twin or client] if turn.sync == "twin" else [client] * 2
            if turn.sync == "twin":  # the ids never posted before: first posts
                self.twin_posts.update({m["id"]: client for m in body["messages"]
                                        if m["id"] not in self.posted})
            results = await asyncio.gather(*(
                self.send(sender, "sync", "POST", SYNC_PATH, body=body) for sender in senders))
        else:
            results = [await self.send(client, "sync", "POST", SYNC_PATH, body=body)
                       for _ in range(times)]
        self.posted.update(m["id"] for m in body["messages"])
        for status, answer in results:
            if not 200 <= status < 300:
                ids = ", ".join(m["id"] for m in body["messages"])
                self.problem(client, f"sync of {ids} ({turn.sync}) answered {status}: "
                             f"{str(answer)[:200]}")
