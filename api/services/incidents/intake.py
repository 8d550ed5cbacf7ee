"""Intake (受理): a report located in the active grids and assigned to the grid's worker.

:func:`report_incident` takes a :class:`~api.services.incidents.inputs.Report` (the
JSON API and the console), :func:`create_incident` a validated :class:`Intake`
(also Open311). The assignment rule:

* the grid that contains the point (lowest code on a shared boundary) takes the
  case; its worker when on duty, else the nearest on-duty grid worker of the same
  community (then a window worker), and the ``assign`` event's ``reason`` says so;
* no grid (outside every active grid, or an address only): stored unlocated, in
  the window's triage queue;
* first-asked responsibility (首问负责): an on-the-spot item taken at the window by
  a token bound to a person is that person's, already accepted;
* a report of the same item near an open case reported recently is flagged as its
  likely duplicate.

An ``Idempotency-Key`` is per token; a retry with the same key and body returns the
first incident, a different body under the same key is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.auth.privacy import FIELD_KINDS, mask_for_log
from api.errors import Conflict, Forbidden, InvalidInput
from api.services.coords import WGSPoint, make_point
from api.services.incidents import reading
from api.services.incidents.inputs import Report
from api.services.incidents.views import IncidentView, view_of
from api.settings import IncidentSettings
from api.store.sql import console as people_sql
from api.store.sql import incidents as q

#: Channels a report can come through, and the token roles that may use each (admin: all).
CHANNEL_ROLES: dict[str, frozenset[str]] = {
    "window": frozenset({"dispatcher"}),
    "phone": frozenset({"dispatcher", "reporter"}),
    "mini_program": frozenset({"reporter", "dispatcher"}),
    "patrol": frozenset({"worker", "dispatcher"}),
    "open311": frozenset({"reporter", "dispatcher"}),
}
#: Channels a worker token gains from the role of the person it is bound to: the window's
#: generalist social workers (全科社工, ``window_worker``) take matters at the front desk and
#: by phone, like a dispatcher (and on patrol, like every worker).
PERSON_CHANNELS: dict[str, frozenset[str]] = {"window_worker": frozenset({"window", "phone"})}
#: Every channel, in the order pages offer them.
CHANNELS: tuple[str, ...] = ("window", "phone", "patrol", "mini_program", "open311")

#: Longest Idempotency-Key accepted (characters).
KEY_MAX = 100


@dataclass(frozen=True)
class Intake:
    """A validated report: the location is already in WGS84 (or absent)."""

    item_code: str
    description: str
    channel: str
    lon: float | None = None
    lat: float | None = None
    input_crs: str | None = None
    input_lon: float | None = None
    input_lat: float | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None

    def fingerprint(self) -> str:
        """Return the SHA-256 of the report as sent (what an Idempotency-Key retry must repeat)."""
        # the fields as asdict() gives them (plain values: no deep copy needed), without the WGS84 point
        sent = {f: getattr(self, f) for f in _SENT_FIELDS}
        return hashlib.sha256(json.dumps(sent, sort_keys=True).encode()).hexdigest()


#: The fields of :class:`Intake` its fingerprint covers (all but the converted point).
_SENT_FIELDS = tuple(f.name for f in fields(Intake) if f.name not in ("lon", "lat"))


@dataclass(frozen=True)
class IntakeResult:
    """What intake did: the incident, whether it is new, the grids near its point.

    ``record`` is the new case as stored (read back by the insert itself); None for a replay.
    """

    incident_id: int
    created: bool
    neighbours: list[q.NeighbourGrid]
    record: q.IncidentRecord | None = None


@dataclass(frozen=True)
class Reported:
    """A report taken: the case as the reporter sees it, and whether it is new."""

    view: IncidentView
    created: bool


def namespaced_key(token_id: int, key: str) -> str:
    """Return the stored form of an Idempotency-Key: keys are per token.

    One client's key never returns another's case.
    """
    return f"{token_id}:{key}"


def check_key(key: str | None, loc: tuple[str, ...] = ("header", "idempotency-key")) -> str | None:
    """Return an Idempotency-Key as sent, after checking its form.

    Raises
    ------
    InvalidInput
        Empty, longer than :data:`KEY_MAX` or not printable.
    """
    if key is None:
        return None
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1-{KEY_MAX} printable characters", loc=list(loc))
    return key


async def channels_for(conn: AsyncConnection, principal: Principal) -> tuple[str, ...]:
    """Return the channels the caller may report through, in :data:`CHANNELS` order.

    The one rule the API and the console pages share: the token's role
    (:data:`CHANNEL_ROLES`; admin: every channel), plus for a worker token the channels
    of the person it is bound to (:data:`PERSON_CHANNELS`).
    """
    if principal.role == "admin":
        return CHANNELS
    allowed = {c for c, roles in CHANNEL_ROLES.items() if principal.role in roles}
    if principal.role == "worker" and principal.person_id is not None:
        allowed |= PERSON_CHANNELS.get(await people_sql.person_role(conn, principal.person_id) or "", set())
    return tuple(c for c in CHANNELS if c in allowed)


async def check_channel(
    conn: AsyncConnection, principal: Principal, channel: str, loc: tuple[str, ...] = ("body", "channel")
) -> None:
    """Refuse a channel the caller may not report through (:func:`channels_for`).

    Raises
    ------
    Forbidden
        The channel is not among the caller's.
    """
    allowed = await channels_for(conn, principal)
    if channel not in allowed:
        raise Forbidden(
            f"role {principal.role!r} may not report through the channel {channel!r}; "
            f"allowed channels for this token: {', '.join(allowed) or 'none'}",
            loc=list(loc),
        )


def report_point(report: Report) -> WGSPoint | None:
    """Return the report's point in WGS84 (None when it gives none).

    Raises
    ------
    InvalidInput
        Both ``location`` and ``lon``/``lat``, a location that is not a GeoJSON
        Point, half a coordinate pair, no ``crs``, or coordinates out of range.
    """
    loc = report.location
    if loc is not None and (report.lon is not None or report.lat is not None):
        raise InvalidInput("give either `location` or `lon`/`lat`, not both", loc=["body", "location"])
    if loc is not None:
        kind = loc.get("type")
        if kind != "Point":
            raise InvalidInput(
                f"location must be a GeoJSON Point, got {kind!r}", loc=["body", "location", "type"]
            )
        coords = loc.get("coordinates")
        if (
            not isinstance(coords, list)
            or len(coords) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
        ):
            raise InvalidInput(
                "a Point's coordinates are [lon, lat], two numbers", loc=["body", "location", "coordinates"]
            )
        lon, lat = float(coords[0]), float(coords[1])
        prefix: tuple[str, ...] = ("body", "location")
    elif report.lon is not None or report.lat is not None:
        if report.lon is None or report.lat is None:
            missing = "lat" if report.lat is None else "lon"
            raise InvalidInput("lon and lat come together", loc=["body", missing])
        lon, lat, prefix = report.lon, report.lat, ("body",)
    else:
        return None
    if report.crs is None:
        raise InvalidInput(
            "crs is required with a location: wgs84, cgcs2000, gcj02 "
            "(mini-programs, Amap) or bd09 (Baidu); it is never guessed",
            loc=["body", "crs"],
        )
    return make_point(lon, lat, report.crs.value, prefix)


async def intake_from_report(
    conn: AsyncConnection, report: Report, principal: Principal, settings: IncidentSettings
) -> Intake:
    """Check a report against the intake rules and return it validated.

    Parameters
    ----------
    conn
        A connection (the person a worker token is bound to may widen its channels).
    report
        The report as sent.
    principal
        Who reports (:func:`channels_for` decides the channels it may use).
    settings
        The description size limit.

    Returns
    -------
    Intake
        The report with its point in WGS84.

    Raises
    ------
    Forbidden
        The role may not use the channel.
    InvalidInput
        The description is too long or blank; the location is malformed; neither a
        location nor an address is given.
    """
    await check_channel(conn, principal, report.channel)
    return validate_report(report, settings)


def validate_report(report: Report, settings: IncidentSettings) -> Intake:
    """Check a report's description and place and return it validated (the channel is the caller's).

    Callers check the channel first with :func:`check_channel` (as
    :func:`intake_from_report` does): the API and every page share that one rule.

    Raises
    ------
    InvalidInput
        The description is too long or blank; the location is malformed; neither a
        location nor an address is given.
    """
    if len(report.description) > settings.description_max_chars:
        raise InvalidInput(
            f"description is {len(report.description)} characters; at most {settings.description_max_chars}",
            loc=["body", "description"],
        )
    if not report.description.strip():
        raise InvalidInput("description is blank", loc=["body", "description"])
    point = report_point(report)
    if point is None and not (report.address and report.address.strip()):
        raise InvalidInput(
            "a report needs a location (with crs) or at least an address", loc=["body", "location"]
        )
    contact = report.reporter
    return Intake(
        item_code=report.item_code,
        description=report.description,
        channel=report.channel,
        lon=point.lon if point else None,
        lat=point.lat if point else None,
        input_crs=point.input_crs if point else None,
        input_lon=point.input_lon if point else None,
        input_lat=point.input_lat if point else None,
        address=report.address,
        reporter_name=contact.name if contact else None,
        reporter_phone=contact.phone if contact else None,
    )


# --------------------------------------------------------------------------- assignment


@dataclass(frozen=True)
class _Assignment:
    grid_id: int | None
    grid: str | None
    community: str | None
    city_code: str | None
    assignee: int | None
    reason: str
    fallback: bool


def _assignment(plan: q.IntakePlan) -> _Assignment:
    """Decide grid, community, worker and the reason from the planning query's answer."""
    grid, near = plan.grid, plan.nearest
    if grid is None:
        return _Assignment(
            None,
            None,
            None,
            None,
            None,
            "outside every active grid: stored unlocated, in the window's triage queue",
            False,
        )
    where = (grid.id, grid.code, grid.community_code, grid.city_code)
    if grid.worker_id is not None and grid.worker_on_duty:
        reason = f"grid {grid.code}: its worker {grid.worker_name} is on duty"
        return _Assignment(*where, grid.worker_id, reason, False)
    why = (
        f"grid {grid.code} has no worker"
        if grid.worker_id is None
        else f"grid {grid.code}: its worker {grid.worker_name} is off duty"
    )
    if near is None:
        return _Assignment(
            *where, None, why + "; no worker of the community is on duty: waiting in triage", False
        )
    dist = "position unknown" if near.distance_m is None else f"{int(near.distance_m)} m away"
    reason = (
        f"{why}; nearest available {near.role.replace('_', ' ')} of community "
        f"{grid.community_code}: {near.name} ({dist})"
    )
    return _Assignment(*where, near.id, reason, True)


