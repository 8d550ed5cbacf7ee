"""Reading cases: one case with its log and reporters, lists with filters, department queues.

Scope is decided here from the typed request with :mod:`api.auth.policy`:

* a list covers the area it names, which must lie inside the token's area, or —
  naming none — **the token's own area** (a community-scoped dispatcher that
  leaves out ``community=`` sees its community only);
* on top, reporters list what they filed, person-bound workers what is assigned
  to them, department-bound tokens their department's cases;
* a case that exists but is not related to the caller answers
  :class:`~api.errors.NotFound`, exactly as a case that does not exist.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Forbidden, NotFound
from api.services.incidents import access
from api.services.incidents.inputs import IncidentFilter, Page, check_aware
from api.services.incidents.views import DepartmentQueue, IncidentPage, IncidentView, view_of
from api.store.sql import incidents as q

#: Roles that may read a department's queue besides the department itself.
QUEUE_ROLES = frozenset({"admin", "dispatcher", "department", "planner"})
#: A department's queue: the cases escalated to it and those it accepted.
QUEUE_STATUSES = ("escalated", "department_accepted")


async def _neighbours(conn: AsyncConnection, row: q.IncidentRow, tolerance_m: float) -> list[q.NeighbourGrid]:
    if row.lon is None or row.lat is None:
        return []
    return await q.neighbour_grids(conn, row.lon, row.lat, row.grid_id, tolerance_m)


async def _view(
    conn: AsyncConnection,
    principal: Principal,
    record: q.IncidentRecord,
    tolerance_m: float,
    *,
    with_log: bool,
    neighbours: list[q.NeighbourGrid] | None = None,
) -> IncidentView:
    row = record.row
    if neighbours is None:
        neighbours = await _neighbours(conn, row, tolerance_m)
    if not with_log:
        return view_of(principal, record, neighbours=neighbours)
    return view_of(
        principal,
        record,
        neighbours=neighbours,
        events=await q.events(conn, row.id, row.city_code, row.created_at),
        reporters=await q.reporters(conn, row.id),
    )


async def get_incident(
    conn: AsyncConnection, principal: Principal, incident_id: int, *, tolerance_m: float
) -> IncidentView:
    """Return one case with its log, its reporters and the grids near its point.

    Parameters
    ----------
    conn
        A connection.
    principal
        The caller: it must be related to the case (its area, its person, its
        department, or the token that filed it).
    incident_id
        The case.
    tolerance_m
        Grids this close to the case's point are listed as neighbours.

    Returns
    -------
    IncidentView
        The case as the caller may see it (reporters' contacts masked by
        :mod:`api.auth.privacy`; none for reporters).

    Raises
    ------
    NotFound
        No such case, or one the caller is not related to (the same answer).
    """
    record = await q.fetch(conn, incident_id)
    policy.require_related(
        principal,
        None if record is None else access.relation_of(record.row),
        f"incident {incident_id}",
        ["path", "incident_id"],
    )
    assert record is not None
    return await _view(conn, principal, record, tolerance_m, with_log=True)


async def view_after_act(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    tolerance_m: float,
    *,
    with_log: bool = True,
    neighbours: list[q.NeighbourGrid] | None = None,
) -> IncidentView:
    """Return a case the caller has just acted on, as it sees it.

    The caller was related to the case when it acted; the answer shows the result
    once even when the act took the case out of its reach (a department that returned
    it, a dispatcher that reported a place outside its area).

    Raises
    ------
    NotFound
        The case does not exist.
    """
    record = await q.fetch(conn, incident_id)
    if record is None:
        raise NotFound(f"no incident {incident_id}", loc=["path", "incident_id"])
    return await _view(conn, principal, record, tolerance_m, with_log=with_log, neighbours=neighbours)


def _store_query(
    f: IncidentFilter, department: str | None = None, statuses: tuple[str, ...] = ()
) -> q.IncidentQuery:
    return q.IncidentQuery(
        statuses=statuses or tuple(f.status),
        grid=f.grid,
        department=department if department is not None else f.department,
        item=f.item,
        category=f.category,
        channel=f.channel,
        overdue=f.overdue,
        triage=f.triage,
        likely_duplicate=f.likely_duplicate,
        since=f.since,
        until=f.until,
        bbox=f.bbox.wgs84() if f.bbox is not None else None,
        due_before=f.due_before,
    )


def _check_department(principal: Principal, department: str | None, loc: list[str | int]) -> None:
    """Refuse a department token naming another department (codes are public: no oracle)."""
    if (
        principal.role == "department"
        and principal.department_code is not None
        and department is not None
        and department != principal.department_code
    ):
        raise Forbidden(f"department {department} is not this token's department", loc=loc)


async def list_incidents(
    conn: AsyncConnection,
    principal: Principal,
    filters: IncidentFilter,
    page: Page,
    order: q.Order = "created",
) -> IncidentPage:
    """List the cases the caller may see, filtered, one page at a time.

    Parameters
    ----------
    conn
        A connection.
    principal
        The caller.
    filters
        What to narrow the list to; an area left out means the caller's own area.
    page
        Which page.
    order
        ``created`` (newest first) or ``due`` (most urgent first).

    Returns
    -------
    IncidentPage
        The page and the total over all pages.

    Raises
    ------
    Forbidden
        A named community, district or department lies outside the token's scope.
    InvalidInput
        A time without a zone, or a bounding box out of range.
    """
    check_aware("since", filters.since)
    check_aware("until", filters.until)
    area = policy.area_for(principal, filters.community, filters.district)
    _check_department(principal, filters.department, ["query", "department"])
    total, rows = await q.list_incidents(
        conn, access.row_scope(principal, area), _store_query(filters), page.limit, page.offset, order
    )
    return IncidentPage(total, page.limit, page.offset, [view_of(principal, r) for r in rows])


async def department_queue(
    conn: AsyncConnection, principal: Principal, department: str, *, overdue: bool | None, page: Page
) -> DepartmentQueue:
    """List the cases escalated to a department and not yet resolved, most urgent first.

    Parameters
    ----------
    conn
        A connection.
    principal
        The caller: the department itself, or staff who follow escalations (within
        their area).
    department
        The department's code.
    overdue
        Only overdue cases (True), only cases within their limit (False), or all.
    page
        Which page.

    Raises
    ------
    NotFound
        No department has this code.
    Forbidden
        A department token naming another department, or a role that does not read
        queues.
    """
    if not await q.department_exists(conn, department):
        raise NotFound(
            f"no department with code {department!r} (GET /api/v1/departments)", loc=["path", "code"]
        )
    if principal.role == "department" and principal.department_code != department:
        raise Forbidden(
            f"a {principal.department_code!r} token may not read the queue of {department!r}",
            loc=["path", "code"],
        )
    if principal.role not in QUEUE_ROLES:
        raise Forbidden(
            f"role {principal.role!r} may not read a department's queue", loc=["header", "authorization"]
        )
    area = policy.area_for(principal)
    query = _store_query(IncidentFilter(overdue=overdue), department=department, statuses=QUEUE_STATUSES)
    total, rows = await q.list_incidents(
        conn, access.row_scope(principal, area), query, page.limit, page.offset, "due"
    )
    return DepartmentQueue(department, total, page.limit, page.offset, [view_of(principal, r) for r in rows])


async def list_departments(conn: AsyncConnection) -> list[q.DepartmentRow]:
    """Return every department with its code, time limit, queue size and overdue count."""
    return await q.departments(conn)
