"""The HTML report: what it shows, that it is safe, and that a real browser draws it.

The browser test runs a failing seed-mutant run in a subprocess, as a user
would, takes a screenshot of its report.html with headless Chromium (Debian's
``chromium``) and reads the PNG with the standard library only: the page is
not blank and the failure timeline's red marker is on screen. That screenshot is the
one the documentation shows (``docs/report.png``): with ``CHAT_HARNESS_SCREENSHOT=update``
the test writes it there once its checks pass (a run's ids and times differ, so it is
not rewritten on every run).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from runs import unavailable

from harness.cli import main
from harness.reporting import html, jsonfile, timeline

ROOT = Path(__file__).resolve().parent.parent
SEED = "scenarios/seed/429-switch-model-resend.yaml"
MUTANTS = ["--mutant", "request-id-first-match", "--mutant", "insert-not-upsert"]
HOSTILE = "<script>alert(1)</script>\x00\ud800 & \"quotes\" '</svg>"


def _exchange(step: int | None, path: str, status: int, *, body: Any = None,
              response: Any = None, purpose: str = "raw", expected: Any = None) -> dict[str, Any]:
    return {"step": step, "purpose": purpose, "actor": "alice", "method": "POST", "path": path,
            "request_body": body, "status": status, "response_body": response, "headers": {},
            "elapsed_ms": 3.2, "error": None, "expected": expected}


def _record(name: str, outcome: str = "failed") -> dict[str, Any]:
    failures = [] if outcome != "failed" else [
        {"check": "pairing", "message": "request_id named msg_old instead of msg_new",
         "step": 1, "expected": "msg_new", "actual": "msg_old", "clause": "C-CHAT-2"},
        {"check": "order", "message": "the stored conversation differs", "step": None,
         "expected": ["user msg_a 'hi'", "user msg_new 'again'"], "actual": ["user msg_a 'hi'"],
         "clause": "C-MSG-9"},
    ]
    return {
        "scenario_id": name, "file": f"scenarios/x/{name}.yaml", "target": "reference",
        "steps": [
            {"index": 0, "kind": "chat", "title": "chat 'hi'", "line": 5,
             "exchanges": [_exchange(0, "/api/chat", 200, body={"message": HOSTILE},
                                     response={"data": {"response": HOSTILE}}, purpose="chat")],
             "provider_calls": [{"model": "m/free", "messages": [], "answer": "200 reply 'x'"}]},
            {"index": 1, "kind": "chat", "title": "chat 'again'", "line": 9,
             "exchanges": [_exchange(1, "/api/chat", 200, purpose="chat", expected=200),
                           _exchange(1, "/api/chat/messages", 500, purpose="sync",
                                     response={"code": "internal_server_error"})],
             "provider_calls": [{"model": "m/paid", "messages": [], "answer": "200 reply 'y'"}]},
        ],
        "failures": failures, "exchanges": [],
        "skipped": "needs a database" if outcome == "skipped" else None,
        "duration_s": 0.25,
        "reproduce": f"chat-harness run 'scenarios/x/{name}.yaml::{name}' --mutant m --db embedded",
        "outcome": outcome, "checks_failed": sorted({f["check"] for f in failures}),
        "clauses_broken": sorted({f["clause"] for f in failures}),
    }


def _doc(*records: dict[str, Any]) -> dict[str, Any]:
    outcomes = Counter(r["outcome"] for r in records)
    return {"format": jsonfile.FORMAT, "target": "reference", "mutants": ["m"],
            "summary": {"scenarios": len(records), "passed": outcomes["passed"],
                        "failed": outcomes["failed"], "skipped": outcomes["skipped"],
                        "duration_s": 1.5},
            "scenarios": list(records)}


def test_everything_recorded_is_escaped() -> None:
    page = html.render(_doc(_record(HOSTILE)))
    assert page.count("<script>") == 1  # ours, at the end; none from the data
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x00" not in page and "\\x00" in page
    assert "\\ud800" in page
    page.encode("utf-8")  # no lone surrogate left: the file can be written
    assert "'</svg>" not in page and "&#x27;&lt;/svg&gt;" in page


def test_a_failing_scenario_gets_a_timeline_with_its_step_marked() -> None:
    record = _record("resend")
    bands = timeline.bands(record)
    assert [b.failures for b in bands] == [[], ["✗ pairing C-CHAT-2"], ["✗ order C-MSG-9"]]
    failed = [a for a in bands[1].arrows if a.failed]
    assert [a.label for a in failed] == ["200 · wrong request_id", "500 internal_server_error"]
    assert not any(a.failed for a in bands[0].arrows)
    lanes = {(a.source, a.target) for a in bands[1].arrows}
    assert ("backend", "provider") in lanes and ("provider", "backend") in lanes
    svg = timeline.render(record)
    assert svg.startswith("<svg") and svg.count(timeline.FAIL_MARK) >= 3
    page = html.render(_doc(record))
    assert '<svg class="timeline"' in page
    passing = html.render(_doc(_record("fine", "passed")))
    assert timeline.FAIL_MARK not in passing and '<svg class="timeline"' not in passing


def test_the_rerun_command_and_expected_vs_actual_are_shown() -> None:
    page = html.render(_doc(_record("resend")))
    command = "chat-harness run &#x27;scenarios/x/resend.yaml::resend&#x27; --mutant m"
    assert command in page
    assert "as the client holds it (2)" in page and "as the backend returns it (1)" in page
    assert "<li class=\"missing\">user msg_new &#x27;again&#x27;</li>" in page


def test_many_scenarios_failing_first_passing_folded() -> None:
    records = [_record(f"ok{n}", "passed") for n in range(50)]
    records += [_record(f"bad{n}") for n in range(8)] + [_record("skip", "skipped")]
    page = html.render(_doc(*records))
    assert page.index("bad0") < page.index("ok0")
    assert page.count('<details class="scenario failed"') == 8
    assert page.count('<details class="scenario failed" id="s50" open>') == 1
    assert page.count(" open>") == html.OPEN_FAILURES
    assert '<details class="passed-list"><summary>50 passing scenarios</summary>' in page
    assert "needs a database" in page


def test_summary_line_and_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    results = tmp_path / "results.json"
    results.write_text(__import__("json").dumps(_doc(_record("resend"))), encoding="utf-8")
    assert main(["report", str(results), "-o", str(tmp_path / "out.html")]) == 0
    line = capsys.readouterr().out.strip()
    assert line == (f"chat-harness: 1 failed, 0 passed, 0 skipped against reference "
                    f"(mutants: m); report: {tmp_path / 'out.html'}")
    assert (tmp_path / "out.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    assert main(["report", str(tmp_path / "bad.json")]) == 2
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no such results file" in err


# -- a real browser -------------------------------------------------------------------


def _chromium() -> str | None:
    wanted = os.environ.get("CHAT_HARNESS_CHROMIUM")
    if wanted:
        return wanted
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def png_pixels(data: bytes) -> tuple[int, int, Counter[bytes]]:
    """(width, height, count of each RGB colour) of an 8-bit RGB/RGBA PNG, stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None and header[2] == 8 and header[3] in (2, 6) and header[6] == 0
    width, height, bpp = header[0], header[1], 3 if header[3] == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    prev, colours = bytearray(stride), Counter[bytes]()
    for y in range(height):
        start = y * (stride + 1)
        kind_, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind_ == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind_ == 2:
            line = bytearray(map(lambda a, b: (a + b) & 0xFF, line, prev))
        elif kind_ == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind_ == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) \
                    & 0xFF
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, colours


