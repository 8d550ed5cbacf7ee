"""SQL of the desk's claims (``incident_claims``): take, read, release. Typed rows, no policy.

A claim is live while ``expires_at > now()``; an expired row is treated as absent and
is overwritten by the next claim. :func:`take` is one statement: it inserts the claim,
or replaces the row when that row is expired or already the same token's, and returns
what holds the case afterwards, so two dispatchers racing for one case get one winner
(the primary key serialises them; the loser reads the winner's row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """A live claim: the case, the holding token, how the holder is named, since and until."""

    incident_id: int
    token_id: int
    actor: str
    label: str | None
    claimed_at: dt.datetime
    expires_at: dt.datetime


_COLUMNS = "incident_id, token_id, actor, label, claimed_at, expires_at"

#: live = not expired (an expired row counts as no claim)
LIVE = "expires_at > now()"

_TAKE = text(
    f"INSERT INTO incident_claims AS c "
    f"(incident_id, city_code, token_id, actor, label, claimed_at, expires_at) "
    f"SELECT :id, (SELECT i.city_code FROM incidents i WHERE i.id = :id), :token, :actor, "
    f"(SELECT t.label FROM api_tokens t WHERE t.id = :token), now(), "
    f"now() + make_interval(mins => :minutes) "
    f"ON CONFLICT (incident_id) DO UPDATE SET token_id = excluded.token_id, actor = excluded.actor, "
    f"label = excluded.label, expires_at = excluded.expires_at, "
    f"claimed_at = CASE WHEN c.token_id = excluded.token_id AND c.{LIVE} THEN c.claimed_at ELSE now() END "
    f"WHERE c.token_id = excluded.token_id OR NOT (c.{LIVE}) "
    f"RETURNING {_COLUMNS}"
)
_GET = text(f"SELECT {_COLUMNS} FROM incident_claims WHERE incident_id = :id AND {LIVE}")
_MANY = text(f"SELECT {_COLUMNS} FROM incident_claims WHERE incident_id = ANY(:ids) AND {LIVE}")
_RELEASE = text("DELETE FROM incident_claims WHERE incident_id = :id RETURNING token_id")


def _row(r: object) -> ClaimRow:
    m = r._mapping  # type: ignore[attr-defined]
    return ClaimRow(
        int(m["incident_id"]),
        int(m["token_id"]),
        str(m["actor"]),
        m["label"],
        m["claimed_at"],
        m["expires_at"],
    )


async def take(
    conn: AsyncConnection, incident_id: int, token_id: int, actor: str, minutes: int
) -> ClaimRow | None:
    """Claim (or extend) for ``minutes``; None when another token holds a live claim."""
    params = {"id": incident_id, "token": token_id, "actor": actor, "minutes": minutes}
    row = (await conn.execute(_TAKE, params)).first()
    return None if row is None else _row(row)


async def live(conn: AsyncConnection, incident_id: int) -> ClaimRow | None:
    """Return the live claim on a case, or None."""
    row = (await conn.execute(_GET, {"id": incident_id})).first()
    return None if row is None else _row(row)


async def live_for(conn: AsyncConnection, incident_ids: Sequence[int]) -> dict[int, ClaimRow]:
    """Return the live claims on these cases, by case."""
    if not incident_ids:
        return {}
    rows = await conn.execute(_MANY, {"ids": list(incident_ids)})
    return {c.incident_id: c for c in (_row(r) for r in rows)}


async def release(conn: AsyncConnection, incident_id: int) -> bool:
    """Delete the claim row of a case (live or expired); whether there was one."""
    return (await conn.execute(_RELEASE, {"id": incident_id})).first() is not None
