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

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.measure import ROOT, Context, Row

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
            await self.exchange(i)
            return time.perf_counter() - began
        finally:
            self.engine.step = saved

    async def exchange(self, i: int) -> None:
        """A chat step's two requests: the turn, then the sync of it and its answer."""
        user = self._message(content=f"question number {i}", role="user", originalModel=MODEL)
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
        if answer.status_code != 200 or stored.status_code not in (200, 201):
            raise RuntimeError(f"raw step {i}: {answer.status_code} / {stored.status_code}")


async def _round(run: Any, raw: RawClient) -> tuple[list[float], list[float], float]:
    """Harness step ``i``, then raw step ``i``, for every step; then the built-in checks."""
    await run.begin()
    took, raw_took = [], []
    for index, step in enumerate(run.scenario.steps):
        began = time.perf_counter()
        await run.run_step(index, step)
        took.append(time.perf_counter() - began)
        raw_took.append(await raw.step(index))
    began = time.perf_counter()
    result = await run.check()
    checked = time.perf_counter() - began
    if not result.passed:
        raise RuntimeError(f"the bench scenario failed: {result.failures[:2]}")
    return took, raw_took, checked


def measure(ctx: Context) -> tuple[list[Row], list[str]]:
    """Rounds on one in-process backend and database; round 0 is a warm-up."""
    from harness.config import RunConfig
    from harness.runner.run import ScenarioRun
    from harness.runner.session import Harness
    from harness.scenario.load import load_file

    steps, rounds = ctx.reps(20, 8), ctx.reps(6, 1)
    (scenario,) = load_file(_scenario(ctx.workdir / "step", steps), display="bench-steps.yaml")
    config = RunConfig(db="embedded", fixtures=ROOT / "fixtures")
    harness_s: list[float] = []
    raw_s: list[float] = []
    checks_s: list[float] = []
    per_steps: list[float] = []  # each round: its checks over its steps
    with Harness(config) as harness:
        harness.start()
        assert harness.target is not None
        for n in range(rounds + 1):
            harness.db.reset()
            run = ScenarioRun(scenario, harness.context(scenario))
            bare = RawClient(harness.target.client, harness.target.provider, config.jwt_secret)
            took, raw_took, checked = harness.call(_round(run, bare))
            if n:
                harness_s += took
                raw_s += raw_took
                checks_s.append(checked)
                per_steps.append(checked / sum(took))
    raw = Row(FIG, "bare httpx: POST /api/chat + POST /api/chat/messages (floor)", raw_s,
              unit="ms")
    step = Row(FIG, "harness: one chat step (the same two requests)", harness_s, unit="ms",
               floor=raw.name, target="≤ 1.3×", limit=1.3, on_ratio=True)
    checks = Row(FIG, f"harness: built-in checks after {steps} steps (per scenario)",
                 checks_s, unit="ms", floor=raw.name)
    ratio = Row(FIG, f"built-in checks / the {steps} steps they check (each round)",
                per_steps, unit="×", target="≤ 1.3×", limit=1.3)
    if checks.median is not None and raw.median:
        ratio.gap = (f"the checks take {checks.median * 1000:.0f} ms a scenario, the time of "
                     f"{2 * checks.median / raw.median:.0f} of the backend's requests (a bare "
                     f"chat + sync pair is {raw.median * 1000:.1f} ms): the idempotent check "
                     "sends every accepted sync again, twice, and the checks read the "
                     "sessions back; they are requests to the backend like the steps'")
    return [raw, step, checks, ratio], [
        f"{rounds} rounds of {steps} steps each side, a harness step and a raw one in turn; "
        "in-process backend (ASGI + respx), one database; the checks row is divided by one "
        "raw step"]


__all__ = ["measure"]
