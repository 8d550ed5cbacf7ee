"""The points ledger (服务换积分、积分兑服务): balances are always the ledger's sum.

There is no stored balance to drift: a balance is ``SUM(delta)`` over the
person's entries, the ledger is append-only (a trigger refuses UPDATE and
DELETE), and spending locks the person's row first, then sums in a new
statement, so two concurrent redemptions can never both spend the same points.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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
    "SELECT code, name, name_en, points, provider FROM rewards WHERE active ORDER BY points, code"
)
_BY_KEY = text(
    "SELECT id, person_id, reward_code, quantity, points FROM redemptions WHERE idempotency_key = :k"
)
_REDEEM = text(
    """
    INSERT INTO redemptions (city_code, person_id, reward_code, quantity, points, idempotency_key,
                             created_by)
    VALUES (:city, :p, :reward, :qty, :points, :key, :by) RETURNING id, at
    """
)
_DEBIT = text(
    """
    INSERT INTO points_ledger (city_code, person_id, delta, reason, ref)
    VALUES (:city, :p, :delta, 'redeemed', :ref) RETURNING id
    """
)


async def balance(conn: AsyncConnection, person_id: int) -> int:
    """Return a person's points balance."""
    return int((await conn.execute(_BALANCE, {"p": person_id})).scalar_one())


async def history(
    conn: AsyncConnection, person_id: int, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """List a person's points ledger, newest first."""
    total = int((await conn.execute(_COUNT, {"p": person_id})).scalar_one())
    rows = await conn.execute(_HISTORY, {"p": person_id, "limit": limit, "offset": offset})
    return total, [dict(r) for r in rows.mappings().all()]


async def lock_person(conn: AsyncConnection, person_id: int) -> dict[str, Any] | None:
    """Lock a person's row for a points change, or None."""
    row = (await conn.execute(_LOCK_PERSON, {"p": person_id})).mappings().first()
    return dict(row) if row else None


async def reward(conn: AsyncConnection, code: str) -> dict[str, Any] | None:
    """Fetch one reward, or None."""
    row = (await conn.execute(_REWARD, {"c": code})).mappings().first()
    return dict(row) if row else None


async def rewards(conn: AsyncConnection) -> list[dict[str, Any]]:
    """List the rewards."""
    return [dict(r) for r in (await conn.execute(_REWARDS)).mappings().all()]


async def redemption_by_key(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    """Find a redemption by its idempotency key, or None."""
    row = (await conn.execute(_BY_KEY, {"k": key})).mappings().first()
    return dict(row) if row else None


async def redeem(
    conn: AsyncConnection,
    city_code: str,
    person_id: int,
    reward_code: str,
    quantity: int,
    points: int,
    key: str | None,
    by: str,
) -> dict[str, Any]:
    """Record a redemption and its debit (the caller holds the person's lock and checked the balance)."""
    red = (
        (
            await conn.execute(
                _REDEEM,
                {
                    "city": city_code,
                    "p": person_id,
                    "reward": reward_code,
                    "qty": quantity,
                    "points": points,
                    "key": key,
                    "by": by,
                },
            )
        )
        .mappings()
        .one()
    )
    ledger_id = (
        await conn.execute(
            _DEBIT,
            {"city": city_code, "p": person_id, "delta": -points, "ref": f"redemption:{red['id']}"},
        )
    ).scalar_one()
    return {"id": int(red["id"]), "at": red["at"], "ledger_id": int(ledger_id)}
