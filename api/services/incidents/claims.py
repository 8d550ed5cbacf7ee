"""The desk's claim lock (认领): a dispatcher holds a case for some minutes; others are refused.

Like HOT Tasking Manager's task locks: the dispatcher who opens a case to handle it
*claims* it for N minutes (default :data:`DEFAULT_MINUTES`, at most
:data:`MAX_MINUTES`); every desk shows who holds it and until when; another
dispatcher's claim **and every desk action by another dispatcher** (workflow moves,
reassign, merge, a task for the case) answers :class:`~api.errors.Conflict` (409)
naming the holder and the time, instead of overwriting the first one's work.

Rules (decided here, called by the API, the console and :mod:`.moves`):

* who may claim: dispatchers related to the case (its area) and admins; others 403,
  a case out of reach 404 (as a missing one);
* the holder is the **token** (two sessions of one token are one dispatcher); claiming
  again extends the claim; an expired claim counts as none;
* the holder releases it; an admin may release anyone's claim; another dispatcher gets 409;
* the lock binds the desk roles (dispatcher, admin) only: the grid worker and the
  department go on with their own steps of a claimed case (accept, report back,
  department-accept), which the claim exists to coordinate, not to stop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput
from api.services.incidents import access
from api.store.sql import claims as sql
from api.store.sql import incidents as q

DEFAULT_MINUTES = 10
MAX_MINUTES = 60
#: token roles that may claim, and whom a claim binds
DESK_ROLES = frozenset({"dispatcher", "admin"})


@dataclass(frozen=True)
class ClaimView:
    """Who holds a case and until when (``mine``: the caller holds it)."""

    incident_id: int
    token_id: int
    holder: str
    claimed_at: dt.datetime
    expires_at: dt.datetime
    mine: bool


def holder_name(row: sql.ClaimRow) -> str:
    """Name the holder on the screen: the token's label, else its actor name."""
    return row.label or row.actor


def view_of(row: sql.ClaimRow, principal: Principal) -> ClaimView:
    """Turn a claim row into what the caller sees."""
    return ClaimView(
        row.incident_id,
        row.token_id,
        holder_name(row),
        row.claimed_at,
        row.expires_at,
        row.token_id == principal.token_id,
    )


def _refusal(row: sql.ClaimRow, what: str) -> Conflict:
    until = row.expires_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Conflict(
        f"incident {row.incident_id} is claimed by {holder_name(row)} until {until}: {what}",
        loc=["path", "incident_id"],
        claimed_by=holder_name(row),
        claimed_until=row.expires_at.isoformat(),
    )


async def _related(conn: AsyncConnection, principal: Principal, incident_id: int) -> None:
    record = await q.fetch(conn, incident_id)
    policy.require_related(
        principal,
        None if record is None else access.relation_of(record.row),
        f"incident {incident_id}",
        ["path", "incident_id"],
    )


def _require_desk_role(principal: Principal) -> None:
    if principal.role not in DESK_ROLES:
        raise Forbidden(
            f"role {principal.role!r} may not claim cases; allowed: {', '.join(sorted(DESK_ROLES))}",
            loc=["header", "authorization"],
            role=principal.role,
        )


async def claim(
    conn: AsyncConnection, principal: Principal, incident_id: int, minutes: int = DEFAULT_MINUTES
) -> ClaimView:
    """Claim a case for ``minutes`` (or extend one's own claim).

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    principal
        A dispatcher related to the case, or an admin.
    incident_id
        The case.
    minutes
        How long, 1 to :data:`MAX_MINUTES`.

    Returns
    -------
    ClaimView
        The claim now held by the caller.

    Raises
    ------
    InvalidInput
        ``minutes`` out of range.
    Forbidden
        The role may not claim.
    NotFound
        No such case, or one the caller is not related to.
    Conflict
        Another dispatcher holds a live claim (who and until when in the answer), or
        the case is no longer open.
    """
    _require_desk_role(principal)
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidInput(f"minutes must be between 1 and {MAX_MINUTES}", loc=["body", "minutes"])
    row = await q.lock(conn, incident_id)
    policy.require_related(
        principal,
        None if row is None else access.relation_of(row),
        f"incident {incident_id}",
        ["path", "incident_id"],
    )
    assert row is not None
    if row.duplicate_of is not None or row.status in ("resolved", "verified", "closed"):
        raise Conflict(
            f"incident {incident_id} is {row.status!r}: only open cases are claimed",
            loc=["path", "incident_id"],
            status=row.status,
        )
    taken = await sql.take(conn, incident_id, principal.token_id, principal.actor, minutes)
    if taken is None:
        held = await sql.live(conn, incident_id)
        if held is not None:
            raise _refusal(held, "ask them, or wait until the claim ends")
        raise Conflict(f"incident {incident_id} is being claimed; retry", loc=["path", "incident_id"])
    return view_of(taken, principal)


async def release(conn: AsyncConnection, principal: Principal, incident_id: int) -> ClaimView | None:
    """Give a claim up (the holder, or an admin for anyone's).

    Returns
    -------
    ClaimView or None
        The claim that ended; None when there was no live claim.

    Raises
    ------
    Forbidden
        The role may not claim.
    NotFound
        No such case, or one the caller is not related to.
    Conflict
        Another dispatcher holds the claim.
    """
    _require_desk_role(principal)
    row = await q.lock(conn, incident_id)
    policy.require_related(
        principal,
        None if row is None else access.relation_of(row),
        f"incident {incident_id}",
        ["path", "incident_id"],
    )
    held = await sql.live(conn, incident_id)
    if held is None:
        await sql.release(conn, incident_id)  # an expired row, if any
        return None
    if held.token_id != principal.token_id and principal.role != "admin":
        raise _refusal(held, "only its holder (or an administrator) may release it")
    await sql.release(conn, incident_id)
    return view_of(held, principal)


async def current(conn: AsyncConnection, principal: Principal, incident_id: int) -> ClaimView | None:
    """Return the live claim on a case the caller reaches (None: unclaimed).

    Raises
    ------
    NotFound
        No such case, or one the caller is not related to.
    """
    await _related(conn, principal, incident_id)
    held = await sql.live(conn, incident_id)
    return None if held is None else view_of(held, principal)


async def claims_on(
    conn: AsyncConnection, principal: Principal, incident_ids: Sequence[int]
) -> dict[int, ClaimView]:
    """Return the live claims on cases the caller has already listed (no scope check: the list did it)."""
    return {i: view_of(c, principal) for i, c in (await sql.live_for(conn, incident_ids)).items()}


async def require_free(conn: AsyncConnection, principal: Principal, incident_id: int, action: str) -> None:
    """Refuse a desk action on a case another dispatcher has claimed (409).

    Call with the case's row already locked (the claim cannot change under the action:
    claiming locks the case row first). Callers outside :data:`DESK_ROLES` pass.

    Raises
    ------
    Conflict
        Another token holds a live claim on the case.
    """
    if principal.role not in DESK_ROLES:
        return
    held = await sql.live(conn, incident_id)
    if held is not None and held.token_id != principal.token_id:
        raise _refusal(held, f"{action} refused; ask them, or wait until the claim ends")