def _check_replay(prior: q.PriorRequest, fingerprint: str) -> int:
    if prior.request_hash != fingerprint:
        raise Conflict(
            f"Idempotency-Key was already used for incident {prior.id} with a different "
            "request body; send a new key for a new report, or repeat the original body to retry",
            loc=["header", "idempotency-key"],
        )
    return prior.id


def _events(
    principal: Principal,
    intake: Intake,
    where: _Assignment,
    status: str,
    duplicate: q.DuplicateHit | None,
    neighbours: list[q.NeighbourGrid],
    settings: IncidentSettings,
    keyed: bool,
) -> list[q.NewEvent]:
    """Write the intake's events: intake, assign (or triage), and a likely duplicate."""
    events = [
        q.NewEvent(
            principal.actor,
            "intake",
            None,
            "submitted",
            {
                "channel": intake.channel,
                "item": intake.item_code,
                "input_crs": intake.input_crs,
                "input_point": None if intake.input_lon is None else [intake.input_lon, intake.input_lat],
                "address": intake.address,
                "idempotency_key": keyed,
            },
        ),
        q.NewEvent(
            "system",
            "assign" if where.assignee else "triage",
            "submitted",
            status,
            {
                "grid": where.grid,
                "community": where.community,
                "assignee": where.assignee,
                "reason": where.reason,
                "neighbour_grids": [{"code": n.code, "distance_m": n.distance_m} for n in neighbours],
                "fallback": where.fallback,
            },
        ),
    ]
    if duplicate is not None:
        events.append(
            q.NewEvent(
                "system",
                "flag_duplicate",
                status,
                status,
                {
                    "likely_duplicate_of": duplicate.id,
                    "distance_m": duplicate.distance_m,
                    "radius_m": settings.duplicate_radius_m,
                    "window_hours": settings.duplicate_window_hours,
                },
            )
        )
    return events


