"""The HTML report: one self-contained file a person opens to see why a run failed.

Rendered from the ``results.json`` document (:mod:`harness.reporting.jsonfile`),
not from live objects, so ``chat-harness report`` can redraw any old run and
the report shows exactly what the machine-readable file says. One file with
inline CSS, SVG and a few lines of JS: no network, no assets, any browser.

Layout, for runs of 50+ scenarios: the summary, then the failing scenarios
(each with its rerun command, its problems, the :mod:`timeline` picture and
expected vs actual side by side), then every scenario in one list, failing
first, the passing ones collapsed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.reporting import timeline
from harness.reporting.escape import esc, pretty, short

OPEN_FAILURES = 5  # failing scenarios shown unfolded; later ones start folded
_SHOWN = ("failed", "error")  # outcomes shown in full, with their problems
_DIFF_CHECKS = ("order", "lost", "rows")  # their lists: the client's view vs the backend's


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _mutants(doc: dict[str, Any]) -> str:
    mutants = doc.get("mutants") or []
    return ", ".join(mutants) if mutants else "none"


def _variants(doc: dict[str, Any]) -> str:
    """", variants: a, b" when the run had benign variants on, else nothing."""
    variants = doc.get("variants") or []
    return f", variants: {', '.join(variants)}" if variants else ""


_ERROR_CHECKS = {"scenario_error": "scenario error", "harness_error": "harness error"}


def counts(doc: dict[str, Any]) -> str:
    """``1 failed (1 harness error), 51 passed, 0 skipped, 1 error, 2 not run``: every
    scenario counted once; errors and not-run ones only when there are any."""
    s = doc.get("summary") or {}
    kinds: dict[str, int] = {}
    for record in doc.get("scenarios") or []:
        if record.get("outcome") == "failed":
            for check in record.get("checks_failed") or []:
                if check in _ERROR_CHECKS:
                    kinds[_ERROR_CHECKS[check]] = kinds.get(_ERROR_CHECKS[check], 0) + 1
    why = f" ({', '.join(_plural(n, k) for k, n in sorted(kinds.items()))})" if kinds else ""
    text = (f"{s.get('failed', 0)} failed{why}, {s.get('passed', 0)} passed, "
            f"{s.get('skipped', 0)} skipped")
    if s.get("errors"):
        text += f", {_plural(int(s['errors']), 'error')}"
    if s.get("not_run"):
        text += f", {s['not_run']} not run"
    return text


def stopped(doc: dict[str, Any]) -> str | None:
    """``interrupted by SIGINT after 51 of 53 scenarios``, for a run that stopped early."""
    reason = doc.get("interrupted")
    if not reason:
        return None
    s = doc.get("summary") or {}
    collected = int(doc.get("collected") or 0)
    ran = max(0, collected - int(s.get("not_run") or 0))
    return f"{reason} after {ran} of {collected} scenarios"


def summary_line(doc: dict[str, Any], report: Path | None = None) -> str:
    """The run in one line for the end of the terminal output."""
    halt = stopped(doc)
    text = (f"chat-harness: {halt or ''}{': ' if halt else ''}{counts(doc)} "
            f"against {doc.get('target') or 'reference'} (mutants: {_mutants(doc)}"
            f"{_variants(doc)})")
    if doc.get("source"):
        text += f"; {_plural(int(doc.get('collected') or 0), 'scenario')} from {doc['source']}"
    return f"{text}; report: {report}" if report is not None else text


# -- pieces --------------------------------------------------------------------------


def _cls(outcome: str) -> str:
    return outcome.replace(" ", "-")


def _pill(outcome: str) -> str:
    return f'<span class="pill {esc(_cls(outcome))}">{esc(outcome)}</span>'


def _anchor(n: int) -> str:
    return f"s{n}"


def _banner(doc: dict[str, Any]) -> str:
    """A run that stopped early says so above everything else."""
    halt = stopped(doc)
    if halt is None:
        return ""
    names = doc.get("not_run") or []
    shown = ", ".join(str(n) for n in names[:10]) + (f", … ({len(names) - 10} more)"
                                                      if len(names) > 10 else "")
    return (f'<div class="banner" id="interrupted"><b>{esc(halt[0].upper() + halt[1:])}</b>: '
            f"{_plural(len(names), 'scenario')} not run"
            f"{': ' + esc(shown) if names else ''}. The counts below are not a full run's."
            "</div>")


def _header(doc: dict[str, Any], records: list[dict[str, Any]]) -> str:
    s = doc.get("summary") or {}
    broken = sorted({c for r in records for c in r.get("clauses_broken") or []})
    kinds = [("failed", "failed", "failed"), ("passed", "passed", "passed"),
             ("skipped", "skipped", "skipped")]
    kinds += [(key, label, cls) for key, label, cls in (("errors", "errors", "failed"),
                                                        ("not_run", "not run", "failed"))
              if s.get(key)]
    cards = "".join(
        f'<div class="card {cls}" data-count="{esc(key)}"><b>{int(s.get(key, 0) or 0)}</b>'
        f"{label}</div>" for key, label, cls in [*kinds, ("scenarios", "scenarios", "all")])
    clauses = (f'<p class="meta">contract clauses broken: <b>{esc(", ".join(broken))}</b></p>'
               if broken else "")
    source = (f' · {esc(_plural(int(doc.get("collected") or 0), "scenario"))} from '
              f'<b>{esc(doc["source"])}</b>' if doc.get("source") else "")
    return (
        f"<header><h1>chat-harness report</h1>{_banner(doc)}"
        f'<p class="meta">target <b>{esc(doc.get("target") or "reference")}</b> · mutants: '
        f"<b>{esc(_mutants(doc))}</b>{esc(_variants(doc))}{source}"
        f" · {float(s.get('duration_s') or 0):.2f} s in scenarios"
        f" · format {esc(doc.get('format', '?'))}</p>"
        f'<div class="cards">{cards}</div>{clauses}</header>'
    )


def _rerun(record: dict[str, Any]) -> str:
    command = record.get("reproduce") or ""
    if not command:
        return ""
    return ('<div class="rerun"><span>rerun just this scenario:</span>'
            f"<code>{esc(command)}</code>"
            '<button type="button" class="copy">copy</button></div>')


def _where(record: dict[str, Any], step: int | None) -> str:
    if step is None:
        return "after the steps"
    steps = record.get("steps") or []
    line = steps[step].get("line") if 0 <= step < len(steps) else None
    return f"step {step + 1}" + (f" (line {line})" if line else "")


def _problems(record: dict[str, Any]) -> str:
    items = []
    for f in record.get("failures") or []:
        clause = f" {f['clause']}" if f.get("clause") else ""
        where = _where(record, f.get("step")) if record.get("steps") else ""  # none ran
        items.append(f'<li><span class="check">{esc(f.get("check"))}{esc(clause)}</span> '
                     f'<span class="where">{esc(where)}</span> '
                     f"{esc(f.get('message', ''))}</li>")
    return f'<ol class="problems">{"".join(items)}</ol>'


def _key(item: Any) -> str:
    if isinstance(item, dict) and "id" in item:
        return str(item["id"])
    if isinstance(item, str):
        return item
    return pretty(item)


def _column(title: str, items: list[Any], other: list[Any], absent: str) -> str:
    keys = [_key(i) for i in other]
    rows = []
    for n, item in enumerate(items):
        k = _key(item)
        cls = absent if k not in keys else "moved" if n >= len(keys) or keys[n] != k else ""
        text = item if isinstance(item, str) else pretty(item, 800)
        rows.append(f'<li class="{cls}">{esc(text)}</li>')
    return (f'<div class="col"><h5>{esc(title)} ({len(items)})</h5>'
            f'<ol class="items">{"".join(rows)}</ol></div>')


def _side_by_side(record: dict[str, Any], f: dict[str, Any]) -> str:
    expected, actual = f.get("expected"), f.get("actual")
    if expected is None and actual is None:
        return ""
    check = str(f.get("check"))
    left, right = ("as the client holds it", "as the backend returns it") \
        if check in _DIFF_CHECKS else ("expected", "actual")
    head = (f'<h4><span class="check">{esc(check)} {esc(f.get("clause") or "")}</span> '
            f"{esc(_where(record, f.get('step')))}</h4>")
    if isinstance(expected, list) and isinstance(actual, list):
        body = (_column(left, expected, actual, "missing")
                + _column(right, actual, expected, "extra"))
    else:
        body = (f'<div class="col"><h5>{esc(left)}</h5><pre>{esc(pretty(expected, 3000))}</pre>'
                f'</div><div class="col"><h5>{esc(right)}</h5>'
                f"<pre>{esc(pretty(actual, 3000))}</pre></div>")
    return f'<div class="diff">{head}<div class="cols">{body}</div></div>'


def _exchange(ex: dict[str, Any]) -> str:
    request = f"{ex.get('method')} {ex.get('path')}"
    answer = f"no answer: {ex['error']}" if ex.get("error") else f"{ex.get('status')}"
    return (
        '<div class="ex"><div class="col">'
        f"<h5>{esc(request)} <small>{esc(ex.get('purpose'))} as {esc(ex.get('actor'))}"
        f"</small></h5><pre>{esc(pretty(ex.get('request_body')))}</pre></div>"
        f'<div class="col"><h5>{esc(answer)} <small>{float(ex.get("elapsed_ms") or 0):.0f} ms'
        f"</small></h5><pre>{esc(pretty(ex.get('response_body')))}</pre></div></div>"
    )


def _steps(record: dict[str, Any]) -> str:
    failing = {f.get("step") for f in record.get("failures") or []}
    parts = []
    for step in record.get("steps") or []:
        index = step.get("index", 0)
        mark = ' class="failing"' if index in failing else ""
        calls = "".join(
            f'<div class="call"><h5>provider call: {esc(c.get("model"))} → '
            f'{esc(c.get("answer"))}</h5><pre>{esc(pretty(c.get("messages")))}</pre></div>'
            for c in step.get("provider_calls") or [])
        exchanges = "".join(_exchange(e) for e in step.get("exchanges") or [])
        parts.append(f"<details{mark}><summary>step {index + 1} · {esc(step.get('kind'))} · "
                     f"{esc(short(step.get('title', ''), 90))}</summary>{exchanges}{calls}"
                     "</details>")
    checks = "".join(_exchange(e) for e in record.get("exchanges") or [])
    if not parts and not checks:
        return ""
    if checks:
        parts.append(f"<details><summary>the checks' own requests</summary>{checks}</details>")
    return (f'<details class="steps"><summary>steps, requests and answers ({len(parts)})'
            f"</summary>{''.join(parts)}</details>")


def _backend_log(record: dict[str, Any]) -> str:
    log = record.get("backend_log") or {}
    tail = log.get("tail") or []
    if not tail:
        return ""
    where = f"all of it: {log['path']}" if log.get("path") else "not kept"
    return (f'<h3>the backend\'s log while it ran, its last {len(tail)} lines '
            f"<small>({esc(where)})</small></h3>"
            f'<pre class="log">{esc(chr(10).join(str(t) for t in tail))}</pre>')


def _failing(record: dict[str, Any], n: int, open_: bool) -> str:
    outcome = str(record.get("outcome") or "failed")
    checks = ", ".join(record.get("checks_failed") or [])
    clauses = ", ".join(record.get("clauses_broken") or [])
    diffs = "".join(_side_by_side(record, f) for f in record.get("failures") or [])
    picture = (f'<h3>timeline</h3><div class="tl">{timeline.render(record)}</div>'
               if record.get("steps") or record.get("exchanges") else "")
    return (
        f'<details class="scenario {esc(_cls(outcome))}" id="{_anchor(n)}"'
        f'{" open" if open_ else ""}>'
        f"<summary>{_pill(outcome)} <b>{esc(record.get('scenario_id'))}</b> "
        f'<span class="dim">{esc(record.get("file"))} · {esc(checks)}'
        f"{' · ' + esc(clauses) if clauses else ''}</span></summary>"
        f"{_rerun(record)}{_problems(record)}{picture}"
        f"{'<h3>expected vs actual</h3>' + diffs if diffs else ''}{_backend_log(record)}"
        f"{_steps(record)}</details>"
    )


def _row(record: dict[str, Any], n: int) -> str:
    outcome = str(record.get("outcome"))
    name = esc(record.get("scenario_id"))
    link = f'<a href="#{_anchor(n)}">{name}</a>' if outcome in _SHOWN else name
    note = (record.get("not_run") or record.get("skipped")
            or ", ".join(record.get("checks_failed") or []))
    return (f'<tr class="{esc(_cls(outcome))}"><td>{_pill(outcome)}</td><td>{link}</td>'
            f'<td class="dim">{esc(record.get("file"))}</td>'
            f'<td class="num">{float(record.get("duration_s") or 0):.3f} s</td>'
            f"<td>{esc(note)}</td></tr>")


def _table(rows: list[str]) -> str:
    return ('<table class="list"><thead><tr><th></th><th>scenario</th><th>file</th>'
            f'<th>time</th><th>why</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _all(records: list[tuple[int, dict[str, Any]]]) -> str:
    shown = [_row(r, n) for n, r in records if r.get("outcome") != "passed"]
    passed = [_row(r, n) for n, r in records if r.get("outcome") == "passed"]
    out = ['<section id="all"><h2>all scenarios</h2>'
           '<input id="filter" type="search" placeholder="filter by name or file">']
    if shown:
        out.append(_table(shown))
    if passed:
        label = _plural(len(passed), "passing scenario")
        out.append(f'<details class="passed-list"><summary>{label}</summary>'
                   f"{_table(passed)}</details>")
    out.append("</section>")
    return "".join(out)


# -- the page ------------------------------------------------------------------------


def render(doc: dict[str, Any]) -> str:
    """The whole page for one ``results.json`` document."""
    records = list(enumerate(doc.get("scenarios") or []))
    order = {"error": 0, "failed": 1, "not run": 2, "skipped": 3, "passed": 4}
    records.sort(key=lambda item: (order.get(str(item[1].get("outcome")), 5), item[0]))
    failing = [(n, r) for n, r in records if r.get("outcome") in _SHOWN]
    body = [_header(doc, [r for _, r in records])]
    if failing:
        body.append(f'<section id="failures"><h2>{_plural(len(failing), "failing scenario")}'
                    "</h2>")
        body += [_failing(r, n, i < OPEN_FAILURES) for i, (n, r) in enumerate(failing)]
        body.append("</section>")
    elif records and all(r.get("outcome") == "passed" for _, r in records) and not (
            doc.get("interrupted")):
        body.append('<p class="allgood">every scenario passed</p>')
    body.append(_all(records))
    title = f"chat-harness: {short(summary_line(doc)[len('chat-harness: '):], 120)}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}{timeline.STYLE}</style></head>"
            f"<body>{''.join(body)}<script>{_JS}</script></body></html>\n")


def write(doc: dict[str, Any], out: Path) -> Path:
    """Write the page atomically (a browser never opens half of it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(render(doc), encoding="utf-8")
    tmp.replace(out)
    return out


def write_from(results: Path, out: Path | None = None) -> Path:
    """``results.json`` → ``report.html`` (default: next to it)."""
    from harness.reporting import jsonfile

    return write(jsonfile.read(results), out or results.with_name("report.html"))


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def after_run(results: Path) -> str:
    """Write ``report.html`` next to ``results.json``; return the run's closing line.

    Never raises: a reporter's problem must not turn a run's verdict into a crash,
    so it becomes the closing line instead.
    """
    from harness.reporting import jsonfile

    try:
        doc = jsonfile.read(results)
        return summary_line(doc, Path(_shown(write(doc, results.with_name("report.html")))))
    except Exception as exc:
        return f"chat-harness: report.html not written ({type(exc).__name__}: {exc})"


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
  margin: 0 auto; padding: 16px 24px 60px; max-width: 1240px; background: #fff; }
h1 { font-size: 22px; margin: 4px 0; } h2 { font-size: 18px; margin: 22px 0 8px; }
h3 { font-size: 14px; margin: 14px 0 6px; color: #444; } h4 { margin: 10px 0 4px; font-size: 13px; }
h5 { margin: 0 0 4px; font-size: 12px; color: #333; } small, .dim { color: #6a737d; }
.meta { margin: 2px 0; color: #444; }
.cards { display: flex; gap: 10px; margin: 10px 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 14px; min-width: 80px; }
.card b { display: block; font-size: 22px; }
.card.failed b { color: #b0102e; } .card.passed b { color: #1a7f37; }
.card.skipped b { color: #9a6700; }
.pill { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; color: #fff; }
.pill.failed { background: #b0102e; } .pill.passed { background: #1a7f37; }
.pill.skipped { background: #9a6700; }
.pill.error, .pill.not-run { background: #6e0b1f; }
.banner { background: #b0102e; color: #fff; padding: 10px 14px; border-radius: 6px;
  margin: 8px 0; font-size: 15px; }
pre.log { max-height: 360px; }
details.scenario { border: 1px solid #d0d7de; border-radius: 6px; margin: 10px 0;
  padding: 6px 12px; }
details.scenario > summary { cursor: pointer; font-size: 15px; }
.rerun { margin: 8px 0; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.rerun code { background: #f6f8fa; border: 1px solid #d0d7de; padding: 4px 8px; border-radius: 4px;
  font-size: 12px; word-break: break-all; }
ol.problems { margin: 6px 0; padding-left: 22px; } ol.problems li { margin: 3px 0; }
.check { font-weight: 600; color: #b0102e; } .where { color: #57606a; }
.tl { overflow-x: auto; border: 1px solid #e3e7ec; border-radius: 4px; }
.cols, .ex { display: flex; gap: 12px; } .col { flex: 1 1 0; min-width: 0; }
pre { background: #f6f8fa; padding: 6px 8px; border-radius: 4px; font-size: 12px; margin: 0 0 6px;
  white-space: pre-wrap; word-break: break-all; max-height: 320px; overflow: auto; }
ol.items { font: 12px ui-monospace, monospace; padding-left: 28px; margin: 0; background: #f6f8fa; }
ol.items li { padding: 1px 4px; white-space: pre-wrap; word-break: break-all; }
li.missing { background: #ffd7dc; } li.extra { background: #fff1c2; }
li.moved { background: #e6ecff; }
details.steps, details.steps details { margin: 6px 0; }
details.failing > summary { color: #b0102e; }
details.steps details { padding-left: 14px; } .call { margin-left: 4px; }
table.list { border-collapse: collapse; width: 100%; margin: 6px 0; }
table.list td, table.list th { border-bottom: 1px solid #eaeef2; padding: 3px 8px; text-align: left;
  vertical-align: top; } td.num { text-align: right; white-space: nowrap; }
#filter { margin: 4px 0; padding: 4px 8px; width: 320px; }
.allgood { color: #1a7f37; font-weight: 600; } button.copy { font-size: 12px; }
"""

_JS = """
document.querySelectorAll('button.copy').forEach(function (b) {
  b.addEventListener('click', function () {
    var code = b.parentNode.querySelector('code').textContent;
    if (navigator.clipboard) { navigator.clipboard.writeText(code); b.textContent = 'copied'; }
  });
});
var filter = document.getElementById('filter');
if (filter) filter.addEventListener('input', function () {
  var q = filter.value.toLowerCase();
  document.querySelectorAll('table.list tbody tr').forEach(function (tr) {
    tr.style.display = tr.textContent.toLowerCase().indexOf(q) < 0 ? 'none' : '';
  });
  if (q) document.querySelectorAll('details.passed-list').forEach(function (d) { d.open = true; });
});
"""
