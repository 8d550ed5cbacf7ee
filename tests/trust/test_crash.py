"""Crash safety: SIGKILL the server mid-burst and mid-publish; nothing acknowledged is lost.

The server runs in a SUBPROCESS (uvicorn, trust layer installed) on a free
port against the module's own database, and is killed with SIGKILL — no
shutdown hooks, no flush. After a restart:

* every incident whose intake was acknowledged (201) is in the store, with its
  grid and status, and a retry of an unanswered request with the same
  Idempotency-Key never makes a second incident;
* a plan publish killed at any moment left exactly one active plan in the
  community, grids' ``active`` flags matching it, and every building pointing
  at a grid of the active plan (no half-applied plan).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.store.cluster import free_port
from api.web.deps import TxDep
from tests.conftest import auth
from tests.trust.conftest import ServerProcess as Server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def server(db_url: str) -> Iterator[Server]:
    s = Server(db_url)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def intake(sql: Callable[..., list[tuple[Any, ...]]], area: dict[str, Any]) -> dict[str, Any]:
    lon, lat = sql(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE id = %s",
        (area["grid_id"],),
    )[0]
    item = sql("SELECT code FROM service_items ORDER BY code LIMIT 1")[0][0]
    return {
        "item_code": item,
        "description": "burst",
        "channel": "mini_program",
        "lon": lon,
        "lat": lat,
        "crs": "wgs84",
    }


async def burst(
    url: str, token: str, body: dict[str, Any], clients: int, kill_after: int, kill: Callable[[], None]
) -> tuple[dict[str, int], list[str]]:
    """Intake from ``clients`` loops until the server dies; returns acked keys→ids and unanswered keys."""
    acked: dict[str, int] = {}
    unanswered: list[str] = []
    stop = asyncio.Event()

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            i = 0
            while not stop.is_set():
                key = f"crash-{n}-{i}"
                i += 1
                try:
                    r = await c.post(
                        "/api/v1/incidents",
                        json={**body, "description": key},
                        headers={**auth(token), "Idempotency-Key": key},
                    )
                except httpx.HTTPError:
                    unanswered.append(key)
                    return
                if r.status_code == 201:
                    acked[key] = int(r.json()["id"])
                else:
                    raise AssertionError(f"intake answered {r.status_code}: {r.text[:200]}")

    async def killer() -> None:
        # kill mid-burst: once enough intakes were acknowledged (or after a bound)
        deadline = time.monotonic() + 60
        while len(acked) < kill_after and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(kill)
        stop.set()

    await asyncio.gather(killer(), *[client(n) for n in range(clients)])
    return acked, unanswered


def test_sigkill_during_intake_burst_loses_no_acknowledged_incident(
    server: Server,
    tokens: dict[str, str],
    intake: dict[str, Any],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    acked, unanswered = asyncio.run(
        burst(server.url, tokens["reporter"], intake, clients=16, kill_after=40, kill=server.kill)
    )
    assert len(acked) >= 20, "the burst did not get going before the kill"
    assert unanswered, "the kill did not land mid-burst"
    rows = sql(
        "SELECT id, description, status, grid_id FROM incidents WHERE id = ANY(%s)", (list(acked.values()),)
    )
    stored = {r[0]: r for r in rows}
    missing = [k for k, i in acked.items() if i not in stored]
    assert not missing, f"acknowledged incidents lost: {missing[:10]}"
    assert all(stored[i][1] == k and stored[i][2] and stored[i][3] for k, i in acked.items())
    # restart; retrying unanswered requests with their keys never duplicates
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for key in unanswered + list(acked)[:5]:
            r = c.post(
                "/api/v1/incidents",
                json={**intake, "description": key},
                headers={**auth(tokens["reporter"]), "Idempotency-Key": key},
            )
            assert r.status_code == 201, r.text
            if key in acked:
                assert int(r.json()["id"]) == acked[key]
    keys = unanswered + list(acked)
    counts = sql(
        "SELECT description, count(*) FROM incidents WHERE description = ANY(%s) "
        "GROUP BY 1 HAVING count(*) > 1",
        (keys,),
    )
    assert not counts, f"duplicates after retry: {counts[:5]}"


def plan_state(sql: Callable[..., list[tuple[Any, ...]]], community: str) -> dict[str, Any]:
    active = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))
    flagged = sql("SELECT DISTINCT plan_id FROM grids WHERE community_code = %s AND active", (community,))
    stray = sql(
        "SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id "
        "WHERE b.community_code = %s AND NOT g.active",
        (community,),
    )[0][0]
    return {"active": [r[0] for r in active], "flagged": [r[0] for r in flagged], "stray": stray}


def test_sigkill_during_plan_publish_leaves_no_half_applied_plan(
    server: Server,
    new_token: Callable[..., str],
    area: dict[str, Any],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    community = area["community"]
    planner = new_token("planner", community_code=community)
    outcomes = []
    for delay in (0.05, 0.4):
        with httpx.Client(base_url=server.url, timeout=300) as c:
            draft = c.post(
                "/api/v1/plans", json={"community": community, "grids": 12, "seed": 7}, headers=auth(planner)
            )
            assert draft.status_code == 201, draft.text
            plan_id = draft.json()["id"]
        before = plan_state(sql, community)

        async def publish_and_kill(plan_id: int = plan_id, delay: float = delay) -> int | None:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
                req = asyncio.create_task(c.post(f"/api/v1/plans/{plan_id}/publish", headers=auth(planner)))
                await asyncio.sleep(delay)
                if not req.done():
                    await asyncio.to_thread(server.kill)
                try:
                    return (await req).status_code
                except httpx.HTTPError:
                    return None

        status = asyncio.run(publish_and_kill())
        server.stop()
        after = plan_state(sql, community)
        assert len(after["active"]) == 1, after
        assert after["flagged"] == after["active"], after
        assert after["stray"] == 0, after
        if status == 200:
            assert after["active"] == [plan_id]
        else:
            assert after["active"] in ([plan_id], before["active"])
        outcomes.append((delay, status, after["active"] == [plan_id]))
        server.start()
    assert any(s is None for _, s, _ in outcomes) or all(s == 200 for _, s, _ in outcomes)
    # an undisturbed publish leaves its audit entry, written in the publish's own transaction
    with httpx.Client(base_url=server.url, timeout=300) as c:
        plan_id = c.post(
            "/api/v1/plans", json={"community": community, "grids": 12, "seed": 9}, headers=auth(planner)
        ).json()["id"]
        assert c.post(f"/api/v1/plans/{plan_id}/publish", headers=auth(planner)).status_code == 200
    entry = sql(
        "SELECT before, after, changed, role FROM audit_log WHERE action = 'plan.publish' AND entity_id = %s",
        (str(plan_id),),
    )
    assert len(entry) == 1
    assert entry[0][0]["status"] == "draft" and entry[0][1]["status"] == "active"
    assert "status" in entry[0][2] and entry[0][3] == "planner"


def test_sigkill_during_batch_import_leaves_a_record_and_rerun_resumes(
    db_url: str,
    area: dict[str, Any],
    sql: Callable[..., list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    """``wangge import buildings`` killed mid-file: the journal says where it stopped, a rerun ends it."""
    import geopandas as gpd
    import shapely

    community = area["community"]
    wkt = sql("SELECT ST_AsText(geom) FROM communities WHERE code = %s", (community,))[0][0]
    poly = shapely.from_wkt(wkt)
    x0, y0, x1, y1 = poly.bounds
    step = ((x1 - x0) * (y1 - y0)) ** 0.5 / 150  # about 150 × 150 over the box, whatever its shape
    geoms, rows = [], []
    i = 0
    y = y0
    while y < y1:
        x = x0
        while x < x1:
            box = shapely.box(x, y, x + step * 0.4, y + step * 0.4)
            if poly.contains(box.centroid):
                geoms.append(box)
                rows.append({"id": f"t{i}", "households": 8, "levels": 3})
                i += 1
            x += step
        y += step
    assert len(geoms) > 5000
    path = tmp_path / "buildings.geojson"
    gpd.GeoDataFrame(rows, geometry=geoms, crs=4326).to_file(path)
    prefix = f"{community}-t%"

    def run() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api.cli.main",
                "import",
                "buildings",
                str(path),
                "--community",
                community,
            ],
            cwd=ROOT,
            env={**os.environ, "WANGGE_DATABASE_URL": db_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    proc = run()
    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        got = sql(
            "SELECT rows_done FROM import_runs WHERE kind = 'buildings' "
            "AND community_code = %s ORDER BY id DESC LIMIT 1",
            (community,),
        )
        done = got[0][0] if got else 0
        if done > 0:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    status, done, total = sql(
        "SELECT status, rows_done, rows_total FROM import_runs WHERE kind = 'buildings' "
        "AND community_code = %s ORDER BY id DESC LIMIT 1",
        (community,),
    )[0]
    assert total == len(geoms) and 0 < done < total and status == "running", (status, done, total)
    # the record of where it stopped matches what is in the store: whole batches only
    assert sql("SELECT count(*) FROM buildings WHERE code LIKE %s", (prefix,))[0][0] == done
    rerun = run()
    assert rerun.wait(timeout=300) == 0
    assert sql("SELECT count(*), count(DISTINCT code) FROM buildings WHERE code LIKE %s", (prefix,))[0] == (
        total,
        total,
    )
    assert sql(
        "SELECT status, rows_done FROM import_runs WHERE kind = 'buildings' "
        "AND community_code = %s ORDER BY id DESC LIMIT 1",
        (community,),
    )[0] == ("done", total)


def test_sigkill_inside_the_publish_transaction_rolls_it_back(
    server: Server,
    new_token: Callable[..., str],
    area: dict[str, Any],
    db_url: str,
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    """Deterministic: publish is held half-way (a row lock on one of the new grids), then killed.

    By then the transaction has retired the old plan and activated the new one;
    the kill means COMMIT never comes, so the store keeps the old active plan.
    """
    import psycopg

    from api.store.engine import psycopg_dsn

    community = area["community"]
    planner = new_token("planner", community_code=community)
    with httpx.Client(base_url=server.url, timeout=300) as c:
        draft = c.post(
            "/api/v1/plans", json={"community": community, "grids": 11, "seed": 3}, headers=auth(planner)
        )
        assert draft.status_code == 201, draft.text
    plan_id = draft.json()["id"]
    before = plan_state(sql, community)
    assert len(before["active"]) == 1 and before["active"] != [plan_id]
    blocker = psycopg.connect(psycopg_dsn(db_url))
    try:
        blocker.execute("SELECT id FROM grids WHERE plan_id = %s ORDER BY id LIMIT 1 FOR UPDATE", (plan_id,))

        async def publish_held_then_kill() -> int | None:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
                req = asyncio.create_task(c.post(f"/api/v1/plans/{plan_id}/publish", headers=auth(planner)))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # wait until publish waits on our lock
                    waiting = sql(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND wait_event_type = 'Lock'"
                    )[0][0]
                    if waiting:
                        break
                    await asyncio.sleep(0.05)
                assert waiting, "publish never reached the held grid"
                await asyncio.to_thread(server.kill)
                try:
                    return (await req).status_code
                except httpx.HTTPError:
                    return None

        assert asyncio.run(publish_held_then_kill()) is None
    finally:
        blocker.rollback()  # the held publish wakes up, finds its client gone, never commits
        blocker.close()
    deadline = time.monotonic() + 30
    while sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'wangge-api' AND state <> 'idle'"
    )[0][0]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    after = plan_state(sql, community)
    assert after == before, (before, after)
    assert sql("SELECT status FROM plans WHERE id = %s", (plan_id,))[0][0] == "draft"
    assert not sql(
        "SELECT 1 FROM audit_log WHERE action = 'plan.publish' AND entity_id = %s", (str(plan_id),)
    )


def test_tx_dependency_commits_before_the_response(
    db_url: str, sql: Callable[..., list[tuple[Any, ...]]], tokens: dict[str, str]
) -> None:
    """A write acknowledged with 2xx is committed: a commit that fails is never a success."""
    from tests.trust.conftest import secure_app

    sql("CREATE TABLE IF NOT EXISTS trust_commit_probe (v int)")
    sql(
        "CREATE OR REPLACE FUNCTION trust_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
    )
    sql("DROP TRIGGER IF EXISTS trust_refuse_at_commit ON trust_commit_probe")
    sql(
        "CREATE CONSTRAINT TRIGGER trust_refuse_at_commit AFTER INSERT ON trust_commit_probe "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION trust_refuse()"
    )
    app = secure_app(db_url)

    @app.post("/trust-test/commit")
    async def write(tx: TxDep) -> dict[str, bool]:
        from sqlalchemy import text

        await tx.execute(text("INSERT INTO trust_commit_probe VALUES (1)"))
        return {"ok": True}

    import threading

    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        assert thread.is_alive()
        time.sleep(0.02)
    try:  # a real server (the test client would wait for the app to finish)
        r = httpx.post(
            f"http://127.0.0.1:{port}/trust-test/commit", headers=auth(tokens["admin"]), timeout=30
        )
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
    assert r.status_code >= 500, r.text
    assert sql("SELECT count(*) FROM trust_commit_probe")[0][0] == 0