async def create_incident(
    conn: AsyncConnection,
    principal: Principal,
    intake: Intake,
    key: str | None,
    settings: IncidentSettings,
    *,
    tolerance_m: float,
    audit: Mapping[str, Any] | None = None,
    announce: Callable[[str], Awaitable[None]] | None = None,
) -> IntakeResult:
    """Take a validated report: locate it, assign it, flag a likely duplicate, log it.

    Two statements: one reads everything the decision needs (:func:`q.plan_intake`), one
    writes the case, its reporter, its events and (with ``audit``) its audit entry
    (:func:`q.take_incident`). The write is atomic by itself, so on an autocommit
    connection it is the whole transaction, committed before this returns; inside the
    caller's transaction it is part of that. Read Committed gives each statement its own
    snapshot either way, so the decision reads the same.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        Who reports (its token owns the Idempotency-Key; a window worker's token
        keeps an on-the-spot item).
    intake
        The validated report.
    key
        The client's Idempotency-Key as sent (namespaced per token here), or None.
    settings
        Duplicate radius and window.
    tolerance_m
        Grids this close to the point are listed as neighbours.
    audit
        The audit entry's envelope (who, where, route, status: :func:`api.auth.audit.entry`'s
        columns) when the write's own statement records it; None when the caller's
        transaction audits the write.
    announce
        Sends the new case's live message after its statement committed, on an autocommit
        connection (:func:`q.take_incident`); None: the trigger sends it from the transaction.

    Returns
    -------
    IntakeResult
        The incident id, False in ``created`` for a replay of an earlier request.

    Raises
    ------
    InvalidInput
        The catalogue item does not exist.
    Conflict
        The key was used with another body, or the store holds no city yet.
    """
    stored_key = namespaced_key(principal.token_id, key) if key is not None else None
    fingerprint = intake.fingerprint()
    point = None if intake.lon is None or intake.lat is None else (intake.lon, intake.lat)
    plan = await q.plan_intake(
        conn,
        q.plan_params(
            item_code=intake.item_code,
            idempotency_key=stored_key,
            point=point,
            tolerance_m=tolerance_m,
            duplicate_radius_m=settings.duplicate_radius_m,
            duplicate_window_hours=settings.duplicate_window_hours,
            city_hint=principal.community_code,
            city=principal.city_code,
        ),
    )
    if plan.item is None:
        raise InvalidInput(
            f"unknown catalogue item {intake.item_code!r} (see GET /open311/v2/services.json)",
            loc=["body", "item_code"],
        )
    if plan.prior is not None:
        return IntakeResult(_check_replay(plan.prior, fingerprint), False, plan.neighbours)
    if plan.city_code is None:
        raise Conflict("the store holds no city yet; load one before taking reports")

    where = _assignment(plan)
    if point is None:
        where = _replace(where, reason="no location given: in the window's triage queue")
    status = "assigned" if where.assignee is not None else "submitted"
    accepted = False
    if intake.channel == "window" and plan.item.on_the_spot and principal.person_id is not None:
        # first-asked responsibility (首问负责): the window worker who took it owns it
        where = _replace(
            where,
            assignee=principal.person_id,
            reason="first-asked responsibility: on-the-spot item taken at the window by "
            f"person {principal.person_id}",
        )
        status, accepted = "accepted", True
    new = q.NewIncident(
        city_code=where.city_code or plan.city_code,
        item_code=intake.item_code,
        description=intake.description,
        channel=intake.channel,
        reporter_name=intake.reporter_name,
        reporter_phone=intake.reporter_phone,
        reporter_token_id=principal.token_id,
        lon=intake.lon,
        lat=intake.lat,
        input_crs=intake.input_crs,
        address=intake.address,
        located=where.grid_id is not None,
        grid_id=where.grid_id,
        community_code=where.community,
        assignee_id=where.assignee,
        status=status,
        idempotency_key=stored_key,
        request_hash=fingerprint,
        time_limit_hours=float(plan.item.time_limit_hours),
        accepted=accepted,
        likely_duplicate_of=plan.duplicate.id if plan.duplicate else None,
    )
    events = _events(
        principal, intake, where, status, plan.duplicate, plan.neighbours, settings, key is not None
    )
    masked = mask_for_log({k: getattr(new, k) for k in FIELD_KINDS if hasattr(new, k)}) if audit else None
    record = await q.take_incident(conn, new, events, audit, masked, announce)
    if record is None:
        # a concurrent retry with the same key won the insert (this one waited for its commit)
        prior = await q.prior_request(conn, stored_key or "")
        if prior is None:  # pragma: no cover - the conflicting row is visible after the wait
            raise Conflict("Idempotency-Key is being used by a request that failed; retry")
        return IntakeResult(_check_replay(prior, fingerprint), False, plan.neighbours)
    return IntakeResult(record.row.id, True, plan.neighbours, record)


