"""The bench runner's output shape, and the embedded PostgreSQL's warm cache.

No timing thresholds here: the bench reports numbers, these tests check that
it produces them, and that the cache is safe (parallel runs, schema changes,
damaged entries, nothing left behind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.db import embedded, pgcache

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "fixtures" / "schema.sql"


# -- the bench runner -------------------------------------------------------------------


def test_quick_bench_of_one_figure_writes_its_json(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "bench", "--quick", "--only", "isolation",
         "--reports", str(reports)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "CHAT_HARNESS_DATABASE_URL"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "isolation" in done.stdout
    assert (reports / "bench.md").read_text(encoding="utf-8").startswith("Machine: ")
    doc = json.loads((reports / "bench.json").read_text(encoding="utf-8"))
    assert doc["format"] == "chat-harness-bench/1"
    assert doc["quick"] is True
    assert {"nproc", "cpu", "ram_gib", "python"} <= set(doc["machine"])
    assert list(doc["figures"]) == ["isolation"]
    figure = doc["figures"]["isolation"]
    assert figure["error"] is None
    assert figure["notes"] and isinstance(figure["notes"][0], str)
    rows = {row["name"]: row for row in figure["rows"]}
    assert len(rows) == 5
    for row in rows.values():
        assert {"samples", "median_s", "runs", "floor", "ratio", "target", "met"} <= set(row)
        assert row["runs"] == len(row["samples"]) > 0
        assert all(isinstance(s, float) and s > 0 for s in row["samples"])
    floors = [row for row in rows.values() if row["floor"] is None]
    assert len(floors) == 1
    for row in rows.values():
        if row["floor"] is not None:
            assert row["floor"] in rows
            assert row["ratio"] == pytest.approx(row["median_s"] / rows[row["floor"]]["median_s"])
    picked = [row for row in rows.values() if row["target"]]
    assert len(picked) == 1 and isinstance(picked[0]["met"], bool)


def test_a_target_not_met_is_printed_with_its_measured_cause(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every row that misses its target says why, from what the run measured; a row that
    meets it says nothing more; one with no cause says so."""
    from bench.measure import Row, judge, ratio_rows
    from bench.runner import FigureResult, markdown, print_table

    floor = Row("f", "the floor", [1.0])
    slow = Row("f", "slow", [3.0], floor="the floor", target="≤ 2×", limit=2.0, on_ratio=True,
               gap="PostgreSQL takes 1.5 s of it")
    fine = Row("f", "fine", [1.5], floor="the floor", target="≤ 2×", limit=2.0, on_ratio=True,
               gap="never shown")
    silent = Row("f", "silent", [9.0], target="< 3 s", limit=3.0)
    rows = [floor, slow, fine, silent]
    ratio_rows(rows)
    for row in rows:
        judge(row)
    results = [FigureResult("f", "a figure", rows=rows)]
    info = {"nproc": 2, "cpu": "x", "ram_gib": 1, "python": "3", "load_1min_at_start": 1.0}
    print_table(results, info)
    out = capsys.readouterr().out
    assert "f: not met, slow (≤ 2×): PostgreSQL takes 1.5 s of it" in out
    assert "f: not met, silent (< 3 s): no cause measured" in out
    assert "never shown" not in out
    md = markdown(results, info)
    assert "- f, slow (≤ 2×): PostgreSQL takes 1.5 s of it" in md and "never shown" not in md


def test_the_suite_gap_names_the_folder_that_takes_the_most() -> None:
    from bench.suite import suite_gap

    text = suite_gap({"scenarios/races/a.yaml::a": 3.0, "scenarios/races/b.yaml::b": 1.0,
                      "scenarios/seed/c.yaml::c": 1.0}, before_s=1.25, wall_s=7.0)
    assert text.startswith("of 7.00 s, 1.25 s is the process without the scenarios")
    assert "5.00 s the scenarios' own time and 0.75 s the rest" in text
    assert "scenarios/races/ (2 scenarios) takes 4.00 s of the scenarios' time (80 %)" in text


def test_two_workers_are_bounded_by_the_longest_scenario_and_half_of_all() -> None:
    from bench.blackbox import xdist_gap

    text = xdist_gap({"a.yaml::long": 6.0, "b.yaml::b": 1.0, "c.yaml::c": 1.0}, 10.0,
                     cpu=(4.0, 6.0), load=3.0)
    assert "2.0 s of start and end around 8.0 s of scenarios, the longest long (6.0 s)" in text
    assert "at least 2.0 + max(6.0, 4.0) = 8.0 s (0.80× serial)" in text


def test_an_unknown_figure_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "bench", "--only", "nope"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no figure nope" in done.stdout + done.stderr


# -- the warm cache ----------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder of the test's own, and a TMPDIR of its own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CHAT_HARNESS_CACHE", str(folder))
    monkeypatch.delenv("CHAT_HARNESS_NO_CACHE", raising=False)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield folder


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tar"))


def test_a_cold_start_builds_the_entry_and_the_next_start_copies_it(cache: Path) -> None:
    with embedded.start(SCHEMA) as first:
        assert first.cache == "built"
        assert first.query("SELECT count(*) AS n FROM chat_messages") == [{"n": 0}]
    with embedded.start(SCHEMA) as second:
        assert second.cache == "hit"
        assert second.cache_key == first.cache_key
        assert second.data_dir != first.data_dir
        second.apply_schema(SCHEMA)  # the loaded schema: nothing to do, and harmless
        assert second.query("SELECT count(*) AS n FROM chat_sessions") == [{"n": 0}]
    assert [p.name for p in _entries(cache)] == [f"{first.cache_key}.tar"]


