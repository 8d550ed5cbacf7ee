"""Service earns points, points buy services (服务换积分、积分兑服务): balance, ledger, redeem.

A balance is always the sum of the append-only ledger; spending locks the
person's row before summing, so concurrent redemptions never overdraw
(:mod:`api.store.sql.points`). Idempotency keys are per token, as for tasks.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import Conflict, InvalidInput, NotFound
from api.services.dispatch.inputs import RedeemIn
from api.services.dispatch.keys import scoped_key
from api.services.dispatch.scope import refuse_other_person, require_person
from api.services.dispatch.views import LedgerEntry, PointsView, Redemption, Reward
from api.store.sql import people, points
from api.store.sql.people import PersonPlace
from api.store.sql.points import RedemptionRow


async def points_of(
    conn: AsyncConnection, principal: Principal, person_id: int, limit: int = 100, offset: int = 0
) -> PointsView:
    """Read a person's balance and one page of their ledger, newest first.

    Raises
    ------
    Forbidden
        A worker token asking for another person.
    NotFound
        No such person in the caller's reach.
    """
    row = await people.get_person(conn, person_id)
    place = None if row is None else PersonPlace(row.id, row.city_code, row.community_code)
    require_person(principal, person_id, place, ["path", "person_id"])
    total, entries = await points.history(conn, person_id, limit, offset)
    return PointsView(
        person_id=person_id,
        balance=await points.balance(conn, person_id),
        entries=total,
        history=[LedgerEntry(id=e.id, at=e.at, delta=e.delta, reason=e.reason, ref=e.ref) for e in entries],
    )


async def rewards(conn: AsyncConnection) -> list[Reward]:
    """List the rewards catalogue (active services), cheapest first."""
    return [
        Reward(code=r.code, name=r.name, name_en=r.name_en, points=r.points, provider=r.provider)
        for r in await points.rewards(conn)
    ]


def _redemption(row: RedemptionRow, balance: int, replayed: bool) -> Redemption:
    return Redemption(
        id=row.id,
        person_id=row.person_id,
        reward=row.reward_code,
        reward_name=row.reward_name,
        quantity=row.quantity,
        points=row.points,
        ledger_id=row.ledger_id,
        at=row.at,
        balance=balance,
        replayed=replayed,
    )


async def redeem(
    conn: AsyncConnection, principal: Principal, request: RedeemIn, idempotency_key: str | None = None
) -> Redemption:
    """Spend a person's points on a reward of the catalogue, never beyond the balance.

    Parameters
    ----------
    conn
        A connection inside a transaction (the person's row stays locked until it ends).
    principal
        The caller: the person's own worker token, or staff whose area holds the person.
    request
        Who, which reward, how many, and the price the client expects (checked).
    idempotency_key
        The client's key (the body's ``idempotency_key`` wins). A retry with the
        same key from the same token returns the first redemption (``replayed``).

    Returns
    -------
    Redemption
        The redemption, its debit entry and the balance after it.

    Raises
    ------
    Forbidden, NotFound
        The person is not in the caller's reach (as for :func:`points_of`);
        NotFound also for an unknown or retired reward.
    InvalidInput
        ``points`` is not the reward's price × quantity.
    Conflict
        The balance is too small (``balance`` in the error), or the key was used
        for another person or reward.
    """
    key = request.idempotency_key or idempotency_key
    stored_key = None if key is None else scoped_key(principal.token_id, key)
    refuse_other_person(principal, request.person_id, ["body", "person_id"])  # before taking any lock
    person = await points.lock_person(conn, request.person_id)  # serialises this person's spending
    place = None if person is None else PersonPlace(person.id, person.city_code, person.community_code)
    require_person(principal, request.person_id, place, ["body", "person_id"])
    assert person is not None
    if stored_key is not None:
        done = await points.redemption_by_key(conn, stored_key)
        if done is not None:
            if done.person_id != request.person_id or done.reward_code != request.reward:
                raise Conflict(
                    "idempotency key already used for another redemption", loc=["body", "idempotency_key"]
                )
            return _redemption(done, await points.balance(conn, request.person_id), replayed=True)
    reward = await points.reward(conn, request.reward)
    if reward is None or not reward.active:
        raise NotFound(f"no reward with code {request.reward!r} in the catalogue", loc=["body", "reward"])
    price = reward.points * request.quantity
    if request.points != price:
        raise InvalidInput(
            f"reward {request.reward!r} costs {reward.points} points"
            + (f" × {request.quantity} = {price}" if request.quantity > 1 else "")
            + f", not {request.points}",
            loc=["body", "points"],
        )
    balance = await points.balance(conn, request.person_id)  # a new statement, after the lock
    if price > balance:
        raise Conflict(
            f"person {request.person_id} has {balance} points; {price} needed (no overdraft)",
            loc=["body", "points"],
            balance=balance,
        )
    row = await points.redeem(
        conn,
        person.city_code,
        request.person_id,
        request.reward,
        request.quantity,
        price,
        stored_key,
        principal.actor,
    )
    return _redemption(row, balance - price, replayed=False)