def _replace(a: _Assignment, **changes: Any) -> _Assignment:
    return _Assignment(**{**asdict(a), **changes})


async def report_incident(
    conn: AsyncConnection,
    principal: Principal,
    report: Report,
    key: str | None,
    settings: IncidentSettings,
    *,
    tolerance_m: float,
    audit: Mapping[str, Any] | None = None,
    announce: Callable[[str], Awaitable[None]] | None = None,
) -> Reported:
    """Take a report from the API or the console and answer the case as the reporter sees it.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        Who reports.
    report
        The report as sent.
    key
        The client's Idempotency-Key, or None.
    settings
        Intake settings (description limit, duplicate radius and window).
    tolerance_m
        Grids this close to the point are listed as neighbours.
    audit
        The audit entry's envelope when the intake's write records it (see
        :func:`create_incident`).
    announce
        Sends the new case's live message after the commit (see :func:`create_incident`).

    Returns
    -------
    Reported
        The case (without its log, with the grids near its point) and whether it is new.

    Raises
    ------
    Forbidden
        The role may not use the channel.
    InvalidInput
        A field breaks an intake rule (named in ``loc``).
    Conflict
        The Idempotency-Key was used with another body.
    """
    intake = await intake_from_report(conn, report, principal, settings)
    result = await create_incident(
        conn,
        principal,
        intake,
        check_key(key),
        settings,
        tolerance_m=tolerance_m,
        audit=audit,
        announce=announce,
    )
    if result.record is not None:
        return Reported(view_of(principal, result.record, neighbours=result.neighbours), True)
    view = await reading.view_after_act(
        conn, principal, result.incident_id, tolerance_m, with_log=False, neighbours=result.neighbours
    )
    return Reported(view, result.created)
