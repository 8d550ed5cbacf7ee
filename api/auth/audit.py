"""The audit trail: who did what, when, from where, with the record before and after.

Writers call :func:`record` (async, API) or :func:`record_sync` (CLI, bulk)
*inside the transaction that makes the change*, so that the change and its
audit entry commit or roll back together::

    @router.post("/api/v1/incidents/{incident_id}/assign")
    async def assign(incident_id: int, tx: TxDep, principal: PrincipalDep, request: Request):
        before = await incidents.get(tx, incident_id)
        after = await incidents.assign(tx, incident_id, ...)
        await audit.record(tx, principal, request, "incident.assign", "incident", incident_id,
                           before, after)

Every successful write that did not call :func:`record` still gets an entry (who, when,
route, status, client address) from the web layer: inside the request's transaction when
it has one, else in a transaction of its own before the answer (``api.web.auditing``).

The table is append-only in the database (a trigger refuses UPDATE, DELETE and
TRUNCATE). Personal fields in ``before``/``after`` are stored masked
(``api.auth.privacy.mask_for_log``); ``changed`` lists the keys whose values changed,
compared before masking, so a changed phone number still shows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import HTTPConnection

from api.auth.principal import Principal
from api.auth.privacy import mask_for_log
from api.store.sql.audit import INSERT

#: Keys never copied into the log (large geometries; the change is in ``changed``).
SKIP_KEYS = frozenset({"geom", "geometry", "position", "location", "point"})


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _snapshot(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {str(k): v for k, v in dict(record).items()}


def changed_keys(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """List the keys whose values differ between two records (compared before masking)."""
    b, a = dict(before or {}), dict(after or {})
    return sorted(k for k in set(b) | set(a) if _plain(b.get(k)) != _plain(a.get(k)))


def client_ip(request: HTTPConnection | None) -> str | None:
    """Return the client's address of a request (None without one)."""
    if request is None or request.client is None:
        return None
    return request.client.host


def entry(
    principal: Principal | None,
    request: HTTPConnection | None,
    action: str,
    entity: str | None,
    entity_id: Any,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    actor: str | None = None,
    status: int | None = None,
) -> dict[str, Any]:
    """Build the bound parameters of one audit row."""
    b, a = _snapshot(before), _snapshot(after)

    def store(rec: dict[str, Any] | None) -> str | None:
        if rec is None:
            return None
        masked = mask_for_log({k: v for k, v in rec.items() if k not in SKIP_KEYS})
        return json.dumps(_plain(masked), ensure_ascii=False, allow_nan=False)

    return {
        "actor": actor or (principal.actor if principal else "anonymous"),
        "token_id": principal.token_id if principal else None,
        "role": principal.role if principal else None,
        "client_ip": client_ip(request),
        "method": request.scope.get("method") if request is not None else None,
        "path": request.url.path if request is not None else None,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "before": store(b),
        "after": store(a),
        "changed": changed_keys(b, a) if (b is not None or a is not None) else None,
        "status": status,
    }


async def record(
    conn: AsyncConnection,
    principal: Principal | None,
    request: HTTPConnection | None,
    action: str,
    entity: str | None,
    entity_id: Any,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Append one entry inside the caller's transaction; returns its id.

    ``action`` is ``<entity>.<verb>`` by convention (``plan.publish``,
    ``incident.assign``, ``person.update``).
    """
    params = entry(principal, request, action, entity, entity_id, before, after)
    audit_id = (await conn.execute(INSERT, params)).scalar_one()
    if request is not None:
        request.scope.setdefault("state", {})["audited"] = True
    return int(audit_id)


def record_sync(
    conn: Connection,
    actor: str,
    action: str,
    entity: str | None,
    entity_id: Any,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Append one entry like :func:`record`, for CLI and bulk code on a synchronous connection."""
    params = entry(None, None, action, entity, entity_id, before, after, actor=actor)
    return int(conn.execute(INSERT, params).scalar_one())


def cli_actor() -> str:
    """``cli:<os user>`` for changes made from the command line."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
