"""The in-process people index answers nearest queries exactly as PostGIS does, and stays current.

* For many points and every filter (role, skill, availability with open load, duty,
  shift, capacity, party member, party branch, community, district, city, excluded
  ids, k from 1 to 100) the index's answer equals PostGIS's exact spheroid ranking
  (:func:`api.store.sql.dispatch.nearest_straight`): same people, same order, same
  distances.
* A write is seen by the next request of the same process (read-your-writes), whatever
  wrote it (the product's endpoint or a statement behind its back), and by the poller
  within 100 ms; a person deleted behind its back drops out of the next answer (the poller
  cannot see a delete: the request checks its candidates still exist); a task accepted
  makes a person busy at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from api.services.dispatch.people_index import PeopleIndex
from api.store.sql.dispatch import PeopleFilter, index_changes_sql, nearest_straight
from tests.conftest import auth

URL = "/api/v1/dispatch/nearest"
SqlFn = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
async def index(engine: AsyncEngine, db_url: str) -> AsyncIterator[PeopleIndex]:
    idx = PeopleIndex(engine, db_url)
    await idx.build()
    await idx.start()
    yield idx
    await idx.close()


def _centre(sql: SqlFn) -> tuple[float, float]:
    ((lon, lat),) = sql(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(position)) c FROM people) x"
    )
    return float(lon), float(lat)


def _fresh() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=15)


async def _both(
    engine: AsyncEngine, index: PeopleIndex, lon: float, lat: float, k: int, flt: PeopleFilter
) -> tuple[list[Any], list[Any]]:
    fresh = _fresh()
    async with engine.connect() as conn:
        got = await index.nearest(lon, lat, k, flt, fresh)
        want = await nearest_straight(conn, lon, lat, k, flt, fresh)
    assert got is not None, "the index gave up"
    return got, want


def _same(got: list[Any], want: list[Any]) -> None:
    assert [r.id for r in got] == [r.id for r in want]
    for g, w in zip(got, want, strict=True):
        assert abs(g.distance_m - w.distance_m) < 1e-6
        assert (g.load, g.capacity, g.on_duty, g.name, g.lon, g.lat) == (
            w.load,
            w.capacity,
            w.on_duty,
            w.name,
            w.lon,
            w.lat,
        )


@pytest.fixture(scope="module")
def busy(live_city: SqlFn) -> list[int]:
    """Make the people nearest the centre busy: accepted tasks up to their capacity for some."""
    lon, lat = _centre(live_city)
    rows = live_city(
        "SELECT p.id, p.capacity FROM people p WHERE p.on_duty AND p.position IS NOT NULL "
        "ORDER BY p.position <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 40",
        (lon, lat),
    )
    tasks = [r[0] for r in live_city("SELECT id FROM tasks ORDER BY id")]
    assert len(tasks) >= 20, "the demo city has tasks to assign"
    made: list[int] = []
    it = iter(tasks)
    for pid, capacity in rows[::2][:10]:
        for _ in range(capacity):
            live_city("UPDATE tasks SET status = 'accepted', assignee_id = %s WHERE id = %s", (pid, next(it)))
        made.append(pid)
    return made


def _filters(sql: SqlFn) -> list[tuple[int, PeopleFilter]]:
    city, community = sql(
        "SELECT city_code, community_code FROM people WHERE community_code IS NOT NULL LIMIT 1"
    )[0]
    branch = sql(
        "SELECT o.id FROM party_orgs o WHERE o.tier = 'branch' AND EXISTS (SELECT 1 FROM party_members m "
        "JOIN party_orgs x ON x.id = m.org_id WHERE x.id = o.id OR x.parent_id = o.id) LIMIT 1"
    )[0][0]
    skill = sql("SELECT s FROM people, unnest(skills) s GROUP BY s ORDER BY count(*) DESC LIMIT 1")[0][0]
    some = tuple(r[0] for r in sql("SELECT id FROM people WHERE position IS NOT NULL ORDER BY id LIMIT 300"))
    return [
        (5, PeopleFilter()),
        (1, PeopleFilter(role="volunteer")),
        (10, PeopleFilter(role="rider")),
        (20, PeopleFilter(available=False)),
        (100, PeopleFilter(available=False, city=city)),
        (7, PeopleFilter(role="police", available=False)),
        (10, PeopleFilter(skill=skill)),
        (5, PeopleFilter(party_member=True)),
        (5, PeopleFilter(party_member=False, role="volunteer")),
        (8, PeopleFilter(community=community, available=False)),
        (8, PeopleFilter(community=community)),
        (12, PeopleFilter(district=community[:6])),
        (30, PeopleFilter(party_branch_id=int(branch), available=False)),
        (5, PeopleFilter(party_branch_id=int(branch))),
        (10, PeopleFilter(exclude=some)),
        (5, PeopleFilter(city="999999")),
    ]


async def test_index_ranks_as_postgis_with_every_filter(
    engine: AsyncEngine, index: PeopleIndex, live_city: SqlFn, busy: list[int]
) -> None:
    clon, clat = _centre(live_city)
    rng = np.random.default_rng(11)
    points = [(clon, clat)] + [(clon + dx, clat + dy) for dx, dy in rng.uniform(-0.03, 0.03, (5, 2))]
    # far outside the city: the rings give up and the whole table is scanned
    points.append((clon + 0.5, clat - 0.4))
    answered = 0
    for k, flt in _filters(live_city):
        for lon, lat in points:
            got, want = await _both(engine, index, lon, lat, k, flt)
            _same(got, want)
            answered += len(got)
    assert answered > 500
    # the busy people are skipped when availability counts, listed with their load otherwise
    got, _ = await _both(engine, index, clon, clat, 40, PeopleFilter())
    assert not set(busy) & {r.id for r in got}
    got, _ = await _both(engine, index, clon, clat, 60, PeopleFilter(available=False))
    loads = {r.id: (r.load, r.capacity) for r in got}
    assert any(pid in loads and loads[pid][0] >= loads[pid][1] for pid in busy)


async def _nearest_one(engine: AsyncEngine, index: PeopleIndex, lon: float, lat: float) -> Any:
    rows = await index.nearest(lon, lat, 1, PeopleFilter(available=False), _fresh())
    assert rows is not None
    return rows[0]


async def test_writes_behind_its_back_are_seen_by_the_next_request(
    engine: AsyncEngine, index: PeopleIndex, live_city: SqlFn
) -> None:
    clon, clat = _centre(live_city)
    far = clon + 0.2, clat + 0.2  # nobody there
    pid = live_city("SELECT id FROM people WHERE position IS NOT NULL ORDER BY id LIMIT 1")[0][0]
    old = live_city("SELECT ST_X(position), ST_Y(position), position_at FROM people WHERE id = %s", (pid,))[0]
    polls = index.polls
    try:
        live_city(
            "UPDATE people SET position = ST_SetSRID(ST_MakePoint(%s, %s), 4326), position_at = now() "
            "WHERE id = %s",
            (far[0], far[1], pid),
        )
        first = await _nearest_one(engine, index, far[0] + 0.0001, far[1])
        assert first.id == pid and abs(first.lon - far[0]) < 1e-9
        # the poller catches up on its own too, well within 100 ms
        t0 = time.monotonic()
        while index.polls < polls + 3:
            await asyncio.sleep(0.01)
        assert time.monotonic() - t0 < 1.0
        # a person removed from the store drops out of the answers
        live_city("UPDATE people SET position = NULL WHERE id = %s", (pid,))
        other = await _nearest_one(engine, index, far[0] + 0.0001, far[1])
        assert other.id != pid
    finally:
        live_city(
            "UPDATE people SET position = ST_SetSRID(ST_MakePoint(%s, %s), 4326), position_at = %s "
            "WHERE id = %s",
            (old[0], old[1], old[2], pid),
        )


async def test_moves_within_and_across_cells_then_a_duty_change_rank_as_postgis(
    engine: AsyncEngine, index: PeopleIndex, live_city: SqlFn
) -> None:
    """A position-only write takes the index's short path (cells, no filter log): answers stay exact.

    The person moves a few metres (same cell), then about a kilometre (another cell), then
    goes off duty: after each write the index answers as PostGIS does around the old and
    the new place, with and without the availability filter (whose cached mask must see the
    duty change although the moves before it were not logged for it).
    """
    clon, clat = _centre(live_city)
    # a volunteer near the centre (among many), and a place about a kilometre away among others
    pid, hx, hy = live_city(
        "SELECT id, ST_X(position), ST_Y(position) FROM people WHERE position IS NOT NULL AND on_duty "
        "AND role = 'volunteer' AND capacity > 0 "
        "ORDER BY position <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1",
        (clon, clat),
    )[0]
    bx, by = live_city(
        "SELECT ST_X(position), ST_Y(position) FROM people WHERE position IS NOT NULL AND role = 'volunteer' "
        "AND ST_DWithin(geography(position), geography(ST_SetSRID(ST_MakePoint(%s, %s), 4326)), 1500) "
        "AND NOT ST_DWithin(geography(position), geography(ST_SetSRID(ST_MakePoint(%s, %s), 4326)), 900) "
        "ORDER BY id LIMIT 1",
        (hx, hy, hx, hy),
    )[0]
    here = (hx, hy)
    old = live_city(
        "SELECT ST_X(position), ST_Y(position), position_at, on_duty FROM people WHERE id = %s", (pid,)
    )[0]
    move = (
        "UPDATE people SET position = ST_SetSRID(ST_MakePoint(%s, %s), 4326), position_at = now() "
        "WHERE id = %s"
    )
    filters = [PeopleFilter(role="volunteer"), PeopleFilter(role="volunteer", available=True), PeopleFilter()]
    try:
        await index.nearest(clon, clat, 5, filters[1], _fresh())  # the availability mask is cached
        places = [(here[0] + 0.00002, here[1] + 0.00001), (bx + 0.00003, by), (here[0], here[1])]
        for lon, lat in places:
            live_city(move, (lon, lat, pid))
            for flt in filters:
                for qlon, qlat in (places[0], (lon, lat)):
                    got, want = await _both(engine, index, qlon + 0.0001, qlat, 3, flt)
                    _same(got, want)
            first, _ = await _both(engine, index, lon, lat, 1, filters[0])
            assert first[0].id == pid
        live_city("UPDATE people SET on_duty = false WHERE id = %s", (pid,))
        lon, lat = places[-1]
        got, want = await _both(engine, index, lon, lat, 3, filters[1])
        _same(got, want)
        assert pid not in [r.id for r in got]
    finally:
        live_city(
            "UPDATE people SET position = ST_SetSRID(ST_MakePoint(%s, %s), 4326), position_at = %s, "
            "on_duty = %s WHERE id = %s",
            (old[0], old[1], old[2], old[3], pid),
        )


def test_the_catch_up_reads_through_the_index_even_after_a_bulk_write(live_city: SqlFn) -> None:
    """The generic plan of the catch-up (every poll, every request) expects few rows in progress.

    After a bulk write (here: one statement stamps every person with its transaction id, as
    the demo load does), the statistics hold one transaction id for most rows, and a generic
    plan of ``change_xid = ANY($2)`` alone expected half the table: a scan of ``people`` on
    every catch-up. With its range of parameters it expects a narrow slice (the index's).
    """
    live_city("UPDATE people SET on_duty = on_duty")
    live_city("ANALYZE people")
    (people,) = live_city("SELECT count(*) FROM people")[0]
    (xmax,) = live_city("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")[0]
    live_city("SET plan_cache_mode = force_generic_plan")
    try:
        live_city(f"PREPARE catch_up(bigint, bigint[], bigint[], bigint) AS {index_changes_sql(False)}")
        for xip in ([], [xmax - 3, xmax - 1]):
            args = f"{xmax}, '{{{','.join(map(str, xip))}}}', '{{1,2}}', {min(xip, default=xmax)}"
            plan = "\n".join(r[0] for r in live_city(f"EXPLAIN EXECUTE catch_up({args})"))
            lines = plan.splitlines()
            at = next(i for i, line in enumerate(lines) if "ANY ($2)" in line)
            node = next(line for line in reversed(lines[:at]) if "rows=" in line)
            expected = int(node.split("rows=")[1].split()[0])
            assert expected <= people / 10, plan
    finally:
        live_city("DEALLOCATE ALL")
        live_city("RESET plan_cache_mode")


async def test_a_person_deleted_behind_its_back_drops_out_of_the_next_answer(
    engine: AsyncEngine, index: PeopleIndex, live_city: SqlFn
) -> None:
    clon, clat = _centre(live_city)
    far = clon - 0.2, clat + 0.2  # nobody there
    (new,) = live_city(
        "INSERT INTO people (city_code, name, role, on_duty, capacity, position, position_at) "
        "SELECT city_code, '将被删除', role, true, 1, ST_SetSRID(ST_MakePoint(%s, %s), 4326), now() "
        "FROM people WHERE position IS NOT NULL ORDER BY id LIMIT 1 RETURNING id",
        (far[0], far[1]),
    )[0]
    try:
        assert (await _nearest_one(engine, index, far[0] + 0.0001, far[1])).id == new
        polls = index.polls
        live_city("DELETE FROM people WHERE id = %s", (new,))
        while index.polls < polls + 2:  # the poller has caught up: only the request sees the delete
            await asyncio.sleep(0.01)
        assert (await _nearest_one(engine, index, far[0] + 0.0001, far[1])).id != new
    finally:
        live_city("DELETE FROM people WHERE id = %s", (new,))


async def test_a_task_accepted_makes_a_person_busy_at_once(
    engine: AsyncEngine, index: PeopleIndex, live_city: SqlFn
) -> None:
    clon, clat = _centre(live_city)
    rows = await index.nearest(clon, clat, 1, PeopleFilter(role="volunteer"), _fresh())
    assert rows
    pid, capacity, load = rows[0].id, rows[0].capacity, rows[0].load
    free = [
        r[0]
        for r in live_city(
            "SELECT id FROM tasks WHERE status <> 'accepted' ORDER BY id DESC LIMIT %s", (capacity - load,)
        )
    ]
    saved = live_city("SELECT id, status, assignee_id FROM tasks WHERE id = ANY(%s)", (free,))
    try:
        live_city("UPDATE tasks SET status = 'accepted', assignee_id = %s WHERE id = ANY(%s)", (pid, free))
        again = await index.nearest(clon, clat, 1, PeopleFilter(role="volunteer"), _fresh())
        assert again is not None and again[0].id != pid
    finally:
        for tid, status, assignee in saved:
            live_city("UPDATE tasks SET status = %s, assignee_id = %s WHERE id = %s", (status, assignee, tid))


def test_the_endpoint_answers_from_the_index_and_reads_its_own_writes(
    client: TestClient, live_city: SqlFn, make_token: Callable[..., str]
) -> None:
    index = client.app.state.people_index
    deadline = time.monotonic() + 60
    while not index.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert index.ready
    token = make_token("dispatcher")
    clon, clat = _centre(live_city)
    spot = clon + 0.00137, clat - 0.00071  # inside the city; the person is put exactly there
    pid = live_city(
        "SELECT id FROM people WHERE role = 'volunteer' AND on_duty AND position IS NOT NULL "
        "ORDER BY id DESC LIMIT 1"
    )[0][0]
    answered = index.answered
    put = client.put(
        f"/api/v1/people/{pid}/position",
        json={"lon": spot[0], "lat": spot[1], "crs": "wgs84"},
        headers=auth(token),
    )
    assert put.status_code in (200, 204), put.text
    got = client.get(
        URL,
        params={
            "lon": spot[0],
            "lat": spot[1],
            "crs": "wgs84",
            "k": 1,
            "role": "volunteer",
            "available": "false",
        },
        headers=auth(token),
    )
    assert got.status_code == 200, got.text
    assert got.json()[0]["id"] == pid
    assert got.json()[0]["distance_m"] == 0.0
    assert index.answered > answered


async def test_the_rendered_answer_is_orjsons_and_follows_each_write(
    index: PeopleIndex, live_city: SqlFn, busy: list[int]
) -> None:
    """The hot path's body is byte for byte ``orjson.dumps`` of the items, kept pieces or not.

    Around the busy people (open loads above zero), with a name that needs escaping; after a
    rename and a move of one of them the next answer carries the new name and place.
    """
    clon, clat = _centre(live_city)
    flt = PeopleFilter(available=False)
    pid, name, lon, lat = live_city(
        "SELECT id, name, ST_X(position), ST_Y(position) FROM people WHERE id = %s", (busy[0],)
    )[0]

    async def rendered() -> tuple[bytes, list[dict[str, Any]]]:
        found = await index.found(clon, clat, 30, flt, _fresh())
        assert found is not None, "the index gave up"
        body = found.body()
        assert body == found.body()  # the second time from the kept pieces
        items = found.items()
        assert body == orjson.dumps(items, option=orjson.OPT_UTC_Z)
        return body, items

    nobody = await index.found(clon, clat, 5, PeopleFilter(city="999999"), _fresh())
    assert nobody is not None and nobody.body() == b"[]"
    try:
        _, items = await rendered()
        assert any(i["id"] == pid and i["load"] > 0 for i in items), "a busy person is among them"
        live_city(
            "UPDATE people SET name = %s, position = ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
            "position_at = now() WHERE id = %s",
            ('王 "小明"\\\t€', lon + 0.00001, lat, pid),
        )
        body, items = await rendered()
        (mine,) = [i for i in items if i["id"] == pid]
        assert mine["name"] == '王 "小明"\\\t€' and mine["position"]["lon"] == pytest.approx(lon + 0.00001)
        assert orjson.loads(body) == orjson.loads(orjson.dumps(items, option=orjson.OPT_UTC_Z))
    finally:
        live_city(
            "UPDATE people SET name = %s, position = ST_SetSRID(ST_MakePoint(%s, %s), 4326) WHERE id = %s",
            (name, lon, lat, pid),
        )