def test_chromium_shows_the_failure_timeline(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        unavailable("chromium", "no chromium binary on PATH (apt-get install chromium, or "
                    "set CHAT_HARNESS_CHROMIUM): the report cannot be checked in a real browser")
    reports = tmp_path / "reports"
    run = subprocess.run(
        [sys.executable, "-m", "harness", "run", SEED, *MUTANTS, "--reports", str(reports),
         "--db", "embedded"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    report = reports / "report.html"
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("chat-harness: 2 failed, 0 passed") and last.endswith("report.html")
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1280,1400", report.as_uri()],
        capture_output=True, timeout=120, check=True)
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1400)
    assert len(colours) > 200, "the screenshot is (nearly) blank"
    white = colours.get(b"\xff\xff\xff", 0)
    assert white < 0.97 * width * height, "the screenshot is (nearly) all white"
    mark = bytes.fromhex(timeline.FAIL_MARK[1:])
    near = sum(n for c, n in colours.items() if all(abs(x - y) <= 6 for x, y in zip(
        c, mark, strict=True)))
    assert near > 500, "the failure timeline's red marker is not on screen"
    if os.environ.get("CHAT_HARNESS_SCREENSHOT") == "update":
        shutil.copyfile(shot, ROOT / "docs" / "report.png")


def test_reports_given_as_empty_writes_none(tmp_path: Path) -> None:
    """``--reports ''``: no results.json, junit.xml, report.html or log anywhere (and it says
    so)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    seed = root / "scenarios" / "seed" / "429-switch-model-resend.yaml"
    for reports, written in (("", False), (str(tmp_path / "out"), True)):
        run = subprocess.run(
            [sys.executable, "-m", "harness", "run", str(seed), "--db", "embedded",
             "--reports", reports, "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert ("results: " in run.stdout) is written, run.stdout
        assert ("report: " in run.stdout) is written, run.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "junit.xml", "report.html", "results.json", "target.log"]  # the backend's log
    assert not (tmp_path / "reports").exists()  # with --reports '' not even its log
