"""The guarantees of ``POST /api/v1/incidents`` on its two-statement path (plan, then one write).

The write (case, first reporter, events, audit entry, read back) is one statement on an
autocommit connection: these tests check that it keeps what the old transaction kept —
an idempotent retry returns the same case and stores nothing more, a likely duplicate is
flagged, the audit entry is the very entry the request-transaction fallback would write,
the console hears the case by ``NOTIFY`` and the daily summary counts it, and a failure
inside the statement leaves nothing behind.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.auth import audit
from api.store.engine import psycopg_dsn
from tests.conftest import auth, serving
from tests.incidents.conftest import report

ROUTE = "POST /api/v1/incidents"


def _rows_of(sql: Any, iid: int) -> dict[str, int]:
    return {
        table: sql(f"SELECT count(*) FROM {table} WHERE incident_id = %s", (iid,))[0][0]
        for table in ("incident_events", "incident_reporters")
    }


def test_an_idempotent_retry_answers_the_same_case_and_stores_nothing_more(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """A retry under the same key: the same case (same JSON), one row, one reporter, one audit entry."""
    p = interior_point(offset=7)
    tok = make_token("reporter")
    headers = {**auth(tok), "Idempotency-Key": "guarantee-retry-1"}
    first = client.post("/api/v1/incidents", json=report(p, item="EV-003"), headers=headers)
    assert first.status_code == 201, first.text
    assert first.headers.get("Idempotent-Replayed") is None
    iid = first.json()["id"]
    assert first.headers["Location"] == f"/api/v1/incidents/{iid}"
    again = client.post("/api/v1/incidents", json=report(p, item="EV-003"), headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    # the replay reads the stored case: the very answer the insert read back
    assert again.json() == first.json()
    assert sql("SELECT count(*) FROM incidents WHERE idempotency_key LIKE %s", ("%:guarantee-retry-1",)) == [
        (1,)
    ]
    assert _rows_of(sql, iid) == {"incident_events": 2, "incident_reporters": 1}
    entries = sql("SELECT count(*) FROM audit_log WHERE action = %s AND entity_id = %s", (ROUTE, str(iid)))
    assert entries == [(1,)]


def test_the_audit_entry_is_the_fallbacks_entry_written_by_the_insert(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """The entry: who, where, route, status, the stored row (masked) and its keys, as the fallback wrote."""
    p = interior_point(offset=8)
    tok = make_token("reporter")
    r = client.post(
        "/api/v1/incidents",
        json=report(p, item="EV-005", reporter={"name": "王小明", "phone": "13912345678"}),
        headers={**auth(tok), "Idempotency-Key": "guarantee-audit-1"},
    )
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    rows = sql(
        "SELECT actor, token_id, role, client_ip, method, path, entity, before, after, changed, status "
        "FROM audit_log WHERE action = %s AND entity_id = %s",
        (ROUTE, str(iid)),
    )
    assert len(rows) == 1
    actor, token_id, role, ip, method, path, entity, before, after, changed, status = rows[0]
    (reporter_token,) = sql("SELECT reporter_token_id FROM incidents WHERE id = %s", (iid,))[0]
    assert role == "reporter" and method == "POST" and path == "/api/v1/incidents" and entity == "incidents"
    assert status == 201 and before is None and ip == "testclient"
    assert token_id == reporter_token and actor == f"token:{token_id}:reporter"
    # what the request-transaction fallback stores for the created row (api.web.auditing)
    (snapshot,) = sql(
        "SELECT to_jsonb(t) - 'geom' - 'location' - 'position' - 'point' FROM incidents t WHERE id = %s",
        (iid,),
    )[0]
    expected = audit.entry(None, None, ROUTE, "incidents", iid, None, snapshot)
    assert after == json.loads(expected["after"])
    assert changed == expected["changed"]
    # personal fields masked in the log, whole in the store
    assert after["reporter_phone"] != "13912345678" and after["reporter_name"] != "王小明"
    assert snapshot["reporter_phone"] == "13912345678"
    assert after["id"] == iid and after["idempotency_key"].endswith(":guarantee-audit-1")


def test_a_likely_duplicate_is_flagged_with_its_event(
    client: Any, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """The second report of the same item a few metres away is flagged, and its log says so."""
    p = interior_point(offset=9)
    tok = make_token("reporter")
    first = client.post("/api/v1/incidents", json=report(p, item="EV-007"), headers=auth(tok)).json()
    near = {**p, "lat": p["lat"] + 0.0001}  # ~11 m north
    second = client.post("/api/v1/incidents", json=report(near, item="EV-007"), headers=auth(tok)).json()
    assert second["likely_duplicate_of"] == first["id"]
    assert sql("SELECT likely_duplicate_of FROM incidents WHERE id = %s", (second["id"],)) == [(first["id"],)]
    events = sql(
        "SELECT action, detail->>'likely_duplicate_of' FROM incident_events "
        "WHERE incident_id = %s ORDER BY id",
        (second["id"],),
    )
    assert [a for a, _ in events] == ["intake", "assign", "flag_duplicate"]
    assert events[2][1] == str(first["id"])


def test_the_console_hears_the_case_and_the_daily_summary_counts_it(
    client: Any, make_token: Any, interior_point: Any, sql: Any, db_url: str
) -> None:
    """Committed before the 201: the NOTIFY is already sent and the day's count already moved."""
    p = interior_point(offset=10)
    day = "SELECT coalesce(sum(incidents), 0) FROM incident_daily WHERE grid_id = %s AND item_code = 'EV-008'"
    before = sql(day, (p["grid_id"],))[0][0]
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as listener:
        listener.execute("LISTEN wangge_live")
        r = client.post(
            "/api/v1/incidents", json=report(p, item="EV-008"), headers=auth(make_token("reporter"))
        )
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
        heard: list[dict[str, Any]] = []
        for note in listener.notifies(timeout=10, stop_after=20):
            msg = json.loads(note.payload)
            if msg.get("k") == "incident":
                heard += msg.get("rows", [msg])
            if any(row.get("id") == iid for row in heard):
                break
    mine = [row for row in heard if row.get("id") == iid]
    assert mine and mine[0]["grid"] == p["grid_id"] and mine[0]["status"] == "assigned"
    assert sql(day, (p["grid_id"],))[0][0] == before + 1


