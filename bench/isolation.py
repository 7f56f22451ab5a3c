"""Per-scenario isolation: what emptying the database between scenarios costs, four ways.

Each sample first stores what a typical scenario leaves (a session and ten
messages, untimed), then times the reset alone. The floor is one ``SELECT 1``
round trip on the same connection: no reset can cost less than a statement.

- ``DELETE FROM`` each table: what :meth:`harness.db.Database.reset` does;
- ``TRUNCATE … RESTART IDENTITY CASCADE``: an exclusive lock and new files;
- ``CREATE DATABASE … TEMPLATE``: a fresh database per scenario (with the
  ``DROP`` of the previous one, which is part of the price);
- a rolled-back transaction (``BEGIN`` … ``ROLLBACK``): cheapest, but only
  when every write of the scenario runs on the harness's one connection,
  which no backend with its own pool (in-process or black box) does.
"""

from __future__ import annotations

import uuid
from typing import Any

from bench.measure import Context, Row, timed
from bench.pg_ready import SCHEMA

FIG = "isolation"


def _fill(conn: Any, n: int = 10) -> None:
    """What a scenario leaves behind: one session, ``n`` messages."""
    session = f"conv_bench_{uuid.uuid4().hex[:12]}"
    conn.execute(
        "INSERT INTO chat_sessions (id, user_id, title) VALUES (%s, %s, 'bench')",
        (session, str(uuid.uuid4())))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chat_messages (id, session_id, role, content, message_timestamp)"
            " VALUES (%s, %s, %s, %s, now())",
            [(f"msg_bench_{uuid.uuid4().hex[:12]}", session, "user" if i % 2 == 0 else
              "assistant", f"message {i}") for i in range(n)])


def measure(ctx: Context) -> tuple[list[Row], list[str]]:
    import psycopg

    from harness.db import TABLES, provision

    n = ctx.reps(60, 5)
    floor = Row(FIG, "SELECT 1 round trip (floor)", [], unit="ms")
    delete = Row(FIG, f"DELETE FROM {len(TABLES)} tables (Database.reset, the pick)", [],
                 unit="ms", floor=floor.name, target="≤ 2 ms", limit=0.002)
    truncate = Row(FIG, "TRUNCATE … RESTART IDENTITY CASCADE", [], unit="ms",
                   floor=floor.name)
    template = Row(FIG, "DROP + CREATE DATABASE … TEMPLATE", [], unit="ms", floor=floor.name)
    rollback = Row(FIG, "rolled-back transaction (BEGIN + ROLLBACK)", [], unit="ms",
                   floor=floor.name)
    db = provision("embedded", schema=SCHEMA)
    try:
        db.apply_schema(SCHEMA)
        conn = db.connection()
        admin_url = db.url.replace("/chat?", "/postgres?")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(b"CREATE DATABASE bench_tpl")
            with psycopg.connect(db.url.replace("/chat?", "/bench_tpl?"),
                                 autocommit=True) as tpl:
                tpl.execute(SCHEMA.read_bytes())
            tx = psycopg.connect(db.url, autocommit=True)  # BEGIN / ROLLBACK sent by hand
            try:
                for _ in range(n):
                    floor.samples.append(timed(lambda: conn.execute(b"SELECT 1")))
                    _fill(conn)
                    delete.samples.append(timed(db.reset))
                    _fill(conn)
                    truncate.samples.append(timed(lambda: conn.execute(
                        ("TRUNCATE " + ", ".join(TABLES)
                         + " RESTART IDENTITY CASCADE").encode())))
                    template.samples.append(timed(lambda: (
                        admin.execute(b"DROP DATABASE IF EXISTS bench_scn"),
                        admin.execute(b"CREATE DATABASE bench_scn TEMPLATE bench_tpl"))))
                    begin_s = timed(lambda: tx.execute(b"BEGIN"))
                    _fill(tx)
                    rollback.samples.append(begin_s + timed(lambda: tx.execute(b"ROLLBACK")))
            finally:
                tx.close()
    finally:
        db.close()
    d, t, c = (r.median or 0.0 for r in (delete, truncate, template))
    notes = [
        f"the pick is DELETE: {d * 1000:.2f} ms, a few round trips; it works for every target "
        "(the in-process backend's pool, a black box's own connections), where a rolled-back "
        "transaction needs every write of the scenario on the harness's own connection; "
        f"TRUNCATE costs {t / d if d else 0:.1f}× and a template database "
        f"{c / d if d else 0:.0f}× as much (data folders on tmpfs: on a disk TRUNCATE's "
        "file work costs more)",
    ]
    return [floor, delete, truncate, template, rollback], notes


__all__ = ["measure"]
