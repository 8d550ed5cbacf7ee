"""The points ledger (服务换积分、积分兑服务): balances are always the ledger's sum.

There is no stored balance to drift: a balance is ``SUM(delta)`` over the
person's entries, the ledger is append-only (a trigger refuses UPDATE and
DELETE), and spending locks the person's row first (:func:`lock_person`), then
sums in a new statement, so two concurrent redemptions can never both spend the
same points. Only SQL here; the rules of spending are in
:mod:`api.services.dispatch.points`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ledger entry: a credit (task completed) or a debit (redeemed)."""

    id: int
    at: dt.datetime
    delta: int
    reason: str
    ref: str | None


@dataclass(frozen=True, slots=True)
class PersonLock:
    """The person whose row is locked for spending."""

    id: int
    city_code: str
    community_code: str | None


@dataclass(frozen=True, slots=True)
class RewardRow:
    """A service in the rewards catalogue and its price in points."""

    code: str
    name: str
    name_en: str
    points: int
    provider: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class RedemptionRow:
    """A redemption with its debit entry and the reward's name."""

    id: int
    person_id: int
    reward_code: str
    reward_name: str
    quantity: int
    points: int
    at: dt.datetime
    ledger_id: int | None


# --------------------------------------------------------------------------- clause builders


def redemption_select(where: str) -> str:
    """``SELECT`` redemptions (:class:`RedemptionRow`) matching ``where`` on ``r``."""
    return f"""
    SELECT r.id, r.person_id, r.reward_code, w.name AS reward_name, r.quantity, r.points, r.at,
           (SELECT l.id FROM points_ledger l WHERE l.person_id = r.person_id
            AND l.ref = 'redemption:' || r.id ORDER BY l.id LIMIT 1) AS ledger_id
    FROM redemptions r JOIN rewards w ON w.code = r.reward_code
    WHERE {where}
    """


# --------------------------------------------------------------------------- statements

_BALANCE = text("SELECT coalesce(sum(delta), 0) FROM points_ledger WHERE person_id = :p")
_COUNT = text("SELECT count(*) FROM points_ledger WHERE person_id = :p")
_HISTORY = text(
    """
    SELECT id, at, delta, reason, ref FROM points_ledger WHERE person_id = :p
    ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset
    """
)
_LOCK_PERSON = text("SELECT id, city_code, community_code FROM people WHERE id = :p FOR UPDATE")
_REWARD = text("SELECT code, name, name_en, points, provider, active FROM rewards WHERE code = :c")
_REWARDS = text(
    "SELECT code, name, name_en, points, provider, active FROM rewards WHERE active ORDER BY points, code"
)
_BY_KEY = text(redemption_select("r.idempotency_key = :k"))
_BY_ID = text(redemption_select("r.id = :id"))
_REDEEM = text(
    """
    INSERT INTO redemptions (city_code, person_id, reward_code, quantity, points, idempotency_key,
                             created_by)
    VALUES (:city, :p, :reward, :qty, :points, :key, :by) RETURNING id
    """
)
_DEBIT = text(
    """
    INSERT INTO points_ledger (city_code, person_id, delta, reason, ref)
    VALUES (:city, :p, :delta, 'redeemed', :ref)
    """
)


# --------------------------------------------------------------------------- functions


async def balance(conn: AsyncConnection, person_id: int) -> int:
    """Sum the person's ledger entries: their balance."""
    return int((await conn.execute(_BALANCE, {"p": person_id})).scalar_one())


async def history(
    conn: AsyncConnection, person_id: int, limit: int, offset: int
) -> tuple[int, list[LedgerRow]]:
    """How many entries the person has, and one page of them, newest first."""
    total = int((await conn.execute(_COUNT, {"p": person_id})).scalar_one())
    rows = await conn.execute(_HISTORY, {"p": person_id, "limit": limit, "offset": offset})
    return total, [LedgerRow(**r) for r in rows.mappings().all()]


async def lock_person(conn: AsyncConnection, person_id: int) -> PersonLock | None:
    """Lock the person's row until the transaction ends (serialises their spending); None if missing."""
    row = (await conn.execute(_LOCK_PERSON, {"p": person_id})).mappings().first()
    return PersonLock(**row) if row else None


async def reward(conn: AsyncConnection, code: str) -> RewardRow | None:
    """Read the catalogue entry with this code (active or not), or None."""
    row = (await conn.execute(_REWARD, {"c": code})).mappings().first()
    return RewardRow(**row) if row else None


async def rewards(conn: AsyncConnection) -> list[RewardRow]:
    """List the active catalogue, cheapest first."""
    return [RewardRow(**r) for r in (await conn.execute(_REWARDS)).mappings().all()]


async def redemption_by_key(conn: AsyncConnection, key: str) -> RedemptionRow | None:
    """Find the redemption stored with this (namespaced) idempotency key, or None."""
    row = (await conn.execute(_BY_KEY, {"k": key})).mappings().first()
    return RedemptionRow(**row) if row else None


async def redeem(
    conn: AsyncConnection,
    city_code: str,
    person_id: int,
    reward_code: str,
    quantity: int,
    points: int,
    key: str | None,
    by: str,
) -> RedemptionRow:
    """Record a redemption and its debit.

    The caller holds the person's lock (:func:`lock_person`) and checked the balance.
    """
    params = {
        "city": city_code,
        "p": person_id,
        "reward": reward_code,
        "qty": quantity,
        "points": points,
        "key": key,
        "by": by,
    }
    red_id = int((await conn.execute(_REDEEM, params)).scalar_one())
    await conn.execute(
        _DEBIT, {"city": city_code, "p": person_id, "delta": -points, "ref": f"redemption:{red_id}"}
    )
    row = (await conn.execute(_BY_ID, {"id": red_id})).mappings().one()
    return RedemptionRow(**row)
