"""The dispatcher desk's use cases (调度台): the open queue, one case to act on, bulk actions.

Each function composes the use cases the API calls — :mod:`.reading`, :mod:`.moves`,
:mod:`.claims`, :func:`api.services.dispatch.nearest.nearest`,
:func:`api.services.dispatch.tasks.create_task` — so the desk decides nothing the API
would decide differently. Scope comes from them (an unnamed area is the token's).

* :func:`open_queue` — open cases with the desk's filters (community, grid, status,
  item, channel, overdue, due within N hours), most urgent first or newest first, one
  page, with the claims on them;
* :func:`case_desk` — one case: its log, its claim, the nearest available people
  (straight and walking distance, load, skills), its tasks, the departments;
* :func:`assign` / :func:`offer_task` — hand the case to a person of the nearest
  list, or offer a micro-grid task for it;
* :func:`bulk` — assign or escalate many cases, each on its own (one refusal, e.g. a
  case another dispatcher claimed, does not undo the others).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, InvalidInput, Unavailable, WanggeError
from api.services.coords import WGSPoint
from api.services.dispatch import nearest as nearest_service
from api.services.dispatch import rules
from api.services.dispatch import tasks as task_service
from api.services.dispatch.inputs import GeoPoint, Mode, NearestQuery, TaskIn
from api.services.dispatch.views import NearbyPerson, TaskCreated
from api.services.incidents import claims, moves, reading, workflow
from api.services.incidents.claims import ClaimView
from api.services.incidents.inputs import IncidentFilter, Merge, Move, Page, Reassignment, StatusName
from api.services.incidents.views import IncidentView
from api.settings import DispatchSettings
from api.store.sql import desk as sql
from api.store.sql.desk import CaseTask, DepartmentName, MapPerson

Sort = Literal["due", "created"]
#: rows of the first page: the whole city's open queue is paged (the desk says how many more)
PAGE_SIZE = 50
MAX_PAGE = 200
#: people looked for around a case
NEAREST_K = 8
#: the most people drawn on the map at once (zoom in for the rest)
MAP_PEOPLE = 1500
#: the most cases one bulk action takes
MAX_BULK = 100
#: what the desk's status filter offers: the open cases and those reported back (反馈), waiting for
#: the community to verify (核查) and close (结案) them
DESK_STATUSES = (*workflow.OPEN_STATUSES, "resolved", "verified")
#: the community's last steps, taken from the desk's case panel
CONCLUDE_ACTIONS = ("verify", "close", "reopen")
#: person roles a case is assigned to (the others get micro-grid tasks)
ASSIGNABLE_ROLES = frozenset({"grid_worker", "window_worker", "police"})


@dataclass(frozen=True)
class DeskFilter:
    """What the desk's queue shows (every given field applies; kept in the page's URL)."""

    community: str | None = None
    grid: str | None = None
    status: tuple[StatusName, ...] = ()
    item: str | None = None
    channel: str | None = None
    overdue: bool | None = None
    due_within_hours: int | None = None
    sort: Sort = "due"
    offset: int = 0
    limit: int = PAGE_SIZE


@dataclass(frozen=True)
class DeskQueue:
    """One page of the open queue, the total, and who holds which case."""

    total: int
    offset: int
    limit: int
    items: list[IncidentView]
    claims: dict[int, ClaimView]


@dataclass(frozen=True)
class CaseDesk:
    """One case as the desk shows it: the case with its log, its claim, people, tasks, departments."""

    case: IncidentView
    claim: ClaimView | None
    nearest: list[NearbyPerson]
    walking: bool
    tasks: list[CaseTask]
    departments: list[DepartmentName]


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did to each case: done, or refused with the reason."""

    done: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def _check_status(status: Sequence[str]) -> None:
    wrong = [s for s in status if s not in DESK_STATUSES]
    if wrong:
        raise InvalidInput(
            f"the desk lists open and reported-back cases; status is one of {', '.join(DESK_STATUSES)}",
            loc=["query", "status"],
        )


