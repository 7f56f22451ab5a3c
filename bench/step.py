"""Per step: what the harness adds to one client step, over the raw HTTP calls it makes.

A ``chat:`` step is two requests: ``POST /api/chat`` (the backend calls the
scripted provider) and ``POST /api/chat/messages`` (the pair synced). The
floor is the same two requests sent with bare httpx by a few lines of code,
with the same growing history, against the same in-process backend (the same
app, connection pool and database) in the same event loop. Rounds alternate:
the harness runs a scenario of ``K`` chat steps, then the bare client sends
``K`` steps' worth, and again, so both see the same noise. The built-in
checks after the steps are per scenario, not per step: their own row.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.measure import ROOT, Context, Row
from bench.pg_ready import SCHEMA

FIG = "step"
MODEL = "bench/model-a"


def _scenario(folder: Path, steps: int) -> Path:
    path = folder / "scenarios" / "bench-steps.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"name: bench-steps\nwhy: one chat step after another\nmodel: {MODEL}\nsteps:\n"
        + "".join(f"  - chat: question number {i}\n    provider: {{reply: answer number {i}}}\n"
                  for i in range(steps)), encoding="utf-8")
    return path


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class RawClient:
    """The floor: the same requests a chat step makes, by hand with httpx."""

    def __init__(self, client: Any, engine: Any, secret: str) -> None:
        import jwt

        self.client, self.engine = client, engine
        token = jwt.encode({"sub": str(uuid.uuid4()), "exp": int(time.time()) + 3600}, secret,
                           algorithm="HS256")
        self.headers = {"authorization": f"Bearer {token}"}
        self.now = datetime(2025, 8, 12, 14, 0, tzinfo=UTC)
        self.session = f"conv_{int(self.now.timestamp() * 1000)}_{uuid.uuid4().hex[:9]}"
        self.history: list[dict[str, Any]] = []

    def _message(self, **fields: Any) -> dict[str, Any]:
        self.now += timedelta(milliseconds=1500)
        return {"id": f"msg_{int(self.now.timestamp() * 1000)}_{uuid.uuid4().hex[:9]}",
                "timestamp": _ts(self.now), **fields}

    async def step(self, i: int) -> float:
        from harness.provider import Reply

        # calls of no harness step: the harness's checks never see them
        saved, self.engine.step = self.engine.step, None
        try:
            began = time.perf_counter()
            self.engine.plan(Reply(content=f"answer number {i}"))
            user = self._message(content=f"question number {i}", role="user",
                                 originalModel=MODEL)
            self.history.append(user)
            answer = await self.client.post("/api/chat", headers=self.headers, json={
                "message": user["content"], "messages": self.history, "model": MODEL,
                "sessionId": self.session, "current_message_id": user["id"]})
            data = answer.json()["data"]
            assistant = self._message(
                content=data["response"], role="assistant", user_message_id=data["request_id"],
                model=data.get("model"), total_tokens=data.get("usage", {}).get("total_tokens", 0))
            self.history.append(assistant)
            stored = await self.client.post("/api/chat/messages", headers=self.headers, json={
                "messages": [user, assistant], "sessionId": self.session})
            took = time.perf_counter() - began
        finally:
            self.engine.step = saved
        if answer.status_code != 200 or stored.status_code not in (200, 201):
            raise RuntimeError(f"raw step {i}: {answer.status_code} / {stored.status_code}")
        return took


async def _rounds(db: Any, path: Path, rounds: int
                  ) -> tuple[list[float], list[float], list[float]]:
    """Harness step ``i``, then raw step ``i``, alternating; round 0 is a warm-up."""
    from harness.config import DEFAULT_JWT_SECRET
    from harness.runner.run import RunContext, ScenarioRun
    from harness.scenario.load import load_file
    from harness.targets import inprocess

    (scenario,) = load_file(path, display="bench-steps.yaml")
    harness_s: list[float] = []
    raw_s: list[float] = []
    checks_s: list[float] = []
    async with inprocess.reference(db, jwt_secret=DEFAULT_JWT_SECRET, mutants=frozenset(),
                                   provider_timeout_ms=1000) as target:
        for n in range(rounds + 1):
            db.reset()
            ctx = RunContext(
                client=target.client, provider=target.provider, db=db,
                jwt_secret=DEFAULT_JWT_SECRET, target=target.name,
                provider_timeout_ms=target.provider_timeout_ms,
                fixtures_dir=ROOT / "fixtures", provider_api_key=target.provider_api_key,
                salt=f"round-{n}/")
            run = ScenarioRun(scenario, ctx)
            raw = RawClient(target.client, target.provider, DEFAULT_JWT_SECRET)
            await run.begin()
            took, raw_took = [], []
            for index, step in enumerate(scenario.steps):
                began = time.perf_counter()
                await run.run_step(index, step)
                took.append(time.perf_counter() - began)
                raw_took.append(await raw.step(index))
            began = time.perf_counter()
            result = await run.check()
            checked = time.perf_counter() - began
            if not result.passed:
                raise RuntimeError(f"the bench scenario failed: {result.failures[:2]}")
            if n:
                harness_s += took
                raw_s += raw_took
                checks_s.append(checked)
    return harness_s, raw_s, checks_s


def measure(ctx: Context) -> tuple[list[Row], list[str]]:
    from harness.db import provision

    steps, rounds = ctx.reps(20, 8), ctx.reps(6, 1)
    path = _scenario(ctx.workdir / "step", steps)
    db = provision("embedded", schema=SCHEMA)
    try:
        db.apply_schema(SCHEMA)
        harness_s, raw_s, checks_s = asyncio.run(_rounds(db, path, rounds))
    finally:
        db.close()
    raw = Row(FIG, "bare httpx: POST /api/chat + POST /api/chat/messages (floor)", raw_s,
              unit="ms")
    step = Row(FIG, "harness: one chat step (the same two requests)", harness_s, unit="ms",
               floor=raw.name, target="≤ 1.3×", limit=1.3, on_ratio=True)
    checks = Row(FIG, f"harness: built-in checks after {steps} steps (per scenario)",
                 checks_s, unit="ms", floor=raw.name)
    return [raw, step, checks], [
        f"{rounds} rounds of {steps} steps each side, a harness step and a raw one in turn; "
        "in-process backend (ASGI + respx), one database; the checks row is divided by one "
        "raw step"]


__all__ = ["measure"]
