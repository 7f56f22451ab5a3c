"""The failure timeline: one scenario as an SVG sequence diagram.

A failing scenario is easiest to understand as a conversation between four
parties: the client (the harness playing the front end), the backend under
test, the scripted provider and the database. Each step is a band; each HTTP
exchange is a request arrow and an answer arrow; the provider calls a step
caused hang off its chat request; ``db`` steps talk to the database. The step
where a check failed is marked in :data:`FAIL_MARK` red, so the eye (and the
browser test, which looks for that exact colour) finds it at once.

Input is one scenario record of ``results.json`` (plain JSON data), so the
picture can be drawn long after the run, from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.reporting.escape import esc, short

FAIL_MARK = "#e0143c"  # the failing step's marker; used nowhere else in the report
FAIL_BAND = "#fdecef"
LANES = ("client", "backend", "provider", "database")
_GUTTER = 250  # step labels
_LANE_GAP = 210
_X = {name: _GUTTER + 100 + i * _LANE_GAP for i, name in enumerate(LANES)}
_WIDTH = _X["database"] + 110
_ROW = 26  # one arrow
_HEAD = 46  # lane titles
_LABEL_CHARS = 30  # what fits between two lanes at 11 px
_CHAT_ROUTES = ("/api/chat", "/api/chat/stream")


@dataclass
class Arrow:
    source: str
    target: str
    label: str
    detail: str = ""  # the tooltip: the full text
    answer: bool = False  # dashed: an answer rather than a call
    failed: bool = False


@dataclass
class Band:
    """One step (or the checks after the steps) and its arrows."""

    title: str
    subtitle: str
    arrows: list[Arrow] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "pairing C-CHAT-2" labels


def _status_ok(status: int, expected: Any) -> bool:
    if isinstance(expected, list):
        return status in expected
    if isinstance(expected, str) and expected.endswith("xx"):
        return str(status)[:1] == expected[:1]
    return status == expected


def _failed_exchange(ex: dict[str, Any], checks: set[str]) -> bool:
    """Whether this answer is where the step's failure shows."""
    status = int(ex.get("status") or 0)
    if ex.get("error") or status >= 500:
        return True
    if ex.get("expected") is not None and not _status_ok(status, ex["expected"]):
        return True
    if "sync" in checks and ex.get("purpose") == "sync" and not 200 <= status < 300:
        return True
    if "pairing" in checks and ex.get("path") in _CHAT_ROUTES and ex.get("method") == "POST":
        return True
    return "expect" in checks and ex.get("expected") is not None


def _answer_label(ex: dict[str, Any]) -> str:
    if ex.get("error"):
        return f"no answer ({ex['error']})"
    body = ex.get("response_body")
    code = body.get("code") if isinstance(body, dict) else None
    return f"{ex.get('status')} {code}" if isinstance(code, str) else str(ex.get("status"))


def _provider_arrows(calls: list[dict[str, Any]]) -> list[Arrow]:
    out = []
    for n, call in enumerate(calls, 1):
        model = str(call.get("model") or "?")
        messages = call.get("messages") or []
        sent = f"call {n}: {model} with {len(messages)} message(s)"
        out.append(Arrow("backend", "provider", model, sent))
        answer = str(call.get("answer") or "?")
        out.append(Arrow("provider", "backend", answer, f"scripted answer: {answer}",
                         answer=True, failed=answer.startswith("unplanned")))
    return out


def _exchange_arrows(ex: dict[str, Any], checks: set[str], failing: bool) -> list[Arrow]:
    purpose = ex.get("purpose") or ""
    request = f"{ex.get('method')} {ex.get('path')}"
    failed = failing and _failed_exchange(ex, checks)
    label = _answer_label(ex)
    if failed and "pairing" in checks and ex.get("path") in _CHAT_ROUTES:
        label += " · wrong request_id"
    return [
        Arrow("client", "backend", request, f"{purpose} request: {request}"),
        Arrow("backend", "client", label, f"answer: {label} in {ex.get('elapsed_ms', 0):.0f} ms",
              answer=True, failed=failed),
    ]


def bands(record: dict[str, Any]) -> list[Band]:
    """The record as bands of arrows, steps first, then the checks after the steps."""
    by_step: dict[int | None, list[dict[str, Any]]] = {}
    for failure in record.get("failures") or []:
        by_step.setdefault(failure.get("step"), []).append(failure)
    out: list[Band] = []
    for step in record.get("steps") or []:
        index = step.get("index", len(out))
        failures = by_step.get(index, [])
        checks = {str(f.get("check")) for f in failures}
        band = Band(title=f"{index + 1} · {step.get('title', '')}",
                    subtitle=f"{step.get('kind', '')} · line {step.get('line', '?')}",
                    failures=[_failure_label(f) for f in failures])
        calls = list(step.get("provider_calls") or [])
        for ex in step.get("exchanges") or []:
            arrows = _exchange_arrows(ex, checks, bool(failures))
            if calls and ex.get("path") in _CHAT_ROUTES:
                arrows[1:1] = _provider_arrows(calls)
                calls = []
            band.arrows += arrows
        band.arrows += _provider_arrows(calls)  # calls no chat request explains
        if step.get("kind") == "db":
            rows = next((f.get("actual") for f in failures if isinstance(f.get("actual"), list)),
                        None)
            got = f"{len(rows)} row(s)" if rows is not None else "rows"
            sql = str(step.get("title", ""))
            sql = sql[3:] if sql.startswith("db ") else sql
            band.arrows += [Arrow("client", "database", sql, f"query: {sql}"),
                            Arrow("database", "client", got, got, answer=True,
                                  failed="db" in checks)]
        out.append(band)
    after = by_step.get(None, [])
    top = record.get("exchanges") or []
    if after or top:
        band = Band(title="after the steps", subtitle="built-in checks",
                    failures=[_failure_label(f) for f in after])
        checks = {str(f.get("check")) for f in after}
        for ex in top:
            band.arrows += _exchange_arrows(ex, checks, bool(after))
        out.append(band)
    return out


