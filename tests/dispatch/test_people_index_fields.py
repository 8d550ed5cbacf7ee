"""A catch-up reads a person whole only when more than the position changed (migration 0038).

``people.fields_xid`` names the transaction that last changed what the people index holds
of a person besides the position: a catch-up returns the people written since who only
moved as ids, positions and times, and the others whole. These tests write behind the
index's back, on PostGIS, and check what a catch-up returns, that the index caught up on
moves equals a fresh build, that the console's observers still get whole people, that the
stamp's trigger covers every field the index holds, and that a mover the index never read
whole sends requests to PostGIS until the next build.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import asyncpg

from api.services.dispatch import people_index as pi
from api.store.engine import psycopg_dsn
from api.store.sql.dispatch import IndexedPerson, Moves, PeopleFilter, Snapshot, index_changes

SqlFn = Callable[..., list[tuple[Any, ...]]]

#: what the index holds of a person besides where and when they were last seen
HELD = [f for f in IndexedPerson._fields if f not in ("lon", "lat", "position_at")]


def _snapshot(sql: SqlFn) -> Snapshot:
    xmax, xip = sql(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
        "ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(pg_current_snapshot()) x)"
    )[0]
    return Snapshot(int(xmax), tuple(xip))


async def _changes(db_url: str, since: Snapshot, ids: list[int]) -> Any:
    conn = await asyncpg.connect(psycopg_dsn(db_url))
    try:
        return await index_changes(conn, since, ids)
    finally:
        await conn.close()


def _located(sql: SqlFn, n: int) -> list[int]:
    rows = sql("SELECT id FROM people WHERE position IS NOT NULL AND on_duty ORDER BY id LIMIT %s", (n,))
    return [r[0] for r in rows]


def test_the_stamp_covers_every_field_the_index_holds(live_city: SqlFn) -> None:
    (columns,) = live_city(
        "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_trigger t "
        "JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY(t.tgattr) "
        "WHERE t.tgrelid = 'people'::regclass AND t.tgname = 'people_stamp_fields'"
    )[0]
    assert columns == sorted(HELD)


async def test_moves_come_as_moves_and_other_changes_whole(db_url: str, live_city: SqlFn) -> None:
    a, b, c, d, f = _located(live_city, 5)
    (unlocated,) = live_city(  # someone never located yet
        "INSERT INTO people (city_code, name, role, community_code) "
        "SELECT city_code, 'unlocated', 'volunteer', community_code FROM people WHERE id = %s RETURNING id",
        (a,),
    )[0]
    since = _snapshot(live_city)
    live_city(  # a ping moves a, as the position writers do: position and time only
        "UPDATE people SET position = ST_Translate(position, 0.0001, 0), position_at = now() WHERE id = %s",
        (a,),
    )
    live_city("UPDATE people SET capacity = capacity + 1 WHERE id = %s", (b,))
    live_city(
        "UPDATE people SET position = ST_Translate(position, 0.0001, 0), skills = skills || '{ladder}' "
        "WHERE id = %s",
        (c,),
    )
    live_city("UPDATE people SET on_duty = on_duty WHERE id = %s", (d,))  # set, even to the same value
    live_city("UPDATE people SET on_duty = false WHERE id = %s", (f,))  # changed, then moved
    live_city("UPDATE people SET position = ST_Translate(position, 0, 0.0001) WHERE id = %s", (f,))
    live_city(  # located for the first time: the index could not hold them yet
        "UPDATE people SET position = ST_SetSRID(ST_MakePoint(118.5, 31.7), 4326), position_at = now() "
        "WHERE id = %s",
        (unlocated,),
    )
    (new,) = live_city(
        "INSERT INTO people (city_code, name, role, community_code, position, position_at) "
        "SELECT city_code, 'new', 'volunteer', community_code, position, now() FROM people WHERE id = %s "
        "RETURNING id",
        (a,),
    )[0]
    try:
        got = await _changes(db_url, since, [a, b])
        assert got.moves.ids == [a]
        (lon, lat) = live_city("SELECT ST_X(position), ST_Y(position) FROM people WHERE id = %s", (a,))[0]
        assert (got.moves.lons, got.moves.lats) == ([lon], [lat])
        assert isinstance(got.moves.ats[0], dt.datetime)
        assert sorted(p.id for p in got.people) == sorted([b, c, d, f, unlocated, new])
        assert got.present == frozenset([a, b])
        # the next catch-up, from the snapshot this one returned, finds nothing new
        again = await _changes(db_url, got.snapshot, [])
        assert (again.people, again.moves.ids) == ([], [])
        live_city("UPDATE people SET position = NULL WHERE id = %s", (unlocated,))  # a position taken away
        gone = await _changes(db_url, got.snapshot, [])
        assert gone.moves == Moves([unlocated], [None], [None], [gone.moves.ats[0]])
    finally:
        live_city("DELETE FROM people WHERE id = ANY(%s)", ([new, unlocated],))
        live_city("UPDATE people SET on_duty = true WHERE id = %s", (f,))


async def test_an_index_caught_up_on_moves_equals_a_fresh_build(
    engine, db_url: str, live_city: SqlFn
) -> None:
    caught = pi.PeopleIndex(engine, db_url)
    await caught.build()
    seen: list[IndexedPerson] = []
    caught.observers.append(seen.extend)
    try:
        ids = _located(live_city, 300)
        far = ids[::2]
        live_city(  # half leave their cell, half move a metre: positions and times only
            "UPDATE people SET position_at = now(), "
            "position = ST_Translate(position, CASE WHEN id = ANY(%s) THEN 0.004 ELSE 0.00001 END, 0) "
            "WHERE id = ANY(%s)",
            (far, ids),
        )
        await caught.catch_up()
        fresh = pi.PeopleIndex(engine, db_url)
        await fresh.build()
        try:
            mine, theirs = caught._table, fresh._table
            assert mine is not None and theirs is not None
            for pid in ids:  # every field, position and time included, as a fresh read has them
                i, j = mine.slot[pid], theirs.slot[pid]
                assert mine.person[i] == theirs.person[j]
                assert mine.cell[i][1:] == theirs.cell[j][1:]
                assert mine.xyz[i].tolist() == theirs.xyz[j].tolist()
            # the console's live feed got each mover whole, as stored now
            assert {p.id: p for p in seen} == {pid: theirs.person[theirs.slot[pid]] for pid in ids}
            assert not mine.incomplete
        finally:
            await fresh.close()
    finally:
        await caught.close()


async def test_a_mover_never_read_whole_sends_requests_to_postgis_until_a_build(
    engine, db_url: str, live_city: SqlFn
) -> None:
    index = pi.PeopleIndex(engine, db_url)
    await index.build()
    try:
        table = index._table
        assert table is not None
        (pid,) = _located(live_city, 1)
        (lon, lat) = live_city("SELECT ST_X(position), ST_Y(position) FROM people WHERE id = %s", (pid,))[0]
        flt = PeopleFilter(available=False)
        fresh_after = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        assert await index.found(lon, lat, 3, flt, fresh_after) is not None
        table.drop(pid, 2**62)  # as if the index had never read this person whole
        live_city("UPDATE people SET position = ST_Translate(position, 0.0001, 0) WHERE id = %s", (pid,))
        assert await index.found(lon, lat, 3, flt, fresh_after) is None  # PostGIS answers
        assert table.incomplete and index.fallbacks >= 1
        await index.build()  # what the poller does next
        rebuilt = index._table
        assert rebuilt is not None and not rebuilt.incomplete
        got = await index.found(lon + 0.0001, lat, 3, flt, fresh_after)
        assert got is not None
        ids, lons, _ = got.points()
        assert lons[ids.index(pid)] == lon + 0.0001 and got.distances[ids.index(pid)] < 0.01
    finally:
        await index.close()
