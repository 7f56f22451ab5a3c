"""``http``: send one raw request, e.g. a bug report's exact payload."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from harness.scenario import template
from harness.scenario.frontend import Chat, Sync
from harness.scenario.model import HttpStep
from harness.scenario.steps.kind import StepKind, capture

if TYPE_CHECKING:
    from harness.scenario.view import StepRun


async def http(run: StepRun, index: int, step: HttpStep) -> None:
    where, key = run.scenario.location(index), f"steps[{index}]"
    method, _, path = step.http.partition(" ")
    path = str(template.render(path.strip(), run.variables, location=where, key=f"{key}.http"))
    body = step.body
    if step.body_file is not None:
        body = run.load_fixture(index, step.body_file)
    body = template.render(body, run.variables, location=where, key=f"{key}.body")
    query = template.render(dict(step.query), run.variables, location=where, key=f"{key}.query")
    headers = template.render(dict(step.headers), run.variables, location=where,
                              key=f"{key}.headers")
    raw = None
    if step.raw_body is not None:
        raw = str(template.render(step.raw_body, run.variables, location=where,
                                  key=f"{key}.raw_body")).encode()
    if step.pad_to is not None:  # whitespace after the JSON: the same body, N bytes long
        raw = raw if raw is not None else json.dumps(body).encode()
        raw += b" " * max(0, step.pad_to - len(raw))
    ex = await run.send(index, step.actor, method, path, body=body, params=query or None,
                        headers=headers, auth=step.auth, purpose="raw", token=step.token,
                        raw=raw)
    route = path.split("?")[0]
    if method == "POST" and route in ("/api/chat", "/api/chat/stream") and isinstance(body, dict):
        data, _ = run.judge_chat(index, step, ex, streaming=route.endswith("/stream"))
        run.client.chats.append(Chat(step=index, actor=step.actor, body=body, data=data,
                                     sent_id=None))
    else:
        run.expect(index, ex, step.expect, default="2xx")
    if method == "POST" and route == "/api/chat/messages" and isinstance(body, dict):
        record = Sync(step=index, actor=step.actor, body=body, status=ex.status)
        run.client.syncs.append(record)
        run.client.last_batch = record
    capture(run, index, step, {"response": ex.response_body, "request": body}, ex)


_ID_KEYS = frozenset({"id", "sessionId", "session_id", "user_message_id",
                      "current_message_id"})


def _ids(value: Any) -> list[Any]:
    """The values under id keys anywhere in a body."""
    if isinstance(value, dict):
        return [v for k, v in value.items() if k in _ID_KEYS] + [
            i for v in value.values() for i in _ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ids(v)]
    return []


def pins(step: HttpStep) -> str | None:
    """Why the step needs an emptied database: it names ids of its own.

    A step that names its ids only through variables (``${fresh.conv}``,
    ``${session_id}``, a capture) pins nothing: each run makes them new. One that
    names no id, or sends a body the harness does not read (a file, raw bytes),
    is taken to pin some.
    """
    from urllib.parse import parse_qsl, urlsplit

    why = "its raw requests name fixed session and message ids"
    if step.body_file is not None or step.raw_body is not None:
        return why
    _, _, path = step.http.partition(" ")
    named = _ids(step.body) + [v for k, v in (*step.query.items(),
                                               *parse_qsl(urlsplit(path.strip()).query))
                               if k in _ID_KEYS]
    if named and all(isinstance(v, str) and "${" in v for v in named):
        return None
    return why


KINDS = (StepKind("http", HttpStep, http, title=lambda step: step.http, parallel=True,
                  pins=pins),)
