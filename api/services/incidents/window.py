"""The window (窗口受理): what a generalist social worker or a dispatcher does at the front desk.

The page ``/console/intake`` calls these, and they call the same use cases as the API:

* :func:`search_catalogue` — the 57 items by Chinese or English words or code, the
  high-frequency ones first;
* :func:`find_places` — the caller's address: buildings and estates by name, address
  or code, inside the token's area;
* :func:`preview` — as soon as a place is known: the grid, its worker on duty (or who
  takes the case instead), the party branch, the time limit and the open cases of the
  same item nearby (:func:`api.services.areas.locate.locate` and the intake planner);
* :func:`file_at_window` — take the matter (idempotent), optionally **linked** to an
  open case nearby instead of being filed as a new one (it is filed and merged at once:
  its reporter follows that case);
* :func:`complete_on_the_spot` — an on-the-spot item (即办) finished at the window,
  through the workflow's ``resolve`` (counted in ``on_the_spot`` of the KPIs).

Who is window staff: dispatchers, admins, and worker tokens bound to a person whose role
is ``window_worker`` (全科社工 at the front desk). Which channels a token files through is
the API's rule, :func:`api.services.incidents.intake.channels_for` (window staff: the
window and the phone; reporter tokens, a hotline: the phone; other workers: patrol).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput, NotFound
from api.services.areas.locate import locate
from api.services.coords import WGSPoint
from api.services.incidents import intake, limits, moves, reading, workflow
from api.services.incidents.inputs import Move, Report
from api.services.incidents.views import IncidentView, view_of
from api.settings import IncidentSettings
from api.store.sql import console as people_sql
from api.store.sql import incidents as q
from api.store.sql import window as sql
from api.store.sql.areas import LocatedGrid

#: The person role of window staff.
WINDOW_ROLE = "window_worker"
#: The channels a desk takes matters through (the others are the resident page's and Open311's).
DESK_CHANNELS = ("window", "phone", "patrol")
#: Open cases of the same item this close to the place are offered for linking (metres).
NEARBY_RADIUS_M = 300.0
#: At most this many nearby cases are shown.
NEARBY_LIMIT = 8
#: The window's recent list holds this many cases.
RECENT_LIMIT = 8
#: At most this many places are answered for an address.
PLACES_LIMIT = 12
#: Longest search text accepted (characters).
SEARCH_MAX = 100


@dataclass(frozen=True)
class CatalogueEntry:
    """One item of the catalogue as the window shows it."""

    code: str
    name: str
    name_en: str
    category: str
    department_code: str | None
    department_name: str | None
    department_name_en: str | None
    time_limit_hours: int
    on_the_spot: bool
    high_frequency: bool


@dataclass(frozen=True)
class Desk:
    """Who sits at the window: whether window staff, and the channels they file through."""

    window_staff: bool
    channels: tuple[str, ...]


@dataclass(frozen=True)
class TimeLimit:
    """The time limit of an item and when a case taken now is due."""

    hours: int
    due_at: dt.datetime
    on_the_spot: bool


@dataclass(frozen=True)
class Placement:
    """What the window sees once a place is known.

    ``grid`` is None outside every grid the caller may see (the case would wait in the
    triage queue). ``takes_case`` names who intake would assign: the grid's worker on
    duty, else the nearest on-duty worker of the community (``fallback``).
    """

    point: WGSPoint
    grid: LocatedGrid | None
    takes_case_id: int | None
    takes_case_name: str | None
    fallback: bool
    item: CatalogueEntry | None
    time_limit: TimeLimit | None
    nearby: list[sql.NearbyCase]
    likely_duplicate: int | None


@dataclass(frozen=True)
class WindowReport:
    """A matter taken at the window (coordinates in ``crs``, or only an address)."""

    item_code: str
    description: str
    channel: str = "window"
    lon: float | None = None
    lat: float | None = None
    crs: str | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None


@dataclass(frozen=True)
class Filed:
    """A matter filed at the window: the case, whether new, and the case it was linked to."""

    view: IncidentView
    created: bool
    linked_to: int | None
    may_complete: bool


def _entry(row: sql.CatalogueRow) -> CatalogueEntry:
    return CatalogueEntry(
        row.code,
        row.name,
        row.name_en,
        row.category,
        row.department_code,
        row.department_name,
        row.department_name_en,
        row.time_limit_hours,
        row.on_the_spot,
        row.high_frequency,
    )


def _matches(row: sql.CatalogueRow, words: list[str]) -> bool:
    parts = (row.code, row.name, row.name_en, row.category, row.department_name, row.description)
    hay = " ".join((x or "").lower() for x in parts)
    return all(w in hay for w in words)


async def search_catalogue(conn: AsyncConnection, query: str | None = None) -> list[CatalogueEntry]:
    """Find catalogue items by Chinese or English words or by code, high-frequency items first.

    Parameters
    ----------
    conn
        A connection.
    query
        Words (every word must occur in the code, names, category, department or
        description; case-insensitive). Empty or None: the whole catalogue.

    Raises
    ------
    InvalidInput
        The query is longer than :data:`SEARCH_MAX` characters.
    """
    text = (query or "").strip()
    if len(text) > SEARCH_MAX:
        raise InvalidInput(f"search at most {SEARCH_MAX} characters", loc=["query", "q"])
    words = text.lower().split()
    rows = await sql.catalogue(conn)
    exact = [r for r in rows if r.code.lower() == text.lower()]
    if exact:
        return [_entry(r) for r in exact]
    return [_entry(r) for r in rows if _matches(r, words)]


async def catalogue_item(conn: AsyncConnection, code: str) -> CatalogueEntry | None:
    """Return one catalogue item by code (None: no such item)."""
    for row in await sql.catalogue(conn):
        if row.code == code:
            return _entry(row)
    return None


async def desk_of(conn: AsyncConnection, principal: Principal) -> Desk:
    """Tell whether the caller is window staff and which channels it files through.

    Window staff are dispatchers, admins and workers bound to a ``window_worker``. The
    channels are the API's rule (:func:`api.services.incidents.intake.channels_for`)
    narrowed to those a desk takes matters through (:data:`DESK_CHANNELS`): the page
    offers exactly what ``POST /api/v1/incidents`` accepts from the same token.
    """
    channels = tuple(c for c in await intake.channels_for(conn, principal) if c in DESK_CHANNELS)
    staff = principal.role in ("admin", "dispatcher")
    if principal.role == "worker" and principal.person_id is not None:
        staff = await people_sql.person_role(conn, principal.person_id) == WINDOW_ROLE
    return Desk(staff, channels)


async def window_community(conn: AsyncConnection, principal: Principal) -> str | None:
    """Return the community whose window a worker token sits at (bound to a ``window_worker``), else None.

    The window page follows the cases of that community live (public fields only: what
    its nearby list shows anyway), though a worker token otherwise follows only its own.
    """
    if principal.role != "worker" or principal.person_id is None:
        return None
    post = await people_sql.person_post(conn, principal.person_id)
    if post is None or post[0] != WINDOW_ROLE:
        return None
    return post[1]


async def recent_cases(
    conn: AsyncConnection, principal: Principal, limit: int = RECENT_LIMIT
) -> list[IncidentView]:
    """List the cases this token filed (the window's recent list), newest first, as it may see them.

    Only the caller's own filings (its token reported them), whatever its role: the window
    follows what it took in (dispatched, handled, closed) without a wider view.
    """
    _total, rows = await q.list_incidents(
        conn, q.RowScope(reporter_token=principal.token_id), q.IncidentQuery(), limit, 0, "created"
    )
    return [view_of(principal, r) for r in rows]


async def find_places(conn: AsyncConnection, principal: Principal, words: str) -> list[sql.PlaceRow]:
    """Find the caller's address: buildings whose code is ``words`` or whose name or address has it.

    Only buildings inside the token's area are answered (an unscoped token: the city).

    Raises
    ------
    InvalidInput
        Fewer than 2 or more than :data:`SEARCH_MAX` characters.
    """
    text = words.strip()
    if not 2 <= len(text) <= SEARCH_MAX:
        raise InvalidInput(f"give 2-{SEARCH_MAX} characters of a name, address or code", loc=["query", "q"])
    area = policy.token_area(principal)
    return await sql.find_places(
        conn, text, community=area.community, district=area.district, limit=PLACES_LIMIT, city=area.city
    )


def time_limit(item: CatalogueEntry, now: dt.datetime | None = None) -> TimeLimit:
    """Return an item's time limit and the due time of a case taken ``now``."""
    start = now or dt.datetime.now(dt.UTC)
    return TimeLimit(item.time_limit_hours, limits.due_at(start, item.time_limit_hours), item.on_the_spot)


async def preview(
    conn: AsyncConnection,
    principal: Principal,
    point: WGSPoint,
    item_code: str | None,
    settings: IncidentSettings,
    *,
    tolerance_m: float,
) -> Placement:
    """Say what taking a matter at this place would do, before it is filed.

    Parameters
    ----------
    conn
        A connection.
    principal
        The caller (grids and cases outside its area are not shown).
    point
        The place, already converted to WGS84.
    item_code
        The item chosen so far (None: none yet; then no time limit and no nearby cases).
    settings
        The likely-duplicate radius and window.
    tolerance_m
        Grids this close are listed as neighbours.

    Raises
    ------
    InvalidInput
        ``item_code`` is not in the catalogue.
    """
    item = None
    if item_code:
        item = await catalogue_item(conn, item_code)
        if item is None:
            raise InvalidInput(f"unknown catalogue item {item_code!r}", loc=["query", "item_code"])
    try:
        grid: LocatedGrid | None = (await locate(conn, principal, point, tolerance_m)).grid
    except NotFound:
        grid = None
    plan = await q.plan_intake(
        conn,
        q.plan_params(
            item_code=item_code or "",
            idempotency_key=None,
            point=(point.lon, point.lat),
            tolerance_m=tolerance_m,
            duplicate_radius_m=settings.duplicate_radius_m,
            duplicate_window_hours=settings.duplicate_window_hours,
            city_hint=principal.community_code,
        ),
    )
    takes_id = takes_name = None
    fallback = False
    if grid is not None and plan.grid is not None:
        if plan.grid.worker_id is not None and plan.grid.worker_on_duty:
            takes_id, takes_name = plan.grid.worker_id, plan.grid.worker_name
        elif plan.nearest is not None:
            takes_id, takes_name, fallback = plan.nearest.id, plan.nearest.name, True
    nearby: list[sql.NearbyCase] = []
    if item is not None:
        area = policy.token_area(principal)
        nearby = await sql.nearby_open(
            conn,
            item_code=item.code,
            lon=point.lon,
            lat=point.lat,
            radius_m=max(NEARBY_RADIUS_M, settings.duplicate_radius_m),
            community=area.community,
            district=area.district,
            city=area.city,
            limit=NEARBY_LIMIT,
        )
    shown = {n.id for n in nearby}
    duplicate = plan.duplicate.id if plan.duplicate is not None and plan.duplicate.id in shown else None
    return Placement(
        point=point,
        grid=grid,
        takes_case_id=takes_id,
        takes_case_name=takes_name,
        fallback=fallback,
        item=item,
        time_limit=time_limit(item) if item is not None else None,
        nearby=nearby,
        likely_duplicate=duplicate,
    )


def _report(form: WindowReport) -> Report:
    contact = None
    if form.reporter_name or form.reporter_phone:
        contact = {"name": form.reporter_name, "phone": form.reporter_phone}
    return parse_report(
        {
            "item_code": form.item_code,
            "description": form.description,
            "channel": form.channel,
            "lon": form.lon,
            "lat": form.lat,
            "crs": form.crs,
            "address": form.address,
            "reporter": contact,
        }
    )


def parse_report(fields: dict[str, object]) -> Report:
    """Build a :class:`Report` from form fields, refusing bad ones as :class:`InvalidInput`.

    Raises
    ------
    InvalidInput
        The first field the report's schema refuses, named in ``loc`` (``["body", "crs"]``).
    """
    try:
        return Report.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"{first['msg']}", loc=["body", *first["loc"]]) from None