def test_a_failure_inside_the_write_leaves_nothing_and_the_key_stays_free(
    db_url: str, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """The audit insert fails: no case, no event, no reporter, no count, no notice; the retry creates it."""
    from api.web.app import create_app

    p = interior_point(offset=11)
    tok = make_token("reporter")
    key = {"Idempotency-Key": "guarantee-failure-1"}
    counts = (
        "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM incident_events), "
        "(SELECT count(*) FROM incident_reporters), "
        "(SELECT coalesce(sum(incidents), 0) FROM incident_daily), "
        "(SELECT count(*) FROM audit_log WHERE action = 'POST /api/v1/incidents')"
    )
    sql(
        "CREATE FUNCTION test_refuse_intake_audit() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.action = 'POST /api/v1/incidents' THEN RAISE EXCEPTION 'audit store down'; END IF; "
        "RETURN NULL; END $$"
    )
    sql(
        "CREATE TRIGGER test_refuse_intake_audit AFTER INSERT ON audit_log FOR EACH ROW "
        "EXECUTE FUNCTION test_refuse_intake_audit()"
    )
    try:
        before = sql(counts)
        with TestClient(create_app(database_url=db_url), raise_server_exceptions=False) as c:
            r = c.post("/api/v1/incidents", json=report(p, item="EV-011"), headers={**auth(tok), **key})
        assert r.status_code == 500
        assert sql(counts) == before
        assert sql(
            "SELECT count(*) FROM incidents WHERE idempotency_key LIKE %s", ("%:guarantee-failure-1",)
        ) == [(0,)]
    finally:
        sql("DROP TRIGGER test_refuse_intake_audit ON audit_log")
        sql("DROP FUNCTION test_refuse_intake_audit()")
    with TestClient(create_app(database_url=db_url)) as c:
        r = c.post("/api/v1/incidents", json=report(p, item="EV-011"), headers={**auth(tok), **key})
    assert r.status_code == 201 and r.headers.get("Idempotent-Replayed") is None
    after = sql(counts)[0]
    assert after[0] == before[0][0] + 1 and after[4] == before[0][4] + 1


def test_a_burst_of_intakes_larger_than_the_pool_is_answered_and_announced(
    db_url: str, make_token: Any, interior_point: Any, sql: Any
) -> None:
    """More concurrent intakes than pooled connections: every one is stored, announced and answered.

    Each intake holds its connection until its live message is out. The sender once borrowed
    from the same pool, so a burst as large as the pool held every connection waiting for the
    one the sender needed: answers came after the pool's 30 s timeout, their messages dropped.
    It has a connection of its own now.
    """
    import threading

    import httpx

    from api.settings import load_settings
    from api.web.app import create_app

    settings = load_settings()
    settings = settings.model_copy(
        update={"db": settings.db.model_copy(update={"pool_size": 2, "pool_max_overflow": 0})}
    )
    app = create_app(settings, database_url=db_url)
    with serving(app) as live:
        p = interior_point(offset=8)
        n = 8
        tokens = [make_token("reporter") for _ in range(n)]
        barrier = threading.Barrier(n)
        answers: list[int] = []
        lock = threading.Lock()

        def post(tok: str) -> None:
            with httpx.Client(base_url=live.url, timeout=60) as c:
                barrier.wait()
                r = c.post("/api/v1/incidents", json=report(p, item="EV-002"), headers=auth(tok))
                with lock:
                    answers.append(r.status_code)

        threads = [threading.Thread(target=post, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [201] * n
        sender = app.state.live_sender
        assert sender.dropped == 0 and sender.sent >= n
        names = {
            r[0]
            for r in sql("SELECT application_name FROM pg_stat_activity WHERE datname = current_database()")
        }
        assert "wangge-live-send" in names