def _failure_label(failure: dict[str, Any]) -> str:
    clause = f" {failure['clause']}" if failure.get("clause") else ""
    return f"✗ {failure.get('check')}{clause}"


def _text(x: float, y: float, value: str, *, cls: str = "", anchor: str = "start",
          limit: int = _LABEL_CHARS) -> str:
    attr = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{attr}>'
            f"{esc(short(value, limit))}</text>")


def _arrow(a: Arrow, y: float) -> str:
    x1, x2 = _X[a.source], _X[a.target]
    colour = FAIL_MARK if a.failed else "#5b6675" if a.answer else "#1f4e8c"
    dash = ' stroke-dasharray="5 4"' if a.answer else ""
    head = x2 - 8 if x2 > x1 else x2 + 8
    parts = [
        f"<g><title>{esc(a.detail or a.label)}</title>",
        f'<line x1="{x1}" y1="{y:.0f}" x2="{head}" y2="{y:.0f}" stroke="{colour}" '
        f'stroke-width="{2.5 if a.failed else 1.5}"{dash}/>',
        f'<path d="M{x2},{y:.0f} L{head},{y - 4:.0f} L{head},{y + 4:.0f} Z" fill="{colour}"/>',
        _text((x1 + x2) / 2, y - 6, a.label, cls="fail" if a.failed else "lbl",
              anchor="middle"),
    ]
    if a.failed:
        mx = min(x1, x2) - 16 if min(x1, x2) == _X["client"] else (x1 + x2) / 2
        my = y if min(x1, x2) == _X["client"] else y + 12
        parts.append(f'<circle cx="{mx:.0f}" cy="{my:.0f}" r="9" fill="{FAIL_MARK}"/>'
                     f'<text x="{mx:.0f}" y="{my + 4:.0f}" text-anchor="middle" '
                     'class="bang">!</text>')
    parts.append("</g>")
    return "".join(parts)


def render(record: dict[str, Any]) -> str:
    """The SVG (inline markup, no external reference) for one scenario record."""
    drawn = bands(record)
    heights = [max(len(b.arrows) * _ROW + 16, 40 + 15 * len(b.failures)) for b in drawn]
    total = _HEAD + sum(heights) + 10
    out = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" '
        f'height="{total}" viewBox="0 0 {_WIDTH} {total}" role="img" '
        f'aria-label="sequence diagram of {esc(str(record.get("scenario_id", "")))}">',
    ]
    for name in LANES:
        x = _X[name]
        out.append(f'<rect x="{x - 55}" y="6" width="110" height="24" rx="4" class="lane"/>')
        out.append(_text(x, 22, name, cls="lanename", anchor="middle"))
        out.append(f'<line x1="{x}" y1="30" x2="{x}" y2="{total - 6}" class="life"/>')
    y = float(_HEAD)
    for band, height in zip(drawn, heights, strict=True):
        failing = bool(band.failures)
        if failing:
            out.append(f'<rect x="0" y="{y:.0f}" width="{_WIDTH}" height="{height}" '
                       f'fill="{FAIL_BAND}"/>')
            out.append(f'<rect x="0" y="{y:.0f}" width="7" height="{height}" '
                       f'fill="{FAIL_MARK}"/>')
        out.append(f'<line x1="0" y1="{y:.0f}" x2="{_WIDTH}" y2="{y:.0f}" class="sep"/>')
        out.append(_text(14, y + 17, band.title, cls="steptitle", limit=34))
        out.append(_text(14, y + 31, band.subtitle, cls="stepsub", limit=38))
        for n, label in enumerate(band.failures):
            out.append(_text(14, y + 47 + 15 * n, label, cls="fail", limit=34))
        if not band.arrows:
            out.append(_text(_X["client"] + 10, y + 24, "no request", cls="stepsub"))
        for n, arrow in enumerate(band.arrows):
            out.append(_arrow(arrow, y + 22 + n * _ROW))
        y += height
    out.append("</svg>")
    return "\n".join(out)


STYLE = """
svg.timeline { font: 11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
svg.timeline .lane { fill: #eef2f7; stroke: #9aa7b8; }
svg.timeline .lanename { font-weight: 600; fill: #233; }
svg.timeline .life { stroke: #c3ccd8; stroke-dasharray: 2 3; }
svg.timeline .sep { stroke: #e3e7ec; }
svg.timeline .lbl { fill: #223; }
svg.timeline .steptitle { font-weight: 600; fill: #111; }
svg.timeline .stepsub { fill: #667; }
svg.timeline .fail { fill: #b0102e; font-weight: 600; }
svg.timeline .bang { fill: #fff; font-weight: 700; }
"""
