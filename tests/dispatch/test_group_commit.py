"""Single pings of concurrent requests share statements (group commit), each committed before its answer.

The writer of :func:`api.services.dispatch.positions.ping_writer` over a real hot pool: pings
of different people sent together in one transaction, each written, audited and answered as
alone; one person's pings never share a statement and keep their order; a ping refused in the
statement (out of its caller's reach) refuses only itself; a failing statement is retried ping
by ping. Over HTTP, concurrent phones each get their own answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from json import loads as json_loads
from typing import Any

import httpx
import pytest

from api.auth import audit
from api.services.dispatch.positions import ping_writer
from api.settings import load_settings
from api.store.driver import HotPool
from api.store.group_commit import GroupCommit
from api.store.sql import people as people_sql
from api.store.sql.people import Extent
from api.store.sql.positions import PingWrite
from tests.conftest import auth


@pytest.fixture(scope="module")
def located(live_city) -> list[tuple[int, str, float, float]]:
    """Forty located people with a community: (id, community, lon, lat)."""
    rows = live_city(
        "SELECT id, community_code, ST_X(position), ST_Y(position) FROM people "
        "WHERE position IS NOT NULL AND community_code IS NOT NULL ORDER BY id DESC LIMIT 40"
    )
    return [(int(a), str(b), float(c), float(d)) for a, b, c, d in rows]


def _write(pid: int, lon: float, lat: float, at: dt.datetime, area: tuple = (None, None, None)) -> PingWrite:
    entry = audit.entry(None, None, "person.position", "people", pid, None, {"pings": 1})
    return PingWrite(pid, at, lon, lat, area, entry, durable=False)


def _run(db_url: str, go: Any) -> Any:
    """Run ``go(writer)`` on a writer over a fresh hot pool; return its result and the writer."""

    async def main() -> Any:
        pool = HotPool(db_url, load_settings().db, size=4)
        people_sql.known_extents().setdefault("340500", Extent(117.0, 30.5, 119.5, 32.5))
        writer = ping_writer(pool)
        try:
            return await go(writer), writer
        finally:
            await pool.close()

    return asyncio.run(main())


def test_pings_of_different_people_share_one_transaction(db_url, live_city, located) -> None:
    people = located[:10]
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    audits = live_city("SELECT count(*) FROM audit_log WHERE action = 'person.position'")[0][0]

    async def go(writer: Any) -> list:
        pings = [_write(pid, lon + 1e-4, lat, at) for pid, _, lon, lat in people]
        return list(await asyncio.gather(*(writer.submit(p) for p in pings)))

    answers, writer = _run(db_url, go)
    assert writer.calls == 1 and writer.items == 10  # every caller was waiting when the first was sent
    for (pid, _, lon, lat), (written, row) in zip(people, answers, strict=True):
        assert written and row is not None and row.id == pid
        assert row.lon == pytest.approx(lon + 1e-4, abs=1e-9) and row.lat == pytest.approx(lat, abs=1e-9)
        assert row.position_at == at
    ids = [p[0] for p in people]
    rows = live_city(
        "SELECT person_id, xmin::text FROM position_history WHERE person_id = ANY(%s) AND at = %s", (ids, at)
    )
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert len({r[1] for r in rows}) == 1  # one transaction
    entries = live_city(
        "SELECT entity_id, changed FROM audit_log WHERE action = 'person.position' ORDER BY id DESC LIMIT 10"
    )
    assert sorted(int(e[0]) for e in entries) == sorted(ids)
    assert live_city("SELECT count(*) FROM audit_log WHERE action = 'person.position'")[0][0] == audits + 10


def test_one_persons_pings_never_share_a_statement_and_keep_their_order(db_url, live_city, located) -> None:
    (pid, _, lon, lat), others = located[10], located[11:14]
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0)
    before = live_city("SELECT count(*) FROM position_history WHERE person_id = %s", (pid,))[0][0]

    async def go(writer: Any) -> list:
        mine = [_write(pid, lon + k * 1e-4, lat, t0 + dt.timedelta(seconds=k)) for k in range(3)]
        rest = [_write(o, olon, olat, t0) for o, _, olon, olat in others]
        return list(await asyncio.gather(*(writer.submit(p) for p in [*mine, *rest])))

    answers, writer = _run(db_url, go)
    assert all(written for written, _ in answers)
    assert writer.calls >= 3 and writer.items == 6
    # each of the person's answers shows the person after that very ping, in the order sent
    assert [row.position_at for _, row in answers[:3]] == [t0 + dt.timedelta(seconds=k) for k in range(3)]
    x, at = live_city("SELECT ST_X(position), position_at FROM people WHERE id = %s", (pid,))[0]
    assert at == t0 + dt.timedelta(seconds=2) and x == pytest.approx(lon + 2e-4, abs=1e-9)
    assert live_city("SELECT count(*) FROM position_history WHERE person_id = %s", (pid,))[0][0] == before + 3


def test_a_ping_out_of_its_callers_reach_is_refused_alone(db_url, live_city, located) -> None:
    inside, outside = located[14], located[15]
    other_community = next(c for _, c, _, _ in located if c != outside[1])
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    before = live_city("SELECT count(*) FROM position_history WHERE person_id = %s", (outside[0],))[0][0]

    async def go(writer: Any) -> list:
        pings = [
            _write(inside[0], inside[2], inside[3], at, ("340500", inside[1], None)),
            _write(outside[0], outside[2], outside[3], at, ("340500", other_community, None)),
            _write(10**12, inside[2], inside[3], at),  # nobody
        ]
        return list(await asyncio.gather(*(writer.submit(p) for p in pings)))

    answers, writer = _run(db_url, go)
    assert writer.calls == 1
    assert answers[0][0] and answers[0][1] is not None and answers[0][1].id == inside[0]
    written, row = answers[1]
    assert not written and row is not None and row.id == outside[0]  # the person as found: the caller decides
    assert answers[2] == (False, None)
    assert (
        live_city("SELECT count(*) FROM position_history WHERE person_id = %s", (outside[0],))[0][0] == before
    )


def test_a_failing_group_is_retried_one_by_one() -> None:
    """One write's error reaches its own caller only; the others are answered from statements of their own."""
    sent: list[list[int]] = []

    async def run(items: Sequence[int]) -> list[int]:
        sent.append(list(items))
        await asyncio.sleep(0)
        if 13 in items:
            raise ValueError("13 refused")
        return [i * 10 for i in items]

    async def go() -> list:
        writer: GroupCommit[int, int] = GroupCommit(run, key=lambda i: i, slots=1)
        calls = [writer.submit(i) for i in (1, 2, 13, 4)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    answers = asyncio.run(go())
    assert answers[:2] == [10, 20] and answers[3] == 40
    assert isinstance(answers[2], ValueError)
    assert sent == [[1, 2, 13, 4], [1], [2], [13], [4]]


def test_a_caller_gone_before_its_turn_is_not_sent() -> None:
    sent: list[list[int]] = []

    async def run(items: Sequence[int]) -> list[int]:
        sent.append(list(items))
        await asyncio.sleep(0.01)
        return list(items)

    async def go() -> tuple[int, int]:
        writer: GroupCommit[int, int] = GroupCommit(run, key=lambda i: i, slots=1)
        first = asyncio.ensure_future(writer.submit(1))
        await asyncio.sleep(0.001)  # 1 is being written; 2 and 3 wait
        gone = asyncio.ensure_future(writer.submit(2))
        third = asyncio.ensure_future(writer.submit(3))
        await asyncio.sleep(0)
        gone.cancel()
        return await first, await third

    assert asyncio.run(go()) == (1, 3)
    assert sent == [[1], [3]]


def test_concurrent_phones_each_get_their_own_answer(live_server, live_city, tokens, located) -> None:
    """Sixteen phones at once, three pings each: every ping answered 200 with its own person, all kept."""
    phones = located[20:36]  # people no other test here moves
    hdr = auth(tokens("dispatcher"))
    ids = [p[0] for p in phones]
    before = live_city("SELECT count(*) FROM position_history WHERE person_id = ANY(%s)", (ids,))[0][0]
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=5)

    def phone(person: tuple[int, str, float, float]) -> list[tuple[int, int, float]]:
        pid, _, lon, lat = person
        seen = []
        with httpx.Client(base_url=live_server.url, headers=hdr, timeout=60) as c:
            for k in range(3):
                body = {
                    "lon": lon + k * 1e-4,
                    "lat": lat,
                    "crs": "wgs84",
                    "at": (t0 + dt.timedelta(seconds=k)).isoformat(),
                }
                r = c.put(f"/api/v1/people/{pid}/position", json=body)
                assert r.status_code == 200, r.text
                seen.append((r.json()["id"], r.json()["accepted"], r.json()["position"]["lon"]))
        return seen

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(phone, phones))
    for (pid, _, lon, _), seen in zip(phones, answers, strict=True):
        assert [(i, a) for i, a, _ in seen] == [(pid, 1)] * 3
        assert [x for _, _, x in seen] == pytest.approx([lon + k * 1e-4 for k in range(3)], abs=1e-9)
    after = live_city("SELECT count(*) FROM position_history WHERE person_id = ANY(%s)", (ids,))[0][0]
    assert after == before + 48
    last = live_city("SELECT id, position_at FROM people WHERE id = ANY(%s)", (ids,))
    assert {at for _, at in last} == {t0 + dt.timedelta(seconds=2)}