async def open_queue(conn: AsyncConnection, principal: Principal, f: DeskFilter) -> DeskQueue:
    """List the open cases the caller may see, as the desk filters and sorts them.

    Raises
    ------
    InvalidInput
        A status that is not open, hours or page size out of range.
    Forbidden
        A community outside the token's area.
    """
    _check_status(f.status)
    if f.due_within_hours is not None and not 1 <= f.due_within_hours <= 24 * 30:
        raise InvalidInput("due within 1 to 720 hours", loc=["query", "due_within"])
    page = Page.within(f.limit, f.offset, MAX_PAGE)
    due_before = (
        None if f.due_within_hours is None else rules.utcnow() + dt.timedelta(hours=f.due_within_hours)
    )
    filters = IncidentFilter(
        status=f.status or workflow.OPEN_STATUSES,  # type: ignore[arg-type]
        community=f.community,
        grid=f.grid,
        item=f.item,
        channel=f.channel,
        overdue=f.overdue,
        due_before=due_before,
    )
    listed = await reading.list_incidents(conn, principal, filters, page, f.sort)
    held = await claims.claims_on(conn, principal, [v.incident.id for v in listed.items])
    return DeskQueue(listed.total, listed.offset, listed.limit, listed.items, held)


async def nearest_people(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    case: IncidentView,
    role: str | None,
) -> tuple[list[NearbyPerson], bool]:
    """Find the nearest available people to a case: walking distance where streets allow, else straight.

    Returns
    -------
    tuple
        The people (nearest first) and whether walking distances are given.
    """
    inc = case.incident
    if inc.lon is None or inc.lat is None:
        return [], False
    point = WGSPoint(inc.lon, inc.lat, "wgs84", inc.lon, inc.lat)
    query = NearestQuery(point=point, k=NEAREST_K, role=role, available=True, mode=Mode.walk)
    try:
        return await nearest_service.nearest(conn, principal, settings, query), True
    except (Conflict, Unavailable):  # no street network here: straight lines only
        straight = NearestQuery(point=point, k=NEAREST_K, role=role, available=True)
        return await nearest_service.nearest(conn, principal, settings, straight), False


async def case_desk(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    incident_id: int,
    *,
    tolerance_m: float,
    role: str | None = None,
) -> CaseDesk:
    """Everything the desk shows about one case.

    Raises
    ------
    NotFound
        No such case, or one the caller is not related to.
    """
    case = await reading.get_incident(conn, principal, incident_id, tolerance_m=tolerance_m)
    people, walking = await nearest_people(conn, principal, settings, case, role)
    return CaseDesk(
        case=case,
        claim=await claims.current(conn, principal, incident_id),
        nearest=people,
        walking=walking,
        tasks=await sql.case_tasks(conn, incident_id),
        departments=await sql.departments(conn),
    )


async def assign(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    person_id: int | None,
    *,
    tolerance_m: float,
    note: str | None = None,
) -> IncidentView:
    """Assign the case, in its own grid, to a person (None: the grid's worker on duty, as intake does).

    Raises
    ------
    NotFound, Forbidden, Conflict, InvalidInput
        As :func:`api.services.incidents.moves.reassign` (a claim by another dispatcher: 409);
        an unlocated case needs a grid first (reassign it).
    """
    case = await reading.get_incident(conn, principal, incident_id, tolerance_m=tolerance_m)
    grid = case.incident.grid_code
    if grid is None:
        raise InvalidInput(
            f"incident {incident_id} lies in no grid: reassign it to a grid first", loc=["body", "grid"]
        )
    body = Reassignment(grid=grid, assignee=person_id, note=note or "assigned from the dispatcher desk")
    return await moves.reassign(conn, principal, incident_id, body, tolerance_m=tolerance_m)


async def reassign(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    grid: str,
    note: str | None,
    *,
    tolerance_m: float,
) -> IncidentView:
    """Move the case to another grid and its worker (see :func:`.moves.reassign`)."""
    body = Reassignment(grid=grid, assignee=None, note=note)
    return await moves.reassign(conn, principal, incident_id, body, tolerance_m=tolerance_m)


async def escalate(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    department: str,
    note: str,
    *,
    tolerance_m: float,
) -> IncidentView:
    """Blow the whistle (吹哨): escalate the case to a department with a note (:func:`.moves.transition`)."""
    move = Move.model_validate({"action": "escalate", "department": department, "note": note})
    return await moves.transition(conn, principal, incident_id, move, tolerance_m=tolerance_m)


