"""The read replica against a real streaming standby: who answers what, lag, down, back.

Proof that the replica answered is twofold: with WAL replay paused on the standby
(``pg_wal_replay_pause()``) a case just filed on the primary is missing from the answer, and
the standby's ``pg_stat_activity`` shows the app's replica connections running the query.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from api.store.cluster import Cluster, Standby
from tests.conftest import auth
from tests.replica.conftest import Replay, SqlFn, wait_for

WINDOW = {"since": "2000-01-01T00:00:00+08:00", "until": "2100-01-01T00:00:00+08:00"}


def _point(sql: SqlFn, offset: int) -> dict[str, float]:
    """A point deep inside an active grid (one grid per test: never a likely duplicate)."""
    lon, lat = sql(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Buffer(geom::geography, -40)::geometry) p "
        "FROM grids WHERE active ORDER BY code OFFSET %s LIMIT 1) s",
        (offset,),
    )[0]
    return {"lon": lon, "lat": lat}


def _file(client: TestClient, token: str, point: dict[str, float], key: str | None = None) -> Any:
    body = {
        "item_code": "EV-006",
        "description": "垃圾堆积，清运不及时",
        "channel": "mini_program",
        "lon": point["lon"],
        "lat": point["lat"],
        "crs": "wgs84",
        "reporter": {"name": "张三", "phone": "13800000000"},
    }
    headers = auth(token) | ({"Idempotency-Key": key} if key else {})
    r = client.post("/api/v1/incidents", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _cases(client: TestClient, token: str) -> int:
    r = client.get("/api/v1/metrics", params=WINDOW, headers=auth(token))
    assert r.status_code == 200, r.text
    return int(r.json()["incidents"])


def _replica_label(client: TestClient) -> str:
    r = client.get("/health")
    assert r.status_code == 200, r.text
    return str(r.json()["replica"])


def _tile(point: dict[str, float], z: int = 14) -> tuple[int, int, int]:
    n = 2**z
    x = int((point["lon"] + 180) / 360 * n)
    lat = math.radians(point["lat"])
    y = int((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * n)
    return z, x, y


class Activity:
    """Which of the app's replica connections ran a statement on the standby since ``mark``."""

    def __init__(self, replica_sql: SqlFn) -> None:
        self.sql = replica_sql
        self.since = self.now()

    def now(self) -> Any:
        return self.sql("SELECT clock_timestamp()")[0][0]

    def mark(self) -> None:
        time.sleep(0.01)
        self.since = self.now()

    def names(self) -> set[str]:
        rows = self.sql(
            "SELECT application_name FROM pg_stat_activity "
            "WHERE application_name IN ('wangge-api-replica', 'wangge-ogc-replica') "
            "AND state_change >= %s AND btrim(query) NOT IN ('', ';') "
            "AND query NOT LIKE '%%pg_is_in_recovery%%'",
            (self.since,),
        )
        return {r[0] for r in rows}