def test_a_shared_statement_stores_each_ping_and_its_audit_exactly(db_url, live_city, located) -> None:
    """Every double, every microsecond and every audit field arrives as sent (the pings travel as JSON).

    Coordinates with all 17 significant digits, times with microseconds and in another zone,
    and audit entries with a quote, a backslash and non-ASCII text: the history, the current
    position and the audit rows hold exactly these values.
    """
    people = located[20:24]
    # later than any ping of the tests before (a ping older than the current position moves nobody)
    base = dt.datetime.now(dt.UTC).replace(microsecond=123457) + dt.timedelta(seconds=10)
    zone = dt.timezone(dt.timedelta(hours=8))
    sent = []
    for k, (pid, _, lon, lat) in enumerate(people):
        at = (base + dt.timedelta(microseconds=k)).astimezone(zone if k % 2 else dt.UTC)
        entry = audit.entry(None, None, "person.position", "people", pid, None, {"pings": 1, "k": k})
        entry |= {
            "actor": f'网格员 "{k}" \\ ok',
            "client_ip": "10.0.0.7",
            "path": f"/api/v1/people/{pid}/position",
        }
        sent.append(
            PingWrite(pid, at, lon + 1.234567890123e-5, lat - 9.87654321e-6, (None, None, None), entry)
        )

    async def go(writer: Any) -> list:
        return list(await asyncio.gather(*(writer.submit(p) for p in sent)))

    answers, writer = _run(db_url, go)
    assert writer.calls == 1
    for ping, (written, row) in zip(sent, answers, strict=True):
        assert written and row is not None
        assert (row.lon, row.lat, row.position_at) == (ping.lon, ping.lat, ping.at)
        stored = live_city(
            "SELECT ST_X(position), ST_Y(position), position_at FROM people WHERE id = %s", (ping.person_id,)
        )[0]
        assert stored == (ping.lon, ping.lat, ping.at)
        history = live_city(
            "SELECT ST_X(geom), ST_Y(geom) FROM position_history WHERE person_id = %s AND at = %s",
            (ping.person_id, ping.at),
        )
        assert history == [(ping.lon, ping.lat)]
        (logged,) = live_city(
            "SELECT actor, token_id, role, client_ip, method, path, action, entity, entity_id, after, "
            "changed, status FROM audit_log WHERE action = 'person.position' AND entity_id = %s "
            "ORDER BY id DESC LIMIT 1",
            (str(ping.person_id),),
        )
        e = ping.audit_row
        names = ("actor", "token_id", "role", "client_ip", "method", "path", "action", "entity", "entity_id")
        assert logged[:9] == tuple(e[k] for k in names)
        assert (logged[9], logged[10], logged[11]) == (json_loads(e["after"]), e["changed"], e["status"])
