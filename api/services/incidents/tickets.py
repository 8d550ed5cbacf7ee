"""Resident reports (``/report``): no account, a ticket secret, status, one rating.

A resident reports through the public page; the report is taken by the same intake as
the API (:func:`api.services.incidents.intake.create_incident`) on behalf of
:data:`RESIDENT` — a reporter principal that no token carries (token id 0 is never
issued), so no caller of the API can act as it. The page generates a **ticket secret**
(:func:`new_secret`, 256 random bits) when it renders the form; the submit carries it:

* it is the report's Idempotency-Key (stored as the SHA-256 only): a double tap or a
  retry makes one case, and answers the same ticket;
* its SHA-256 is the key of ``report_tickets``: the ticket page ``/report/t/<secret>``
  finds the case by it. The secret is shown only to the resident (the link answered by
  the submit), never stored, never listed; a resident reaches their own report only.

The ticket shows the case's public facts (item, status, the steps and their times, due,
the community and grid) — never a staff member's name or a note. A case merged into
another follows that case (its status, its rating). Once resolved, the resident rates it
once (:func:`api.services.incidents.moves.rate`).

A photo (optional) is checked by its bytes (JPEG, PNG or WebP, at most
:data:`PHOTO_MAX_BYTES`) and kept in ``incident_photos`` (``bytea``) in the store of
record; the page shrinks large photos before sending them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import InvalidInput, NotFound, TooLarge
from api.services.incidents import intake, moves, reading, workflow
from api.services.incidents.inputs import Rating
from api.services.incidents.views import IncidentView
from api.services.incidents.window import parse_report
from api.settings import IncidentSettings
from api.store.sql import incidents as q
from api.store.sql import tickets as sql

#: The reporter every public report is filed as (no token has id 0).
RESIDENT = Principal(token_id=0, role="reporter")
#: The channel of the public report page (the web twin of the estate's mini-program).
CHANNEL = "mini_program"
#: Largest photo accepted (bytes); the page shrinks photos to fit.
PHOTO_MAX_BYTES = 700_000
#: What a ticket secret looks like (``secrets.token_urlsafe(32)``).
SECRET_FORM = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: The steps a resident sees in the log (no notes, no names).
PUBLIC_STEPS = frozenset(
    {
        "intake",
        "assign",
        "triage",
        "accept",
        "start",
        "resolve",
        "escalate",
        "department_accept",
        "return",
        "verify",
        "close",
        "reopen",
        "reassign",
        "merged_into",
        "rated",
    }
)


@dataclass(frozen=True)
class ResidentReport:
    """What a resident reports: the item, the place (in ``crs``) or an address, the words."""

    item_code: str
    description: str
    lon: float | None = None
    lat: float | None = None
    crs: str | None = None
    address: str | None = None
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class PhotoIn:
    """A photo as uploaded (its declared type is not trusted: the bytes are)."""

    data: bytes


@dataclass(frozen=True)
class Submitted:
    """A report taken: the ticket secret (as sent), the case, whether it is new."""

    secret: str
    incident_id: int
    created: bool


@dataclass(frozen=True)
class Step:
    """One public step of a case: what happened, when, and the status after it."""

    action: str
    at: dt.datetime
    to_status: str | None


@dataclass(frozen=True)
class TicketView:
    """A resident's report as the resident sees it.

    ``case`` is the case that handles the matter now (the report itself, or the case it
    was merged into); ``own`` is the report as the resident filed it.
    """

    own: IncidentView
    case: IncidentView
    merged_into: int | None
    steps: list[Step]
    has_photo: bool
    may_rate: bool


def new_secret() -> str:
    """Return a fresh ticket secret (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """Return the SHA-256 (hex) a ticket secret is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_secret(secret: str, loc: list[str | int]) -> str:
    if not SECRET_FORM.match(secret or ""):
        raise InvalidInput("the ticket is not valid: reload the report page and try again", loc=loc)
    return secret


def photo_type(data: bytes) -> str | None:
    """Return the type of an image from its first bytes (JPEG, PNG, WebP), None otherwise."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_photo(photo: PhotoIn) -> tuple[str, str]:
    """Check a photo and return its type and SHA-256.

    Raises
    ------
    TooLarge
        Larger than :data:`PHOTO_MAX_BYTES`.
    InvalidInput
        Empty, or not a JPEG, PNG or WebP image.
    """
    loc: list[str | int] = ["body", "photo"]
    if not photo.data:
        raise InvalidInput("the photo is empty", loc=loc)
    if len(photo.data) > PHOTO_MAX_BYTES:
        raise TooLarge(
            f"the photo is {len(photo.data)} bytes; at most {PHOTO_MAX_BYTES} (the page shrinks photos)",
            loc=loc,
        )
    kind = photo_type(photo.data)
    if kind is None:
        raise InvalidInput("the photo must be a JPEG, PNG or WebP image", loc=loc)
    return kind, hashlib.sha256(photo.data).hexdigest()


async def submit(
    conn: AsyncConnection,
    report: ResidentReport,
    secret: str,
    photo: PhotoIn | None,
    settings: IncidentSettings,
    *,
    tolerance_m: float,
) -> Submitted:
    """Take a resident's report (idempotent per ticket secret) and store its ticket and photo.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    report
        The report as the resident gave it.
    secret
        The ticket secret the page generated (:func:`new_secret`).
    photo
        An optional photo.
    settings
        Intake settings.
    tolerance_m
        Grids this close are neighbours.

    Raises
    ------
    InvalidInput
        A field breaks an intake rule (named in ``loc``), or the secret is malformed.
    TooLarge
        The photo is too large.
    Conflict
        The same ticket was already used for another report.
    """
    _check_secret(secret, ["body", "ticket"])
    checked_photo = check_photo(photo) if photo is not None else None
    contact = {"name": report.name, "phone": report.phone} if (report.name or report.phone) else None
    parsed = parse_report(
        {
            "item_code": report.item_code,
            "description": report.description,
            "channel": CHANNEL,
            "lon": report.lon,
            "lat": report.lat,
            "crs": report.crs,
            "address": report.address,
            "reporter": contact,
        }
    )
    checked = await intake.intake_from_report(conn, parsed, RESIDENT, settings)
    hashed = secret_hash(secret)
    result = await intake.create_incident(conn, RESIDENT, checked, hashed, settings, tolerance_m=tolerance_m)
    if result.created:
        await sql.insert_ticket(conn, hashed, result.incident_id)
        if checked_photo is not None and photo is not None:
            await sql.insert_photo(conn, result.incident_id, checked_photo[0], photo.data, checked_photo[1])
    return Submitted(secret, result.incident_id, result.created)


async def _ticket_incident(conn: AsyncConnection, secret: str) -> int:
    loc: list[str | int] = ["path", "secret"]
    if not SECRET_FORM.match(secret or ""):
        raise NotFound("no such ticket", loc=loc)
    incident_id = await sql.ticket_incident(conn, secret_hash(secret))
    if incident_id is None:
        raise NotFound("no such ticket", loc=loc)
    return incident_id


async def open_ticket(conn: AsyncConnection, secret: str, *, tolerance_m: float) -> TicketView:
    """Return a resident's report by its ticket secret (the only key; there is no listing).

    Raises
    ------
    NotFound
        No ticket has this secret (a malformed one answers the same).
    """
    own_id = await _ticket_incident(conn, secret)
    own = await reading.get_incident(conn, RESIDENT, own_id, tolerance_m=tolerance_m)
    into = own.incident.duplicate_of
    case = own if into is None else await reading.get_incident(conn, RESIDENT, into, tolerance_m=tolerance_m)
    steps = [
        Step(e.action, e.at, e.to_status)
        for view in ((own,) if into is None else (own, case))
        for e in (view.events or [])
        if e.action in PUBLIC_STEPS and not (view is case and into is not None and e.action == "intake")
    ]
    steps.sort(key=lambda s: s.at)
    inc = case.incident
    may_rate = inc.status in workflow.DONE_STATUSES and inc.rating is None and inc.duplicate_of is None
    return TicketView(own, case, into, steps, await sql.has_photo(conn, own_id), may_rate)


async def ticket_photo(conn: AsyncConnection, secret: str) -> sql.Photo:
    """Return the photo of a resident's report by its ticket secret.

    Raises
    ------
    NotFound
        No such ticket, or the report has no photo.
    """
    photo = await sql.photo(conn, await _ticket_incident(conn, secret))
    if photo is None:
        raise NotFound("this report has no photo", loc=["path", "secret"])
    return photo


async def rate_ticket(
    conn: AsyncConnection, secret: str, rating: Rating, *, tolerance_m: float
) -> IncidentView:
    """Record the resident's one rating (好差评) of the case handling their report.

    Raises
    ------
    NotFound
        No such ticket.
    Conflict
        The case is not resolved yet, or already rated.
    """
    own_id = await _ticket_incident(conn, secret)
    record = await q.fetch(conn, own_id)
    target = own_id if record is None or record.row.duplicate_of is None else record.row.duplicate_of
    return await moves.rate(conn, RESIDENT, target, rating, tolerance_m=tolerance_m)


async def area_outline(conn: AsyncConnection) -> sql.AreaOutline:
    """Return the communities' outlines and names (public facts) for the report page's map."""
    return await sql.community_outlines(conn)