async def conclude(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    action: str,
    note: str | None,
    *,
    tolerance_m: float,
) -> IncidentView:
    """Verify (核查), close (结案) or reopen a case reported back (:func:`.moves.transition`).

    Raises
    ------
    InvalidInput
        An action other than verify, close, reopen.
    Conflict, NotFound, Forbidden
        As the workflow (a state that does not allow it, a claim by another dispatcher).
    """
    if action not in CONCLUDE_ACTIONS:
        raise InvalidInput(f"action is one of {', '.join(CONCLUDE_ACTIONS)}", loc=["body", "action"])
    move = Move.model_validate({"action": action, "note": note})
    return await moves.transition(conn, principal, incident_id, move, tolerance_m=tolerance_m)


async def merge(
    conn: AsyncConnection, principal: Principal, incident_id: int, into: int, *, tolerance_m: float
) -> IncidentView:
    """Merge the case into the one it repeats (see :func:`.moves.merge`)."""
    body = Merge(into=into, note="merged at the dispatcher desk")
    return await moves.merge(conn, principal, incident_id, body, tolerance_m=tolerance_m)


async def offer_task(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    incident_id: int,
    role: str,
    key: str | None,
    *,
    tolerance_m: float,
) -> TaskCreated:
    """Create a micro-grid task at the case's place, offered to the nearest available ``role``.

    ``key`` is the page's idempotency key (a double click makes one task).

    Raises
    ------
    InvalidInput
        The case has no place.
    NotFound, Forbidden, Conflict
        As :func:`api.services.dispatch.tasks.create_task` (a claim by another dispatcher: 409).
    """
    case = await reading.get_incident(conn, principal, incident_id, tolerance_m=tolerance_m)
    inc = case.incident
    if inc.lon is None or inc.lat is None:
        raise InvalidInput(f"incident {incident_id} has no place for a task", loc=["body", "role"])
    draft = TaskIn(
        location=GeoPoint(type="Point", coordinates=[inc.lon, inc.lat]),
        crs="wgs84",  # type: ignore[arg-type]
        role=role,
        incident=incident_id,
        title=inc.item_name,
        description=f"incident {incident_id}: {inc.item_name}",
        idempotency_key=key,
    )
    return await task_service.create_task(conn, principal, settings, draft)


async def bulk(
    conn: AsyncConnection,
    principal: Principal,
    incident_ids: Sequence[int],
    action: Literal["assign", "escalate"],
    *,
    tolerance_m: float,
    person_id: int | None = None,
    department: str | None = None,
    note: str | None = None,
) -> BulkResult:
    """Assign (each to its grid's worker on duty, or the person named) or escalate many cases.

    Each case runs in its own savepoint: a refused one (claimed by another dispatcher,
    not in a state for it, out of reach) is listed with its reason and changes nothing,
    the others are done.

    Raises
    ------
    InvalidInput
        No case, more than :data:`MAX_BULK`, or an escalation without a department.
    """
    ids = list(dict.fromkeys(incident_ids))
    if not ids or len(ids) > MAX_BULK:
        raise InvalidInput(f"choose 1 to {MAX_BULK} cases", loc=["body", "ids"])
    if action == "escalate" and not department:
        raise InvalidInput("choose the department to escalate to", loc=["body", "department"])
    out = BulkResult()
    for incident_id in ids:
        try:
            async with conn.begin_nested():
                if action == "assign":
                    await assign(conn, principal, incident_id, person_id, tolerance_m=tolerance_m, note=note)
                else:
                    await escalate(
                        conn, principal, incident_id, department or "", note or "", tolerance_m=tolerance_m
                    )
        except WanggeError as exc:
            out.refused.append((incident_id, exc.msg))
        else:
            out.done.append(incident_id)
    return out


async def departments(conn: AsyncConnection) -> list[DepartmentName]:
    """List the departments a case may be escalated to (code, names, time limit)."""
    return await sql.departments(conn)


async def map_people(
    conn: AsyncConnection,
    principal: Principal,
    settings: DispatchSettings,
    bbox: tuple[float, float, float, float],
) -> list[MapPerson]:
    """List the people on duty with a fresh position in the map's view, inside the token's area and city.

    Raises
    ------
    InvalidInput
        A box that is not west < east, south < north within lon/lat ranges.
    """
    x0, y0, x1, y1 = bbox
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise InvalidInput("bbox is west,south,east,north in WGS84", loc=["query", "bbox"])
    area = policy.token_area(principal)
    fresh_after = rules.stale_before(rules.utcnow(), settings)
    return await sql.people_on_duty(
        conn, bbox, area.community, area.district, fresh_after, MAP_PEOPLE, area.city
    )
