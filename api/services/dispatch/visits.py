"""Household visits (入户走访) with proof of presence, and the must-visit households that are due.

Grid workers record visits (and community police on joint visits, 警网融合)
with their position at the door; a visit farther than ``proof_radius_m`` from
the building is refused. Residents' names and flags in the due list are shown
only to those who visit them (:mod:`api.auth.privacy`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy, privacy
from api.auth.principal import Principal
from api.errors import InvalidInput, NotFound
from api.services.coords import make_point
from api.services.dispatch import rules
from api.services.dispatch.checklist import VISIT_CHECKLIST, unknown_items
from api.services.dispatch.inputs import VisitIn
from api.services.dispatch.scope import in_token_area, require_person
from api.services.dispatch.views import ChecklistEntry, DueHousehold, GridWorker, VisitRecorded, VisitsDue
from api.settings import DispatchSettings
from api.store.sql import people, visits
from api.store.sql.people import PersonPlace
from api.store.sql.visits import NewVisit

#: Who records household visits: grid workers, and community police on joint visits (警网融合).
VISITOR_ROLES = ("grid_worker", "police")


def checklist() -> list[ChecklistEntry]:
    """List the 30 grid-visit checklist items, in their order."""
    return [
        ChecklistEntry(code=i.code, name=i.name, name_en=i.name_en, group=i.group) for i in VISIT_CHECKLIST
    ]


def _check_checklist(codes: list[str]) -> None:
    bad = unknown_items(codes)
    if bad:
        raise InvalidInput(f"not on the 30-item visit checklist: {', '.join(bad)}", loc=["body", "checklist"])
    if len(set(codes)) != len(codes):
        raise InvalidInput("checklist items repeat", loc=["body", "checklist"])


async def record_visit(
    conn: AsyncConnection, principal: Principal, settings: DispatchSettings, visit: VisitIn
) -> VisitRecorded:
    """Record a household visit, with proof of presence at the building.

    Parameters
    ----------
    conn
        A connection inside a transaction.
    principal
        The worker's own token, or staff whose area holds the worker and the building.
    settings
        Proof radius and clock skew.
    visit
        The building (code or id), the household, the checklist items ticked and
        the worker's position at the door (in ``visit.crs``).

    Returns
    -------
    VisitRecorded
        The visit and its distance from the building.

    Raises
    ------
    InvalidInput
        Not exactly one of building code and id, items not on the checklist or
        repeated, a visitor who is not a grid worker or police officer, a time in
        the future, a resident of another building, or a position too far from
        the building. Nothing is stored then.
    Forbidden
        A worker token recording for another person.
    NotFound
        No such worker, building or resident in the caller's reach.
    """
    if (visit.building is None) == (visit.building_id is None):
        raise InvalidInput("give exactly one of building (code) or building_id", loc=["body", "building"])
    _check_checklist(visit.checklist)
    worker = await people.get_person(conn, visit.worker_id)
    place = None if worker is None else PersonPlace(worker.id, worker.city_code, worker.community_code)
    require_person(principal, visit.worker_id, place, ["body", "worker_id"])
    assert worker is not None
    if worker.role not in VISITOR_ROLES:
        raise InvalidInput(
            f"person {visit.worker_id} is a {worker.role}; "
            f"visits are recorded by {' or '.join(VISITOR_ROLES)}",
            loc=["body", "worker_id"],
        )
    now = rules.utcnow()
    at = visit.at or now
    rules.check_ping_time(at, now, settings, ["body", "at"])
    lon, lat = visit.position.coordinates
    pt = make_point(lon, lat, visit.crs.value, ("body", "position"))
    # building codes are unique per city: the worker's city names which one
    b = await visits.building(conn, visit.building_id, visit.building, pt.lon, pt.lat, worker.city_code)
    if b is None or not in_token_area(principal, b.community_code, b.city_code):
        which = visit.building if visit.building is not None else visit.building_id
        raise NotFound(f"no building {which}", loc=["body", "building" if visit.building else "building_id"])
    if visit.resident_id is not None:
        r = await visits.resident(conn, visit.resident_id)
        if r is None or not in_token_area(principal, r.community_code, r.city_code):
            raise NotFound(f"no resident with id {visit.resident_id}", loc=["body", "resident_id"])
        if r.building_id != b.id:
            raise InvalidInput(
                f"resident {visit.resident_id} does not live in building {b.code}",
                loc=["body", "resident_id"],
            )
    rules.check_presence(b.distance_m, settings, f"building {b.code}", ["body", "position"])
    visit_id = await visits.insert_visit(
        conn,
        NewVisit(
            city_code=b.city_code,
            building_id=b.id,
            resident_id=visit.resident_id,
            worker_id=visit.worker_id,
            at=at,
            checklist=visit.checklist,
            notes=visit.notes,
            lon=pt.lon,
            lat=pt.lat,
        ),
    )
    return VisitRecorded(
        id=visit_id,
        building=b.code,
        building_id=b.id,
        resident_id=visit.resident_id,
        worker_id=visit.worker_id,
        at=at,
        checklist=visit.checklist,
        distance_m=round(b.distance_m, 1),
    )


async def visits_due(
    conn: AsyncConnection, principal: Principal, grid_code: str, horizon_days: int = 0
) -> VisitsDue:
    """List the must-visit households of a grid that are overdue, or due within ``horizon_days``.

    Never-visited households come first, then the most overdue. Names and
    health/hardship flags are shown to the grid's own worker and to dispatchers
    in scope; masked for everyone else.

    Raises
    ------
    NotFound
        No active grid with this code, or one the caller is not related to
        (its community; its worker for a worker token bound to a person).
    """
    g = await visits.grid(conn, grid_code, principal.city_code)
    policy.require_related(
        principal,
        None
        if g is None
        else policy.Relation.of(g.community_code, persons=(g.worker_id,), city_code=g.city_code),
        f"active grid with code {grid_code}",
        ["path", "code"],
    )
    assert g is not None
    now = rules.utcnow()
    rows = await visits.visits_due(conn, g.id, now, now + dt.timedelta(days=horizon_days))
    masked = privacy.mask_people(
        (dataclasses.asdict(r) for r in rows),
        principal,
        community_code=g.community_code,
        persons=[g.worker_id],
    )
    households = [DueHousehold(**m) for m in masked]
    return VisitsDue(
        grid=grid_code,
        grid_name=g.name,
        worker=None if g.worker_id is None else GridWorker(id=g.worker_id, name=g.worker_name),
        as_of=now,
        count=len(households),
        never_visited=sum(1 for h in households if h.last_visit_at is None),
        households=households,
    )
