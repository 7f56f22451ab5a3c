"""``http``: send one raw request, e.g. a bug report's exact payload."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

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


KINDS = (StepKind(
    "http", HttpStep, http, title=lambda step: step.http, parallel=True,
    pins=lambda step: "its raw requests name fixed session and message ids"),)
