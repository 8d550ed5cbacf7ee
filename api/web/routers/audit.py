"""The audit log, for admins: who changed what, when, from where."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from api.services import auditlog
from api.web.deps import ConnDep, PrincipalDep
from api.web.schemas.audit import AuditPage

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get(
    "/audit",
    summary="Audit log entries, newest first (admins only; personal fields masked)",
    response_model=AuditPage,
)
async def list_audit(
    conn: ConnDep,
    principal: PrincipalDep,
    entity: Annotated[str | None, Query(max_length=32, description="e.g. plan, incident, person")] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. plan.publish")] = None,
    token_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    role: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[dt.datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[dt.datetime | None, Query(description="before this time")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62, description="page cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=auditlog.MAX_LIMIT)] = 100,
) -> auditlog.AuditPage:
    """List audit entries, newest first; page backwards with ``before_id`` = ``next_before_id``."""
    f = auditlog.AuditFilter(entity, entity_id, action, token_id, role, since, until, before_id)
    return await auditlog.list_entries(conn, principal, f, limit)
