"""Points buy services (积分兑服务): the rewards catalogue and redemptions.

Each route parses, calls one use case of :mod:`api.services.dispatch.points` and returns its response model.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.services.dispatch import points
from api.services.dispatch.inputs import RedeemIn
from api.services.dispatch.views import Redemption, Reward
from api.web.deps import ConnDep, PrincipalDep, TxDep
from api.web.schemas.dispatch import RedemptionOut, RewardOut

router = APIRouter(prefix="/api/v1/points", tags=["dispatch"])


@router.get(
    "/rewards", response_model=list[RewardOut], summary="The rewards catalogue: services that points buy"
)
async def rewards(conn: ConnDep) -> list[Reward]:
    """List the active catalogue, cheapest first."""
    return await points.rewards(conn)


@router.post(
    "/redeem",
    status_code=201,
    response_model=RedemptionOut,
    summary="Spend points on a reward (never beyond the balance)",
    responses={
        200: {"model": RedemptionOut, "description": "the redemption an idempotency key already made"},
        403: {"description": "a worker token spending another person's points"},
        404: {"description": "no such person in this token's area, or no such reward"},
        409: {"description": "not enough points (no overdraft), or a key used for another redemption"},
    },
)
async def redeem(
    body: RedeemIn,
    conn: TxDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> Redemption:
    """Redeem; a retry with the same key (same token) answers 200 with ``replayed``."""
    done = await points.redeem(conn, principal, body, idempotency_key)
    if done.replayed:
        response.status_code = 200
    return done
