"""The audit log, for admins: who changed what, when, from where."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.errors import InvalidInput
from api.store.sql import audit as q
from api.web.deps import ConnDep, PrincipalDep

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    token_id: int | None
    role: str | None
    client_ip: str | None
    method: str | None
    path: str | None
    action: str
    entity: str | None
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: list[str] | None
    status: int | None


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    #: pass as ``before_id`` for the next (older) page; null at the end
    next_before_id: int | None


@router.get(
    "/audit",
    summary="Audit log entries, newest first (admins only; personal fields masked)",
    response_model=AuditPage,
)
async def list_audit(
    conn: ConnDep,
    _admin: PrincipalDep,
    entity: Annotated[str | None, Query(max_length=32, description="e.g. plan, incident, person")] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. plan.publish")] = None,
    token_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    role: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[dt.datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[dt.datetime | None, Query(description="before this time")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62, description="page cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    for name, value in (("since", since), ("until", until)):
        if value is not None and (value.tzinfo is None or not 1900 <= value.year <= 9000):
            raise InvalidInput(
                f"{name} must be a date-time with a timezone between the years 1900 and 9000",
                loc=["query", name],
            )
    rows = await q.list_entries(
        conn,
        entity=entity,
        entity_id=entity_id,
        action=action,
        token_id=token_id,
        role=role,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    nxt = rows[-1]["id"] if len(rows) == limit else None
    return AuditPage(entries=[AuditEntryOut(**r) for r in rows], next_before_id=nxt)
