"""The desk map's people in a box: the spheroid index's path answers exactly as the plane box.

Migration 0036 left ``people`` one spatial index, on the spheroid; the desk's map box is
searched through it widened by its own size, then decided by the plane box. Boxes of a
map's size take that path, larger ones (up to the whole world) the plane test alone; both
give the people the plane box holds, and a box never answers an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.settings import load_settings
from api.store.engine import make_async_engine
from api.store.sql.desk import people_on_duty, spheroid_box

SqlFn = Callable[..., list[tuple[Any, ...]]]
LIMIT = 100_000


@pytest.fixture(scope="module")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_async_engine(db_url, load_settings().db)
    yield eng
    await eng.dispose()


def _plane(sql: SqlFn, box: tuple[float, float, float, float], fresh: dt.datetime) -> list[int]:
    rows = sql(
        "SELECT id FROM people WHERE on_duty AND position IS NOT NULL AND position_at > %s "
        "AND ST_X(position) BETWEEN %s AND %s AND ST_Y(position) BETWEEN %s AND %s ORDER BY id",
        (fresh, box[0], box[2], box[1], box[3]),
    )
    return [r[0] for r in rows]


async def test_every_box_answers_the_people_of_the_plane_box(engine: AsyncEngine, sql: SqlFn) -> None:
    ((x0, y0, x1, y1),) = sql(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        "FROM (SELECT ST_Extent(position)::geometry e FROM people WHERE on_duty) s"
    )
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    boxes = [
        (cx - 0.004, cy - 0.003, cx + 0.004, cy + 0.003),  # a street
        (cx - 0.02, cy - 0.015, cx, cy),  # a quarter of the city
        (x0, y0, x1, y1),  # everyone, to the edge
        (x0 + 0.0005, y0 + 0.0005, x1 - 0.0005, y1 - 0.0005),
        (cx - 15, cy - 15, cx + 15, cy + 15),  # a continent: the plane test alone
        (-180.0, -90.0, 180.0, 90.0),  # the world
        (170.0, 80.0, 180.0, 90.0),  # a corner of the world: nobody
    ]
    assert [spheroid_box(*b) for b in boxes] == [True, True, True, True, False, False, False]
    fresh = dt.datetime.now(dt.UTC) - dt.timedelta(days=3650)
    async with engine.connect() as conn:
        for box in boxes:
            got = await people_on_duty(conn, box, None, None, fresh, LIMIT)
            want = _plane(sql, box, fresh)
            assert [p.id for p in got] == want, box
    assert len(want) == 0 and len(_plane(sql, boxes[2], fresh)) > 10
