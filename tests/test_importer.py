"""``chat-harness import``: recordings become scenarios that reproduce what was recorded.

The seed bug report's four requests (``fixtures/seed/``), written down as a
list of pairs and as a browser's HAR export, are imported into a scenarios
folder and run: the reference backend passes, the seed's two mutants fail as
the user saw it. Bad input gets one clear paragraph and exit code 2.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from runs import chat_harness

from harness.cli import main
from harness.errors import UsageError
from harness.importer import import_file
from harness.importer.build import build
from harness.importer.recorded import Recorded
from harness.scenario import template
from harness.scenario.load import load_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "seed"
# the bug report's requests, in order: (fixture stem, path, answer file, status)
SEED = [
    ("01-chat-free-model", "/api/chat", "01-chat-free-model.429.json", 429),
    ("02-sync-failed-message", "/api/chat/messages", "02-sync-failed-message.201.json", 201),
    ("03-chat-resend-other-model", "/api/chat",
     "03-chat-resend-other-model.200-wrong-request-id.json", 200),
    ("04-sync-pair", "/api/chat/messages", "04-sync-pair.500.json", 500),
]


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def seed_pairs() -> list[dict[str, Any]]:
    return [{"title": stem.split("-", 1)[1].replace("-", " "),
             "request": {"method": "POST", "path": path, "body": _load(f"{stem}.request.json")},
             "response": {"status": status, "body": _load(answer),
                          "headers": {"Retry-After": "60"} if status == 429 else {}}}
            for stem, path, answer, status in SEED]


def seed_har() -> dict[str, Any]:
    """The same requests as a browser exports them, with the noise around them."""
    entries: list[dict[str, Any]] = [
        {"startedDateTime": "2025-08-12T14:34:00.000Z",
         "request": {"method": "GET", "url": "https://chat.example/favicon.ico", "headers": []},
         "response": {"status": 200, "headers": [], "content": {"text": ""}}},
        {"startedDateTime": "2025-08-12T14:35:44.000Z",
         "request": {"method": "OPTIONS", "url": "https://api.example/api/chat", "headers": []},
         "response": {"status": 204, "headers": [], "content": {}}},
    ]
    for n, (stem, path, answer, status) in enumerate(SEED):
        text = json.dumps(_load(answer))
        content = {"mimeType": "application/json", "text": text}
        if n == 2:  # browsers export some bodies base64-encoded
            content = {"mimeType": "application/json", "encoding": "base64",
                       "text": base64.b64encode(text.encode()).decode()}
        entries.append({
            "startedDateTime": f"2025-08-12T14:3{5 + n}:45.000Z",
            "request": {"method": "POST", "url": f"https://api.example{path}", "headers": [],
                        "postData": {"mimeType": "application/json",
                                     "text": json.dumps(_load(f"{stem}.request.json"))}},
            "response": {"status": status, "content": content,
                         "headers": [{"name": "Retry-After", "value": "60"}] if status == 429
                         else []}})
    entries.reverse()  # the export's order is not trusted: startedDateTime is
    return {"log": {"version": "1.2", "creator": {"name": "test"}, "entries": entries}}


def test_the_sample_recordings_are_the_seed_s_requests() -> None:
    """fixtures/recordings/ (README's import example) holds the seed's four requests, as
    a browser's HAR export and as a list of pairs."""
    recordings = ROOT / "fixtures" / "recordings"
    har = json.loads((recordings / "resend-after-429.har").read_text(encoding="utf-8"))
    pairs = json.loads((recordings / "resend-after-429.json").read_text(encoding="utf-8"))
    assert har == seed_har()
    assert pairs == seed_pairs()


@pytest.fixture
def recordings(tmp_path: Path) -> dict[str, Path]:
    pairs, har = tmp_path / "seed-pairs.json", tmp_path / "seed.har"
    pairs.write_text(json.dumps(seed_pairs(), indent=1), encoding="utf-8")
    har.write_text(json.dumps(seed_har()), encoding="utf-8")
    return {"pairs": pairs, "har": har}


@pytest.mark.parametrize("kind", ["pairs", "har"])
def test_imported_seed_loads_with_script_expectations_and_captures(
        kind: str, recordings: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scenarios" / f"{kind}.yaml"
    assert main(["import", str(recordings[kind]), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    [scenario] = load_file(out)
    steps = scenario.steps
    assert [s.http for s in steps] == ["POST /api/chat", "POST /api/chat/messages"] * 2
    assert [s.expect.status for s in steps] == [429, 201, 200, "2xx"]
    first, _, resend, sync = steps
    assert (first.provider.status, first.provider.retry_after) == (429, 60)
    assert resend.provider.reply == _load(SEED[2][2])["data"]["response"]
    assert resend.provider.model == "google/gemini-2.5-flash-lite"
    assert resend.capture == {"completion_id": "data.id"}
    assert sync.body["messages"][1]["completion_id"] == "${completion_id}"
    assert sync.body["sessionId"] == "${session_id}"
    assert scenario.header.session == "conv_1755009248860_gy5e5xlyt"
    # ids the client made stay literal: the failed message is re-posted as recorded
    assert sync.body["messages"][0]["id"] == "msg_1755009345281_o2lvrl3ej"
    assert sync.body["messages"][1]["user_message_id"] == "msg_1755009345281_o2lvrl3ej"
    assert scenario.header.why == f"imported from {recordings[kind].name}"
    assert "recorded 500 internal_server_error: the failure this scenario reproduces" in text
    if kind == "har":
        assert "# ignored: GET /favicon.ico (not a chat path)" in text
        assert "# ignored: OPTIONS /api/chat (a CORS preflight)" in text


def _run(scenarios: Path, reports: Path, *mutants: str) -> subprocess.CompletedProcess[str]:
    args = [a for m in mutants for a in ("--mutant", m)]
    return chat_harness("run", str(scenarios), *args, "--reports", str(reports),
                        "--db", "embedded", tmp=reports.parent / "tmp", timeout=600)


def test_imported_seed_passes_on_the_reference_and_reproduces_the_bug(
        recordings: dict[str, Path], tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    for kind, path in recordings.items():
        assert main(["import", str(path), "-o", str(scenarios / f"{kind}.yaml")]) == 0
    good = _run(scenarios, tmp_path / "good")
    assert good.returncode == 0, good.stdout[-4000:] + good.stderr[-2000:]
    assert "2 passed" in good.stdout
    bad = _run(scenarios, tmp_path / "bad", "request-id-first-match", "insert-not-upsert")
    assert bad.returncode == 1, bad.stdout[-4000:] + bad.stderr[-2000:]
    doc = json.loads((tmp_path / "bad" / "results.json").read_text(encoding="utf-8"))
    for record in doc["scenarios"]:
        assert record["outcome"] == "failed"
        by_step = {(f["check"], f["step"]) for f in record["failures"]}
        assert ("pairing", 2) in by_step  # the resend answered with the failed message's id
        assert ("expect", 3) in by_step  # the sync of the pair: 500 where 2xx is due
        assert "C-CHAT-2" in record["clauses_broken"]


def test_a_backend_made_id_becomes_a_capture_in_body_path_and_query() -> None:
    recorded = [
        Recorded("POST", "/api/chat", 200, body={"message": "hi", "messages": []},
                 response={"data": {"response": "hello", "id": "gen-1755-abc",
                                    "timestamp": "2025-08-12T14:36:51.778Z"}}),
        Recorded("GET", "/api/chat/session", 200, query={"id": "gen-1755-abc"}),
        Recorded("POST", "/api/chat/messages", 201, body={"messages": [
            {"completion_id": "gen-1755-abc", "at": "2025-08-12T14:36:51.778Z"}]}),
        Recorded("GET", "/api/health", 200),
    ]
    built = build(recorded)
    assert [s.data["http"] for s in built.steps] == [
        "POST /api/chat", "GET /api/chat/session", "POST /api/chat/messages"]
    # named by the answer's key, or (for a bare "id") the path
    assert built.steps[0].data["capture"] == {"data_id": "data.id",
                                              "timestamp": "data.timestamp"}
    assert built.steps[1].data["query"] == {"id": "${data_id}"}
    assert built.steps[2].data["body"] == {"messages": [
        {"completion_id": "${data_id}", "at": "${timestamp}"}]}
    assert built.ignored == ["GET /api/health (not a chat path)"]


def test_provider_answers_inferred_from_recorded_statuses() -> None:
    def script(status: int, response: Any = None, path: str = "/api/chat") -> Any:
        rec = Recorded("POST", path, status, body={"message": "x", "model": "m"},
                       response=response)
        return build([rec]).steps[0].data

    assert script(429, {"code": "too_many_requests", "retryAfter": 30})["provider"] == {
        "status": 429, "error": "recorded 429", "retry_after": 30}
    assert len(script(502, {"code": "bad_gateway"})["provider"]) == 3
    assert script(502)["expect"] == {"status": 502}
    assert "provider" not in script(400, {"code": "validation_error"})
    assert script(500)["expect"] == {"status": "2xx"}
    stream = "Hello wor\nld\n" + json.dumps({"__FINAL_METADATA__": {"response": "Hello wor\nld",
                                                                   "model": "m2"}})
    assert script(200, stream, "/api/chat/stream")["provider"] == {
        "reply": "Hello wor\nld", "model": "m2"}


def test_hostile_bodies_round_trip_through_the_loader(tmp_path: Path) -> None:
    odd = "<script>x</script>\x00\ud800 tab\t and 'quotes' \"double\" !any\n  indented\n"
    pairs = [{"request": {"method": "POST", "path": "/api/chat/messages", "body": {
        "messages": [{"id": "msg_1", "content": odd, "role": "user"}], "note": "${x}"}},
        "response": {"status": 201, "body": {"count": 1}}}]
    source = tmp_path / "odd.json"
    source.write_text(json.dumps(pairs), encoding="utf-8")
    out = tmp_path / "scenarios" / "odd.yaml"
    out.parent.mkdir()
    out.write_text(import_file(source), encoding="utf-8")
    [scenario] = load_file(out)
    sent = template.render(scenario.steps[0].body, {}, location=scenario.location(0), key="body")
    assert sent == pairs[0]["request"]["body"]  # '${x}' written as '$${x}': sent as recorded
    assert "the escape for the text itself" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("this is not json {", "is not JSON"),
    (b"\xff\xfe\x00binary", "is not JSON"),
    ('{"what": "ever"}', "neither a HAR file (an object with log.entries) nor a list"),
    ("[]", "is an empty list: neither a HAR file"),
    ('[{"request": {"path": "/api/chat"}, "response": {"status": 200}}]', "needs 'method'"),
    ('{"log": {"entries": [{"request": {"method": "GET", "url": "https://x.test/"},'
     ' "response": {"status": 200}}]}}', "none of its 1 request(s) goes to a chat path"),
])
def test_bad_input_is_one_clear_paragraph_and_exit_2(
        content: str | bytes | None, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "input.har"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["import", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"chat-harness: {path}") and message in captured.err
    assert "Traceback" not in captured.err and "\nHint: " in captured.err
    with pytest.raises(UsageError):
        import_file(path)
