"""The incident use cases called directly, as the console and the CLI call them (no HTTP).

No middleware runs here: what these tests see is what the services decide.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from api.auth.principal import Principal
from api.errors import Forbidden, InvalidInput, NotFound
from api.services.coords import CRSName
from api.services.incidents import intake, kpis, moves, reading, workflow
from api.services.incidents.inputs import IncidentFilter, Move, Page, Reassignment, Report
from api.settings import IncidentSettings
from api.store.engine import with_driver
from api.store.sql import incidents as q

SqlFn = Callable[..., list[tuple[Any, ...]]]
TOLERANCE = 15.0


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[AsyncConnection]:
    """Yield a connection in a transaction that is rolled back: nothing a test writes stays."""
    engine = create_async_engine(with_driver(db_url, "asyncpg"))
    try:
        async with engine.connect() as c:
            tx = await c.begin()
            try:
                yield c
            finally:
                await tx.rollback()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def two(sql: SqlFn) -> tuple[str, str]:
    """Return the two communities holding the most incidents."""
    rows = sql(
        "SELECT community_code FROM incidents WHERE community_code IS NOT NULL "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
    )
    return rows[0][0], rows[1][0]


def _dispatcher(community: str | None = None, token_id: int = 900_001) -> Principal:
    return Principal(token_id=token_id, role="dispatcher", community_code=community)


async def test_lists_and_kpis_cover_the_tokens_area_when_none_is_named(
    conn: AsyncConnection, sql: SqlFn, two: tuple[str, str]
) -> None:
    """Lists and KPIs cover the token's area when none is named."""
    mine, other = two
    me = _dispatcher(mine)
    page = await reading.list_incidents(conn, me, IncidentFilter(), Page(limit=1000))
    want = sql("SELECT count(*) FROM incidents WHERE community_code = %s", (mine,))[0][0]
    assert page.total == want and {v.incident.community_code for v in page.items} == {mine}
    with pytest.raises(Forbidden) as refused:
        await reading.list_incidents(conn, me, IncidentFilter(community=other), Page())
    assert refused.value.loc == ["query", "community"]
    report = await kpis.kpis(conn, me, kpis.KpiFilter())
    named = await kpis.kpis(conn, Principal(token_id=1, role="admin"), kpis.KpiFilter(community=mine))
    assert report == named and report.filters.community == mine


async def test_a_case_out_of_reach_is_not_found_exactly_as_a_missing_one(
    conn: AsyncConnection, sql: SqlFn, two: tuple[str, str]
) -> None:
    """A case out of reach is NotFound exactly as a missing one."""
    mine, other = two
    theirs = sql("SELECT min(id) FROM incidents WHERE community_code = %s", (other,))[0][0]
    missing = sql("SELECT max(id) + 1 FROM incidents")[0][0]
    me = _dispatcher(mine)
    seen = []
    for iid in (theirs, missing):
        with pytest.raises(NotFound) as nf:
            await reading.get_incident(conn, me, iid, tolerance_m=TOLERANCE)
        seen.append((nf.value.loc, re.sub(r"\d+", "N", nf.value.msg)))
        with pytest.raises(NotFound):
            await moves.transition(conn, me, iid, Move(action="verify"), tolerance_m=TOLERANCE)
    assert seen[0] == seen[1] == (["path", "incident_id"], "no incident N")
    # the role comes first and depends on no row: a reporter may never verify, any id
    with pytest.raises(Forbidden):
        await moves.transition(
            conn,
            Principal(token_id=2, role="reporter"),
            missing,
            Move(action="verify"),
            tolerance_m=TOLERANCE,
        )


async def test_report_move_and_reassign_through_the_use_cases(
    conn: AsyncConnection, sql: SqlFn, two: tuple[str, str]
) -> None:
    """Report, accept and reassign through the use cases, as the console does."""
    mine, other = two
    grid, worker, lon, lat = sql(
        "SELECT g.code, g.worker_id, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) "
        "FROM grids g JOIN people w ON w.id = g.worker_id WHERE g.active AND w.on_duty "
        "AND g.community_code = %s ORDER BY g.code LIMIT 1",
        (mine,),
    )[0]
    me = _dispatcher(mine)
    body = Report(
        item_code="EV-006", description="垃圾堆积", channel="phone", lon=lon, lat=lat, crs=CRSName.wgs84
    )
    done = await intake.report_incident(conn, me, body, "k-1", IncidentSettings(), tolerance_m=TOLERANCE)
    assert done.created and done.view.incident.community_code == mine and done.view.events is None
    again = await intake.report_incident(conn, me, body, "k-1", IncidentSettings(), tolerance_m=TOLERANCE)
    assert not again.created and again.view.incident.id == done.view.incident.id
    iid = done.view.incident.id
    # the grid's own worker accepts; another worker's token does not even see the case
    own = Principal(token_id=900_002, role="worker", person_id=worker)
    view = await moves.transition(conn, own, iid, Move(action="accept"), tolerance_m=TOLERANCE)
    assert view.incident.status == "accepted" and view.allowed_actions == ["start", "resolve", "escalate"]
    stranger = sql(
        "SELECT id FROM people WHERE role = 'grid_worker' AND id <> %s ORDER BY id LIMIT 1", (worker,)
    )
    with pytest.raises(NotFound):
        await reading.get_incident(
            conn,
            Principal(token_id=900_003, role="worker", person_id=stranger[0][0]),
            iid,
            tolerance_m=TOLERANCE,
        )
    # reassign: a person outside the dispatcher's area is as unknown as a missing one
    outsider = sql("SELECT id FROM people WHERE community_code = %s ORDER BY id LIMIT 1", (other,))[0][0]
    with pytest.raises(InvalidInput) as bad:
        await moves.reassign(conn, me, iid, Reassignment(grid=grid, assignee=outsider), tolerance_m=TOLERANCE)
    assert bad.value.loc == ["body", "assignee"] and bad.value.msg == f"no person {outsider}"
    moved = await moves.reassign(conn, me, iid, Reassignment(grid=grid), tolerance_m=TOLERANCE)
    assert moved.events is not None and moved.events[-1].action == "reassign"


def test_the_sql_rules_match_the_workflow() -> None:
    """The SQL forms of the rules match the workflow's statuses; the pieces compose."""
    statuses = re.findall(r"'(\w+)'", q.SQL_OPEN)
    assert tuple(statuses) == workflow.OPEN_STATUSES
    running = re.findall(r"'(\w+)'", q.SQL_EFFECTIVE_DUE)
    assert tuple(running) == workflow.ESCALATED_STATUSES
    # the pieces compose: no scope and no filter add nothing
    params: dict[str, Any] = {}
    assert (
        q.visibility_clauses(q.RowScope(), params) == [] and q.filter_clauses(q.IncidentQuery(), params) == []
    )
    assert params == {}
    sets = q.set_clauses(q.StatusChange("closed", mark_closed=True), params)
    assert sets == ["status = :to", "closed_at = now()"] and params == {"to": "closed"}
