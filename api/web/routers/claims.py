"""The desk's claim lock on a case: read, take (or extend), release.

``POST /api/v1/incidents/{id}/claim`` claims a case for ``minutes`` (default 10, at
most 60); another dispatcher's claim answers 409 naming who holds it and until when,
and so does every dispatcher action on the case by someone else (transitions,
reassign, merge, tasks for it). ``DELETE`` releases it (the holder, or an admin).
Rules: :mod:`api.services.incidents.claims`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.services.incidents import claims
from api.services.incidents.inputs import BIGINT_MAX
from api.web.deps import ConnDep, PrincipalDep, TxDep
from api.web.schemas.claims import Claim, ClaimState

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

IncidentId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="incident id")]


class ClaimIn(BaseModel):
    """How long to hold the case."""

    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(default=claims.DEFAULT_MINUTES, ge=1, le=claims.MAX_MINUTES)


def _state(incident_id: int, view: claims.ClaimView | None) -> ClaimState:
    return ClaimState(incident_id=incident_id, claim=None if view is None else Claim.of(view))


@router.get(
    "/{incident_id}/claim", summary="Who holds the case on the desk, until when", response_model=ClaimState
)
async def get_claim(incident_id: IncidentId, conn: ConnDep, principal: PrincipalDep) -> ClaimState:
    """Read the live claim (see :func:`api.services.incidents.claims.current`)."""
    return _state(incident_id, await claims.current(conn, principal, incident_id))


@router.post(
    "/{incident_id}/claim",
    summary="Claim the case for some minutes (409 when another dispatcher holds it)",
    response_model=ClaimState,
    responses={409: {"description": "claimed by another dispatcher (claimed_by, claimed_until) or closed"}},
)
async def take_claim(
    incident_id: IncidentId, tx: TxDep, principal: PrincipalDep, body: ClaimIn | None = None
) -> ClaimState:
    """Claim or extend (see :func:`api.services.incidents.claims.claim`)."""
    minutes = body.minutes if body is not None else claims.DEFAULT_MINUTES
    return _state(incident_id, await claims.claim(tx, principal, incident_id, minutes))


@router.delete(
    "/{incident_id}/claim",
    summary="Release the claim (its holder, or an admin)",
    response_model=ClaimState,
    responses={409: {"description": "another dispatcher holds the claim"}},
)
async def release_claim(incident_id: IncidentId, tx: TxDep, principal: PrincipalDep) -> ClaimState:
    """Release (see :func:`api.services.incidents.claims.release`); answers the claim now (none)."""
    await claims.release(tx, principal, incident_id)
    return _state(incident_id, None)
