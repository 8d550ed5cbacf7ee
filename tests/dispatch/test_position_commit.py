"""Position reports commit without waiting for the disk, only in their own transaction.

``DispatchSettings.durable_positions`` (off by default) decides whether a position report's
commit waits for the WAL flush. Relaxing it must never leak to the next transaction on the
same pooled connection (``SET LOCAL``), and the report must be committed and visible to
every reader when the API answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.settings import load_settings
from api.store.engine import make_async_engine
from api.store.sql.people import Pings, record_pings
from tests.conftest import auth


def test_relaxed_commit_stays_in_its_transaction(db_url: str, live_city: Any) -> None:
    ((pid, lon, lat),) = live_city(
        "SELECT id, ST_X(position), ST_Y(position) FROM people WHERE position IS NOT NULL ORDER BY id LIMIT 1"
    )

    async def go() -> list[str]:
        engine = make_async_engine(db_url, load_settings().db)
        seen = []
        try:
            async with engine.connect() as conn:
                # the test cluster runs without fsync and may default to off: start this session on
                await conn.execute(text("SET synchronous_commit = on"))
                await conn.commit()
                for durable in (False, True):
                    async with conn.begin():
                        now = dt.datetime.now(dt.UTC)
                        pings = Pings([pid], [now], [float(lon)], [float(lat)])
                        await record_pings(conn, pings, now - dt.timedelta(days=30), durable=durable)
                        seen.append((await conn.execute(text("SHOW synchronous_commit"))).scalar_one())
                    seen.append((await conn.execute(text("SHOW synchronous_commit"))).scalar_one())
                    await conn.rollback()
        finally:
            await engine.dispose()
        return seen

    assert asyncio.run(go()) == ["off", "on", "on", "on"]


def test_a_report_is_visible_when_answered(client: TestClient, tokens: Any, live_city: Any) -> None:
    ((pid, lon, lat),) = live_city(
        "SELECT id, ST_X(position), ST_Y(position) FROM people WHERE position IS NOT NULL ORDER BY id LIMIT 1"
    )
    assert client.app.state.settings.dispatch.durable_positions is False  # the default
    before = live_city("SELECT count(*) FROM position_history WHERE person_id = %s", (pid,))[0][0]
    r = client.put(
        f"/api/v1/people/{pid}/position",
        json={"lon": lon + 0.0001, "lat": lat, "crs": "wgs84"},
        headers=auth(tokens("dispatcher")),
    )
    assert r.status_code == 200, r.text
    after = live_city("SELECT count(*), max(ST_X(geom)) FROM position_history WHERE person_id = %s", (pid,))
    assert after[0][0] == before + 1 and abs(after[0][1] - (lon + 0.0001)) < 1e-9
    (moved,) = live_city("SELECT ST_X(position) FROM people WHERE id = %s", (pid,))[0]
    assert abs(moved - (lon + 0.0001)) < 1e-9
