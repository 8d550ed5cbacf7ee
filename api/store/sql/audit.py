"""SQL of the append-only audit log (``audit_log``; UPDATE/DELETE refused by a trigger)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

INSERT = text(
    "INSERT INTO audit_log (actor, token_id, role, client_ip, method, path, action, entity, "
    "entity_id, before, after, changed, status) VALUES (:actor, :token_id, :role, :client_ip, "
    ":method, :path, :action, :entity, :entity_id, CAST(:before AS jsonb), CAST(:after AS jsonb), "
    ":changed, :status) RETURNING id"
)

_COLUMNS = (
    "id, at, actor, token_id, role, client_ip, method, path, action, entity, entity_id, "
    "before, after, changed, status"
)


async def list_entries(
    conn: AsyncConnection,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    token_id: int | None = None,
    role: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries newest first, filtered; ``before_id`` pages backwards."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    for col, value in (
        ("entity", entity),
        ("entity_id", entity_id),
        ("action", action),
        ("token_id", token_id),
        ("role", role),
    ):
        if value is not None:
            where.append(f'"{col}" = :{col}')
            params[col] = value
    if since is not None:
        where.append("at >= :since")
        params["since"] = since
    if until is not None:
        where.append("at < :until")
        params["until"] = until
    if before_id is not None:
        where.append("id < :before_id")
        params["before_id"] = before_id
    sql = text(f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit")
    rows = (await conn.execute(sql, params)).mappings().all()
    return [dict(r) for r in rows]