def test_the_tcp_url_works_with_this_runs_own_password(cache: Path) -> None:
    import psycopg

    with embedded.start(SCHEMA) as first, embedded.start(SCHEMA) as second:
        assert first.tcp_url != second.tcp_url
        for db in (first, second):
            assert db.tcp_url is not None
            with psycopg.connect(db.tcp_url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


_PROVISION = """
import json, sys
from pathlib import Path
from harness.db import embedded
db = embedded.start(Path(sys.argv[1]))
db.query("INSERT INTO chat_sessions (id, user_id) VALUES ('s', gen_random_uuid())")
print(json.dumps({"cache": db.cache, "data": str(db.data_dir),
                  "rows": db.query("SELECT count(*) AS n FROM chat_sessions")[0]["n"]}))
db.close()
"""


def test_two_runs_at_once_on_a_cold_cache_get_their_own_data_folders(cache: Path,
                                                                      tmp_path: Path) -> None:
    env = dict(os.environ, CHAT_HARNESS_CACHE=str(cache), TMPDIR=str(tmp_path / "tmp"))
    procs = [subprocess.Popen([sys.executable, "-c", _PROVISION, str(SCHEMA)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sorted(r["cache"] for r in runs) == ["built", "hit"]  # one built it, under the lock
    assert runs[0]["data"] != runs[1]["data"]
    assert [r["rows"] for r in runs] == [1, 1]  # neither saw the other's row
    assert len(_entries(cache)) == 1
    assert not list(cache.glob("*.tmp-*"))  # no staging file left
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_schema_change_gives_a_new_key(cache: Path, tmp_path: Path) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text(SCHEMA.read_text(encoding="utf-8"), encoding="utf-8")
    key = pgcache.cache_key(embedded.bin_dir(), pgcache.schema_digest(schema))
    assert key == pgcache.cache_key(embedded.bin_dir(), pgcache.schema_digest(SCHEMA))
    with embedded.start(schema) as before:
        assert before.cache_key == key
    schema.write_text(schema.read_text(encoding="utf-8")
                      + "\nCREATE TABLE IF NOT EXISTS extra (id int);\n", encoding="utf-8")
    with embedded.start(schema) as after:
        assert after.cache == "built"
        assert after.cache_key != key
        assert after.query("SELECT count(*) AS n FROM extra") == [{"n": 0}]
    with embedded.start(None) as none:  # no schema: a key of its own, and no tables
        assert none.cache_key not in (key, after.cache_key)
        assert none.query("SELECT to_regclass('chat_sessions') AS t") == [{"t": None}]
        none.apply_schema(SCHEMA)  # applied for real
        assert none.query("SELECT to_regclass('chat_sessions') AS t") == [{"t": "chat_sessions"}]
    assert len(_entries(cache)) == 3


def _truncate(entry: Path) -> None:
    """A partial entry: the first half of the tar file."""
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])


def _no_pg_control(entry: Path) -> None:
    """An entry that unpacks, but whose data folder PostgreSQL cannot start on."""
    rewritten = entry.with_suffix(".new")
    with tarfile.open(entry) as src, tarfile.open(rewritten, "w") as out:
        for member in src.getmembers():
            if not member.name.endswith("global/pg_control"):
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    rewritten.replace(entry)


@pytest.mark.parametrize("damage", [_truncate, _no_pg_control], ids=["partial", "corrupt"])
def test_a_damaged_entry_is_rebuilt(cache: Path, damage: Callable[[Path], None]) -> None:
    with embedded.start(SCHEMA) as first:
        key = first.cache_key
    (entry,) = _entries(cache)
    damage(entry)
    (cache / f"{key}.tar.tmp-999999-abcdef").write_bytes(b"a build killed mid-write")
    with embedded.start(SCHEMA) as again:
        assert again.cache == "built"
        assert again.query("SELECT count(*) AS n FROM chat_messages") == [{"n": 0}]
    assert not list(cache.glob("*.tmp-*"))
    with embedded.start(SCHEMA) as after:
        assert after.cache == "hit"


def test_close_leaves_nothing_in_tmpdir(cache: Path, tmp_path: Path) -> None:
    db = embedded.start(SCHEMA)  # cold: builds in its own folders too
    data = db.data_dir
    assert data is not None and data.is_dir()
    db.close()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not data.exists() and not data.parent.exists()
    warm = embedded.start(SCHEMA)
    data = warm.data_dir
    warm.close()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert data is not None and not data.parent.exists()


def test_the_cache_can_be_switched_off(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_HARNESS_NO_CACHE", "1")
    assert pgcache.cache_dir() is None
    with embedded.start(SCHEMA) as db:
        assert db.cache == "off" and db.cache_key is None
        db.apply_schema(SCHEMA)  # applied for real: the folder came without it
        assert db.query("SELECT count(*) AS n FROM chat_messages") == [{"n": 0}]
    assert not cache.exists()
    monkeypatch.delenv("CHAT_HARNESS_NO_CACHE")
    monkeypatch.setenv("CHAT_HARNESS_CACHE", "off")
    assert pgcache.cache_dir() is None
