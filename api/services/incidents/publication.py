"""Open311 publication policy: which cases the public sees, and what of them.

A city publishes the state of its shared places, never its residents' affairs:

* **Published or not** — each catalogue item is public or private
  (``service_items.public``, migration ``0024_publication``: streets, squares, lifts,
  mains, sewers, lights and litter are public; every application of the public-service
  catalogue, disputes and anything pointing at one household are private; new items
  are private). Dispatchers and admins may publish or hide a single case
  (:func:`set_publication`, audited); their decision overrides the item's rule.
* **Who sees what** (:func:`audience`) — an anonymous reader sees published cases only;
  a private case is not there at all (a list leaves it out, its id answers 404 like a
  missing one). A token reader sees the cases related to it (its area, its person's
  cases, its department's, its own reports) exactly as before, and other cases as the
  public does.
* **What the public sees of a case** (:func:`shown`) — its place rounded to the centre
  of the 100 m × 100 m cell holding it, in the point's UTM zone (never the exact point;
  at most 71 m off, the same for every case in the cell); the community's name instead
  of the address typed in; the description with names, phone numbers and ID numbers
  masked (:func:`api.auth.privacy.mask_text`, the case's reporters' names included).
  Reporters' contact details are never in Open311 answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import HTTPConnection

from api.auth import audit, policy, privacy
from api.auth.principal import Principal
from api.errors import Forbidden
from api.services.incidents import access
from api.store.sql import incidents as qi
from api.store.sql import open311 as q

#: The side of the cell a published case's point is rounded to (metres).
CELL_M = 100.0
#: Roles that publish or hide a case.
PUBLISH_ROLES = frozenset({"dispatcher", "admin"})


# --------------------------------------------------------------------------- reading


def audience(principal: Principal | None) -> q.Audience:
    """Return who reads: nothing related for anonymous callers; else the token's own rows.

    The rows related to a token are the ones its incident list shows when it names no
    area (:func:`api.services.incidents.access.row_scope` over the token's own area).
    """
    if principal is None:
        return q.Audience(None, CELL_M)
    return q.Audience(access.row_scope(principal, policy.token_area(principal)), CELL_M)


@dataclass(frozen=True)
class Shown:
    """What a reader sees of a case's text and place."""

    description: str
    address: str | None
    lon: float | None
    lat: float | None


def shown(row: q.RequestRow) -> Shown:
    """Return a case as its reader may see it: whole when related, else as the public does."""
    if row.related:
        return Shown(row.description, row.address, row.lon, row.lat)
    return Shown(
        privacy.mask_text(row.description, row.reporter_names) or "",
        row.community_name,
        row.cell_lon,
        row.cell_lat,
    )


# --------------------------------------------------------------------------- deciding


class PublicationChange(BaseModel):
    """A staff decision on one case: publish (true), hide (false), or back to its item's rule (null)."""

    model_config = ConfigDict(extra="forbid")

    public: StrictBool | None = Field(
        description="true: publish on Open311; false: hide; null: follow the catalogue item's rule"
    )


@dataclass(frozen=True)
class Publication:
    """Whether a case is published, and whose decision that is."""

    incident_id: int
    item_code: str
    public: bool
    decision: Literal["case", "item"]
    item_public: bool


def _state(row: q.PublicationRow) -> Publication:
    return Publication(
        row.incident_id,
        row.item_code,
        row.public,
        "item" if row.case_public is None else "case",
        row.item_public,
    )


def _snapshot(row: q.PublicationRow) -> dict[str, object]:
    return {"public": row.public, "case_public": row.case_public, "item_public": row.item_public}


async def set_publication(
    conn: AsyncConnection,
    principal: Principal,
    incident_id: int,
    change: PublicationChange,
    request: HTTPConnection | None = None,
) -> Publication:
    """Publish or hide one case on Open311 (or return it to its item's rule), audited.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        The caller: a dispatcher related to the case (its area), or an admin.
    incident_id
        The case.
    change
        The decision.
    request
        The HTTP request, for the audit entry (None from the CLI or a script).

    Returns
    -------
    Publication
        The decision in force afterwards.

    Raises
    ------
    Forbidden
        The caller's role does not publish cases.
    NotFound
        No such case, or one outside the caller's scope (the same answer).
    """
    if principal.role not in PUBLISH_ROLES:
        raise Forbidden(f"role {principal.role!r} may not publish or hide cases", loc=["body", "public"])
    locked = await qi.lock(conn, incident_id)
    policy.require_related(
        principal,
        None if locked is None else access.relation_of(locked),
        f"incident {incident_id}",
        ["path", "incident_id"],
    )
    assert locked is not None
    before = await q.publication(conn, incident_id)
    assert before is not None  # locked above
    after = q.PublicationRow(before.incident_id, before.item_code, change.public, before.item_public)
    if after.case_public != before.case_public:
        await q.set_publication(conn, incident_id, change.public)
        action = {True: "publish", False: "hide", None: "publication_default"}[change.public]
        detail = {"public": after.public, "decision": _state(after).decision}
        await qi.add_event(
            conn, incident_id, locked.city_code, qi.NewEvent(principal.actor, action, None, None, detail)
        )
    await audit.record(
        conn,
        principal,
        request,
        "incident.publication",
        "incident",
        incident_id,
        _snapshot(before),
        _snapshot(after),
    )
    return _state(after)