async def _link(
    conn: AsyncConnection,
    principal: Principal,
    new_id: int,
    into: int,
    point: tuple[float, float] | None,
) -> None:
    """Merge the case just filed into the open case nearby it repeats (the window's link)."""
    locked = {i: await q.lock(conn, i) for i in sorted((new_id, into))}
    new, target = locked[new_id], locked[into]
    assert new is not None
    loc: list[str | int] = ["body", "link_to"]
    if target is None or not policy.token_area(principal).covers(target.community_code):
        raise InvalidInput(f"no open case {into} nearby", loc=loc)
    if target.duplicate_of is not None or target.status not in workflow.OPEN_STATUSES:
        raise InvalidInput(f"case {into} is no longer open; file the matter as a new case", loc=loc)
    if target.item_code != new.item_code:
        raise InvalidInput(f"case {into} is about another item ({target.item_code})", loc=loc)
    if point is None:
        raise InvalidInput("a case is linked to one nearby: give the place", loc=["body", "lon"])
    near = await sql.nearby_open(
        conn,
        item_code=new.item_code,
        lon=point[0],
        lat=point[1],
        radius_m=NEARBY_RADIUS_M,
        community=None,
        district=None,
        limit=100,
        city=principal.city_code,
    )
    if into not in {n.id for n in near}:
        raise InvalidInput(f"case {into} is more than {NEARBY_RADIUS_M:g} m from this place", loc=loc)
    await q.mark_merged(conn, new_id, into)
    detail = {"into": into, "note": "linked at the window: the same matter", "at_window": True}
    await q.add_event(
        conn, new_id, new.city_code, q.NewEvent(principal.actor, "merged_into", new.status, "closed", detail)
    )
    await q.add_event(
        conn,
        into,
        target.city_code,
        q.NewEvent(
            principal.actor,
            "merged",
            target.status,
            target.status,
            {"duplicate": new_id, "note": "linked at the window", "reporters_added_from": new_id},
        ),
    )


