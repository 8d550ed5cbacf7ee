"""Response model of ``PUT /api/v1/incidents/{id}/publication``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Publication(BaseModel):
    """Whether a case is published on Open311, and whose decision that is."""

    model_config = ConfigDict(from_attributes=True)

    incident_id: int
    item_code: str
    public: bool = Field(description="published on Open311 (rounded place, masked text)")
    decision: Literal["case", "item"] = Field(
        description="case: a staff decision for this case; item: the catalogue item's rule"
    )
    item_public: bool = Field(description="the catalogue item's rule")
