"""SQL of the append-only audit log (``audit_log``; UPDATE/DELETE refused by a trigger)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.models import AuditEntry as AuditRow

INSERT = text(
    "INSERT INTO audit_log (actor, token_id, role, client_ip, method, path, action, entity, "
    "entity_id, before, after, changed, status) VALUES (:actor, :token_id, :role, :client_ip, "
    ":method, :path, :action, :entity, :entity_id, CAST(:before AS jsonb), CAST(:after AS jsonb), "
    ":changed, :status) RETURNING id"
)

_LOG = AuditRow.__table__


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log (personal fields in ``before``/``after`` stored masked)."""

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


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list (None: any); ``before_id`` pages backwards from an id."""

    entity: str | None = None
    entity_id: str | None = None
    action: str | None = None
    token_id: int | None = None
    role: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before_id: int | None = None


def conditions(f: AuditFilter) -> list[ColumnElement[bool]]:
    """Build the WHERE conditions of a filter (one per field given)."""
    c = _LOG.c
    out: list[ColumnElement[bool]] = [
        col == value
        for col, value in (
            (c.entity, f.entity),
            (c.entity_id, f.entity_id),
            (c.action, f.action),
            (c.token_id, f.token_id),
            (c.role, f.role),
        )
        if value is not None
    ]
    if f.since is not None:
        out.append(c.at >= f.since)
    if f.until is not None:
        out.append(c.at < f.until)
    if f.before_id is not None:
        out.append(c.id < f.before_id)
    return out


async def list_entries(conn: AsyncConnection, f: AuditFilter, limit: int = 100) -> list[AuditEntry]:
    """List the entries matching the filter, newest first, at most ``limit``."""
    query = select(*(_LOG.c[name] for name in AuditEntry.__dataclass_fields__))
    query = query.where(*conditions(f)).order_by(_LOG.c.id.desc()).limit(limit)
    rows = (await conn.execute(query)).mappings().all()
    return [AuditEntry(**r) for r in rows]