def _may_complete(principal: Principal, view: IncidentView) -> bool:
    inc = view.incident
    if not inc.item_on_the_spot or inc.duplicate_of is not None or inc.status not in ("assigned", "accepted"):
        return False
    if principal.role == "worker":
        return inc.assignee_id == principal.person_id and inc.status == "accepted"
    return principal.role in ("admin", "dispatcher")


async def file_at_window(
    conn: AsyncConnection,
    principal: Principal,
    form: WindowReport,
    key: str | None,
    settings: IncidentSettings,
    *,
    tolerance_m: float,
    link_to: int | None = None,
) -> Filed:
    """Take a matter at the window: filed once per Idempotency-Key, optionally linked.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        Who takes it (its desk decides the channels; window staff keep an on-the-spot item).
    form
        The matter as typed.
    key
        The Idempotency-Key the page generated (a double click sends it twice: one case).
    settings
        Intake settings.
    tolerance_m
        Grids this close are neighbours.
    link_to
        An open case of the same item nearby that this matter repeats: the new report is
        merged into it at once and its reporter follows that case.

    Raises
    ------
    Forbidden
        The caller may not file through this channel.
    InvalidInput
        A field breaks an intake rule, or the case to link to is not an open case of the
        same item nearby.
    Conflict
        The key was used for another matter.
    """
    if form.channel not in DESK_CHANNELS:
        raise Forbidden(
            f"a desk files through {', '.join(DESK_CHANNELS)}, not {form.channel!r}", loc=["body", "channel"]
        )
    await intake.check_channel(conn, principal, form.channel)  # the API's rule, the same answer
    checked = intake.validate_report(_report(form), settings)
    result = await intake.create_incident(
        conn,
        principal,
        checked,
        intake.check_key(key, ("body", "idempotency_key")),
        settings,
        tolerance_m=tolerance_m,
    )
    point = None if checked.lon is None or checked.lat is None else (checked.lon, checked.lat)
    linked = None
    if link_to is not None:
        if result.created:
            await _link(conn, principal, result.incident_id, link_to, point)
        linked = link_to
    view = await reading.view_after_act(
        conn, principal, result.incident_id, tolerance_m, with_log=False, neighbours=result.neighbours
    )
    if view.incident.duplicate_of is not None:
        linked = view.incident.duplicate_of
    return Filed(view, result.created, linked, _may_complete(principal, view))


