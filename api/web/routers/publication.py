"""Publishing or hiding one case on Open311 (the publication policy's staff decision).

The use case is :func:`api.services.incidents.publication.set_publication`
(dispatchers of the case's area and admins; audited as ``incident.publication``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.services.incidents import publication
from api.services.incidents.inputs import BIGINT_MAX
from api.web.deps import PrincipalDep, TxDep
from api.web.schemas.publication import Publication

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.put(
    "/{incident_id}/publication",
    summary="Publish (true) or hide (false) a case on Open311, or return it to its item's rule (null)",
    responses={404: {"description": "no such case, or none this token may reach"}},
    response_model=Publication,
)
async def set_publication(
    incident_id: Annotated[int, Path(ge=1, le=BIGINT_MAX, description="incident id")],
    body: publication.PublicationChange,
    tx: TxDep,
    principal: PrincipalDep,
    request: Request,
) -> Publication:
    """Decide a case's publication (see :func:`api.services.incidents.publication.set_publication`)."""
    state = await publication.set_publication(tx, principal, incident_id, body, request)
    return Publication.model_validate(state)