def test_the_standby_is_a_streaming_copy_of_the_primary(
    primary: Cluster, standby: Standby, sql: SqlFn, replica_sql: SqlFn, replay: Replay
) -> None:
    assert replica_sql("SELECT pg_is_in_recovery()")[0][0] is True
    assert standby.port != primary.port and standby.pgdata != primary.pgdata
    assert (standby.pgdata / "standby.signal").exists()
    rows = sql("SELECT state FROM pg_stat_replication")
    assert rows == [("streaming",)]
    slot = sql("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (standby.slot,))
    assert slot == [(True,)]
    replay.caught_up()
    count = "SELECT count(*) FROM grids WHERE active"
    assert replica_sql("SELECT count(*) FROM pg_database WHERE datname = 'wangge'")[0][0] == 1
    assert _runner_count(standby, count) == sql(count)[0][0] > 0


def _runner_count(standby: Standby, query: str) -> int:
    import psycopg

    from api.store.engine import psycopg_dsn

    with psycopg.connect(psycopg_dsn(standby.app_url), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_lagging_reads_come_from_the_replica_and_your_writes_from_the_primary(
    make_client: Callable[..., Any],
    make_token: Callable[..., str],
    sql: SqlFn,
    replica_sql: SqlFn,
    replay: Replay,
) -> None:
    admin, reporter = make_token("admin"), make_token("reporter")
    point = _point(sql, 0)
    with make_client(replica_max_lag_s=3600, replica_check_s=0.2) as c:
        assert _replica_label(c) == "ok"
        before = _cases(c, admin)
        activity = Activity(replica_sql)
        replay.pause()
        try:
            # a write and the reads of its own result: on the primary, replay paused or not
            key = uuid.uuid4().hex
            case = _file(c, reporter, point, key)
            again = _file(c, reporter, point, key)  # the idempotency check reads the primary
            assert again["id"] == case["id"]
            assert sql("SELECT count(*) FROM incidents WHERE id = %s", (case["id"],))[0][0] == 1
            mine = c.get(f"/api/v1/incidents/{case['id']}", headers=auth(admin))
            assert mine.status_code == 200 and mine.json()["id"] == case["id"]

            # the reads that may lag: answered by the paused replica, which has not seen the case
            activity.mark()
            assert _cases(c, admin) == before
            item = c.get(f"/ogc/collections/ogc.incidents/items/{case['id']}", headers=auth(admin))
            assert item.status_code == 404, item.text
            z, x, y = _tile(point)
            tile = c.get(f"/tiles/incidents/{z}/{x}/{y}", headers=auth(admin))
            assert tile.status_code in (200, 204)
            assert activity.names() == {"wangge-api-replica", "wangge-ogc-replica"}

            health = c.get("/health", headers=auth(admin)).json()
            assert health["replica"] == "ok"
            assert health["replica_state"]["paused"] is True and health["replica_state"]["serving"] is True
        finally:
            replay.resume()
        wait_for(lambda: _cases(c, admin) == before + 1, what="the replica to show the case")
        item = c.get(f"/ogc/collections/ogc.incidents/items/{case['id']}", headers=auth(admin))
        assert item.status_code == 200 and str(item.json()["id"]) == str(case["id"])
        assert c.get("/health").json() == {"status": "ok", "replica": "ok"}  # anonymous: status only


def test_console_pages_after_sign_in_with_replay_paused(
    make_client: Callable[..., Any],
    make_token: Callable[..., str],
    replica_sql: SqlFn,
    replay: Replay,
) -> None:
    import re

    manager = make_token("admin")
    with make_client(replica_max_lag_s=3600, replica_check_s=0.2) as c:
        activity = Activity(replica_sql)
        replay.pause()
        try:
            form = c.get("/console/login", headers={"Accept": "text/html"})
            nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert nonce, form.text[:300]
            # the session row is written on the primary, never replayed here: its lookup reads the primary
            r = c.post(
                "/console/login",
                data={"token": manager, "csrf_token": nonce.group(1)},
                headers={"Accept": "text/html"},
            )
            assert r.status_code == 200 and "/console/login" not in str(r.url), r.text[:300]
            activity.mark()
            page = c.get("/console/map", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "/console/login" not in str(page.url)
            dash = c.get("/console/dashboard", headers={"Accept": "text/html"})
            assert dash.status_code == 200 and "data-kpi" in dash.text
            assert "wangge-api-replica" in activity.names()
        finally:
            replay.resume()


def test_a_lagging_replica_sends_reads_to_the_primary_until_it_catches_up(
    make_client: Callable[..., Any],
    make_token: Callable[..., str],
    sql: SqlFn,
    replica_sql: SqlFn,
    replay: Replay,
) -> None:
    admin, reporter = make_token("admin"), make_token("reporter")
    with make_client(replica_max_lag_s=1, replica_check_s=0.2) as c:
        wait_for(lambda: _replica_label(c) == "ok", what="replica ok")
        before = _cases(c, admin)
        replay.pause()
        try:
            case = _file(c, reporter, _point(sql, 1))
            label = wait_for(
                lambda: (lbl := _replica_label(c)).startswith("lagging") and lbl, what="lagging in /health"
            )
            assert label.endswith("s → primary"), label
            state = c.get("/health", headers=auth(admin)).json()["replica_state"]
            assert state["state"] == "lagging" and state["serving"] is False and state["lag_s"] > 1
            assert state["max_lag_s"] == 1
            # answered by the primary: the case is there although the replica has not replayed it
            assert _cases(c, admin) == before + 1
            item = c.get(f"/ogc/collections/ogc.incidents/items/{case['id']}", headers=auth(admin))
            assert item.status_code == 200, item.text
            assert replica_sql("SELECT count(*) FROM incidents WHERE id = %s", (case["id"],))[0][0] == 0
        finally:
            replay.resume()
        wait_for(lambda: _replica_label(c) == "ok", what="replica ok again")
        activity = Activity(replica_sql)
        assert _cases(c, admin) == before + 1
        assert "wangge-api-replica" in activity.names()


def test_a_replica_that_is_down_falls_back_to_the_primary_and_is_used_again_when_back(
    make_client: Callable[..., Any],
    make_token: Callable[..., str],
    standby: Standby,
    sql: SqlFn,
    replica_sql: SqlFn,
    replay: Replay,
) -> None:
    admin, reporter = make_token("admin"), make_token("reporter")
    point = _point(sql, 2)
    z, x, y = _tile(point)
    with make_client(replica_max_lag_s=3600, replica_check_s=0.2) as c:
        wait_for(lambda: _replica_label(c) == "ok", what="replica ok")
        before = _cases(c, admin)
        assert c.get("/ogc/collections/ogc.incidents/items", headers=auth(admin)).status_code == 200
        standby.stop()
        try:
            # at once, before the background check noticed: no 500, the primary answers
            assert _cases(c, admin) == before
            assert c.get(f"/tiles/incidents/{z}/{x}/{y}", headers=auth(admin)).status_code in (200, 204)
            assert c.get("/maps/heatmap", headers=auth(admin)).status_code == 200
            items = c.get("/ogc/collections/ogc.incidents/items", headers=auth(admin))
            assert items.status_code == 200, items.text
            wait_for(lambda: _replica_label(c) == "down → primary", what="down in /health")
            health = c.get("/health", headers=auth(admin))
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert health.json()["replica_state"]["serving"] is False
            _file(c, reporter, point)
            assert _cases(c, admin) == before + 1
        finally:
            standby.start()
        wait_for(lambda: _replica_label(c) == "ok", what="replica back in /health")
        replay.caught_up()
        # back in use: with replay paused, a new case is missing from what the replica answers
        replay.pause()
        try:
            new = _file(c, reporter, _point(sql, 3))
            activity = Activity(replica_sql)
            assert _cases(c, admin) == before + 1
            gone = c.get(f"/ogc/collections/ogc.incidents/items/{new['id']}", headers=auth(admin))
            assert gone.status_code == 404
            assert activity.names() == {"wangge-api-replica", "wangge-ogc-replica"}
        finally:
            replay.resume()
        wait_for(lambda: _cases(c, admin) == before + 2, what="the replica to show both cases")