async def complete_on_the_spot(
    conn: AsyncConnection, principal: Principal, incident_id: int, *, tolerance_m: float
) -> IncidentView:
    """Finish an on-the-spot item (即办) at the window: the workflow's ``resolve``.

    The case counts as completed on the spot when it is resolved the day it came in
    (``incidents.on_the_spot``, the KPI ``on_the_spot.completed_on_the_spot``). A
    dispatcher's case still ``assigned`` is accepted first (the window took it up).

    Raises
    ------
    NotFound
        No such case, or one the caller is not related to.
    Conflict
        The item is not on-the-spot, or the case is not open at the window any more.
    Forbidden
        The caller does not own the case.
    """
    view = await reading.get_incident(conn, principal, incident_id, tolerance_m=tolerance_m)
    inc = view.incident
    if not inc.item_on_the_spot:
        raise Conflict(
            f"{inc.item_code} is not an on-the-spot item: it goes through the grid",
            loc=["path", "incident_id"],
        )
    note = "completed at the window (即办)"
    if inc.status == "assigned" and principal.role in ("admin", "dispatcher"):
        await moves.transition(
            conn,
            principal,
            incident_id,
            Move(action="accept", department=None, note=note, lon=None, lat=None, crs=None),
            tolerance_m=tolerance_m,
        )
    return await moves.transition(
        conn,
        principal,
        incident_id,
        Move(action="resolve", department=None, note=note, lon=None, lat=None, crs=None),
        tolerance_m=tolerance_m,
    )


async def area_bounds(conn: AsyncConnection, principal: Principal) -> people_sql.Bounds | None:
    """Return the extent of the token's area (the whole city for unscoped tokens), for the map."""
    area = policy.token_area(principal)
    return await people_sql.area_bounds(conn, area.community, area.district)
