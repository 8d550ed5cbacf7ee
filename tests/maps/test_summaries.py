"""The map pages' counts read from the summaries equal the same counts taken from the cases.

The coverage page's grid figures, area totals and heat cells read the whole Beijing days of
a window from ``incident_daily`` and ``incident_cells`` (kept by triggers) and the partial
days at its edges from the cases. Each is compared with the same statement counting every
case (``use_summary=False``) over windows of whole days, windows with partial days at both
edges, a window inside one day, and the whole year, for the city, a district and a
community, with and without an item or category filter; then the cells summary is checked
against a recount after the kinds of change the triggers must follow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from api.store.engine import with_driver
from api.store.sql import maps as q
from api.store.sql.metrics import BEIJING

SqlFn = Callable[..., list[tuple[Any, ...]]]

CELLS_RECOUNT = f"""
    SELECT city_code, (created_at AT TIME ZONE 'Asia/Shanghai')::date, coalesce(community_code, ''),
           item_code,
           floor(ST_Y(location) / {q.HEAT_CELL})::int, floor(ST_X(location) / {q.HEAT_CELL})::int, count(*)
    FROM incidents WHERE duplicate_of IS NULL AND location IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6
"""
CELLS = (
    "SELECT city_code, day, community_code, item_code, iy, ix, incidents FROM incident_cells "
    "WHERE incidents <> 0"
)


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[AsyncConnection]:
    """Yield a read connection to the module's demo store."""
    engine = create_async_engine(with_driver(db_url, "asyncpg"))
    try:
        async with engine.connect() as c:
            yield c
    finally:
        await engine.dispose()


def _areas(sql: SqlFn) -> list[q.PageArea]:
    community, district = sql(
        "SELECT c.code, c.district_code FROM incidents i JOIN communities c ON c.code = i.community_code "
        "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"
    )[0]
    city = sql("SELECT city_code FROM incidents LIMIT 1")[0][0]
    return [
        q.PageArea(None, None, "city", None, city),
        q.PageArea(None, district, "district", None, city),
        q.PageArea(community, None, "community", None, city),
        q.PageArea(None, None, "every city", None, None),
    ]


def _windows(sql: SqlFn) -> list[tuple[dt.datetime, dt.datetime]]:
    last = sql("SELECT max(created_at) FROM incidents")[0][0].astimezone(BEIJING)
    midnight = dt.datetime.combine(last.date(), dt.time(), BEIJING)
    return [
        (midnight - dt.timedelta(days=365), midnight),  # whole days: the summary alone
        (
            midnight - dt.timedelta(days=40, hours=7, minutes=13),
            midnight - dt.timedelta(hours=5),
        ),  # two edges
        (midnight - dt.timedelta(days=3, hours=20), midnight - dt.timedelta(days=3, hours=2)),  # inside a day
        (midnight - dt.timedelta(days=20), midnight - dt.timedelta(days=2, seconds=1)),  # day frames, an edge
        (midnight - dt.timedelta(days=1, hours=12), last + dt.timedelta(microseconds=1)),  # hourly frames
    ]


async def test_pages_count_the_same_from_the_summaries_as_from_the_cases(
    conn: AsyncConnection, sql: SqlFn
) -> None:
    item, category = sql(
        "SELECT i.item_code, s.category FROM incidents i JOIN service_items s ON s.code = i.item_code "
        "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"
    )[0]
    asof = sql("SELECT now()")[0][0]
    seen = 0
    for area in _areas(sql):
        for since, until in _windows(sql):
            where = (area.label, since, until)
            totals = [await q.area_totals(conn, area, since, until, use_summary=u) for u in (True, False)]
            assert totals[0] == totals[1], where
            seen += totals[1].incidents
            grids = [
                await q.grid_stats(conn, area, since, until, asof, 30, use_summary=u) for u in (True, False)
            ]
            assert grids[0] == grids[1], where
            counts = [row[10:15] for row in grids[0].rows]  # incidents, open, overdue, rated, good
            assert all(type(v) is int for row in counts for v in row), where  # plain numbers for the JSON
            for frames in (True, False):
                for it, cat in ((None, None), (item, None), (None, category)):
                    heats = [
                        await q.heat(conn, area, since, until, it, cat, frames, use_summary=u)
                        for u in (True, False)
                    ]
                    assert heats[0] == heats[1], (*where, frames, it, cat)
    assert seen > 1000  # the windows hold cases: the comparison is not between empty pages
    # and the summaries are what the whole days are read from: doubled (then rolled back), they show
    since, until = _windows(sql)[0]
    await conn.execute(text("UPDATE incident_cells SET incidents = incidents * 2"))
    await conn.execute(text("UPDATE incident_daily SET incidents = incidents * 2"))
    city = _areas(sql)[0]
    doubled = await q.heat(conn, city, since, until, frames=False)
    plain = await q.heat(conn, city, since, until, frames=False, use_summary=False)
    totals = await q.area_totals(conn, city, since, until)
    await conn.rollback()
    assert doubled.total == 2 * plain.total and totals.incidents == 2 * plain.total


def _check_cells(sql: SqlFn, when: str) -> int:
    want = {r[:6]: int(r[6]) for r in sql(CELLS_RECOUNT)}
    got = {r[:6]: int(r[6]) for r in sql(CELLS)}
    assert got == want, (when, len(got), len(want))
    return sum(want.values())


def test_cells_summary_equals_a_recount_after_every_kind_of_change(sql: SqlFn) -> None:
    loaded = _check_cells(sql, "after the demo load")
    assert loaded > 500
    # a bulk insert of copies, one statement
    copies = [
        c
        for (c,) in sql(
            "INSERT INTO incidents (city_code, item_code, description, channel, location, grid_id, "
            "community_code, status, created_at, due_at, on_the_spot) "
            "SELECT city_code, item_code, description, channel, location, grid_id, community_code, status, "
            "created_at, due_at, on_the_spot FROM incidents "
            "WHERE duplicate_of IS NULL AND location IS NOT NULL ORDER BY id LIMIT 30 RETURNING id"
        )
    ]
    assert _check_cells(sql, "after a bulk insert") == loaded + 30
    # a case moved (a corrected position), another to a new day, one merged, one unlocated
    sql("UPDATE incidents SET location = ST_Translate(location, 0.0021, -0.0013) WHERE id = %s", (copies[0],))
    sql("UPDATE incidents SET created_at = created_at - interval '30 hours' WHERE id = %s", (copies[1],))
    sql("UPDATE incidents SET duplicate_of = %s WHERE id = %s", (copies[3], copies[2]))
    sql("UPDATE incidents SET location = NULL WHERE id = %s", (copies[4],))
    assert _check_cells(sql, "after moves and a merge") == loaded + 28
    # a status change writes nothing to the cells (zero deltas are not written)
    before = sql("SELECT count(*) FROM incident_cells")[0][0]
    sql("UPDATE incidents SET status = 'closed' WHERE id = ANY(%s)", (copies[5:],))
    assert sql("SELECT count(*) FROM incident_cells")[0][0] == before
    sql("DELETE FROM incidents WHERE id = ANY(%s)", (copies,))
    assert _check_cells(sql, "after a delete") == loaded


def test_the_cells_are_the_pages_cell_size() -> None:
    """The summary's cell (migration 0033) is the heat layer's (``HEAT_CELL``)."""
    from importlib import import_module

    migration = import_module("migrations.versions.0033_heat_cells")
    assert migration.CELL == q.HEAT_CELL
