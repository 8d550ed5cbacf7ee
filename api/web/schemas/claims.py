"""Response model of the desk's claim lock (``/api/v1/incidents/{id}/claim``)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from api.services.incidents.claims import ClaimView


class Claim(BaseModel):
    """Who holds a case on the desk and until when."""

    incident_id: int
    holder: str = Field(description="the holding token's label (or token:<id>:<role>)")
    token_id: int = Field(description="the holding token")
    claimed_at: dt.datetime
    expires_at: dt.datetime
    mine: bool = Field(description="the caller holds it")

    @classmethod
    def of(cls, view: ClaimView) -> Claim:
        """Shape a claim view."""
        return cls(
            incident_id=view.incident_id,
            holder=view.holder,
            token_id=view.token_id,
            claimed_at=view.claimed_at,
            expires_at=view.expires_at,
            mine=view.mine,
        )


class ClaimState(BaseModel):
    """The claim on a case now (``claim`` null: nobody holds it)."""

    incident_id: int
    claim: Claim | None
