"""Points buy services (积分兑服务): the rewards catalogue and redemptions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from api.errors import Conflict, InvalidInput, NotFound
from api.services.dispatch.access import check_acts_for
from api.store.sql import points
from api.web.deps import ConnDep, PrincipalDep, TxDep

router = APIRouter(prefix="/api/v1/points", tags=["dispatch"])

Spender = PrincipalDep


class RedeemIn(BaseModel):
    """The body of a points redemption."""

    model_config = ConfigDict(extra="forbid")

    person_id: int = Field(ge=1)
    reward: str = Field(min_length=1, max_length=32, description="code from /api/v1/points/rewards")
    points: int = Field(gt=0, description="the reward's price × quantity (checked)")
    quantity: int = Field(default=1, ge=1, le=100)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)


@router.get("/rewards", summary="The rewards catalogue: services that points buy")
async def rewards(conn: ConnDep) -> list[dict[str, Any]]:
    """Answer ``GET /api/v1/points/rewards`` (see its summary)."""
    return await points.rewards(conn)


@router.post("/redeem", status_code=201, summary="Spend points on a reward (never beyond the balance)")
async def redeem(
    body: RedeemIn,
    conn: TxDep,
    principal: Spender,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, Any]:
    """Answer ``POST /api/v1/points/redeem`` (see its summary)."""
    key = body.idempotency_key or idempotency_key
    person = await points.lock_person(conn, body.person_id)  # serialises this person's spending
    if person is None:
        raise NotFound(f"no person with id {body.person_id}", loc=["body", "person_id"])
    check_acts_for(principal, person, ["body", "person_id"])
    if key is not None:
        done = await points.redemption_by_key(conn, key)
        if done is not None:
            if done["person_id"] != body.person_id or done["reward_code"] != body.reward:
                raise Conflict(
                    "idempotency key already used for another redemption", loc=["body", "idempotency_key"]
                )
            response.status_code = 200
            return {
                "id": done["id"],
                "person_id": body.person_id,
                "reward": done["reward_code"],
                "quantity": done["quantity"],
                "points": done["points"],
                "balance": await points.balance(conn, body.person_id),
                "replayed": True,
            }
    reward = await points.reward(conn, body.reward)
    if reward is None or not reward["active"]:
        raise NotFound(f"no reward with code {body.reward!r} in the catalogue", loc=["body", "reward"])
    price = int(reward["points"]) * body.quantity
    if body.points != price:
        raise InvalidInput(
            f"reward {body.reward!r} costs {reward['points']} points"
            + (f" × {body.quantity} = {price}" if body.quantity > 1 else "")
            + f", not {body.points}",
            loc=["body", "points"],
        )
    balance = await points.balance(conn, body.person_id)  # a new statement, after the lock
    if price > balance:
        raise Conflict(
            f"person {body.person_id} has {balance} points; {price} needed (no overdraft)",
            loc=["body", "points"],
            balance=balance,
        )
    red = await points.redeem(
        conn,
        person["city_code"],
        body.person_id,
        body.reward,
        body.quantity,
        price,
        key,
        principal.actor,
    )
    return {
        "id": red["id"],
        "person_id": body.person_id,
        "reward": body.reward,
        "reward_name": reward["name"],
        "quantity": body.quantity,
        "points": price,
        "ledger_id": red["ledger_id"],
        "at": red["at"],
        "balance": balance - price,
    }
