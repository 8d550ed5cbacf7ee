"""The audit guarantees of the web layer: every write and every refusal leaves an entry.

Handlers (services) record their changes with :func:`api.auth.audit.record` inside
their transaction. Whatever they did not record is still logged:

* **writes in a request transaction** (``TxDep``): :class:`TxAudit` snapshots the row
  the route names (``/api/v1/<resource>/{id}``) right after ``BEGIN`` and again just
  before ``COMMIT``, or the row the request created, and appends the entry *in the same
  transaction*: the change and its entry commit together or not at all;
* **other writes**: :func:`record_write` appends who, when, where, route and status in a
  transaction of its own once the handler returned (before the answer is sent);
* **refusals** (401, 403): :func:`record_refusal` appends who (if known), where, the route
  and the reason, never the body; at most ``refusal_audit_rate`` per second per client
  address are stored (a flood of refusals must not turn into a flood of writes), the
  rest is counted in the server log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import HTTPConnection

from api.auth import audit
from api.auth.principal import Principal
from api.store.sql.audit import INSERT
from api.web.limits import RateLimiter

log = logging.getLogger("wangge.audit")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: Tables whose rows the fallback snapshots, by the resource in ``/api/v1/<resource>/...``.
SNAPSHOT_TABLES = {
    "incidents": "incidents",
    "plans": "plans",
    "people": "people",
    "tasks": "tasks",
    "visits": "visits",
}
_SNAPSHOT = (
    "SELECT to_jsonb(t) - 'geom' - 'location' - 'position' - 'point' AS row FROM \"{table}\" t WHERE id = :id"
)
#: the row this transaction created: the id this session last drew from the table's
#: sequence, provided this very transaction wrote that row (the id in a scalar subquery,
#: evaluated once: the primary key's index answers, never a scan)
_CREATED = (
    "SELECT to_jsonb(t) - 'geom' - 'location' - 'position' - 'point' AS row FROM \"{table}\" t "
    "WHERE t.id = (SELECT audit_created_id(pg_get_serial_sequence('{table}', 'id')::regclass)) "
    "AND t.xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296"
)

AUDITED = "audited"


def template_of(request: HTTPConnection) -> str:
    """Return the matched route's path template (the request path when unmatched)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else request.url.path


def is_audited(request: HTTPConnection) -> bool:
    """Whether this request's change is already in the audit log."""
    return bool((request.scope.get("state") or {}).get(AUDITED))


def mark_audited(request: HTTPConnection) -> None:
    """Note that this request's change is in the audit log (as ``audit.record`` does)."""
    request.scope.setdefault("state", {})[AUDITED] = True


def target(template: str, path_params: dict[str, Any]) -> tuple[str | None, int | None]:
    """Name the table a write under ``template`` changes and the id it names (None: none)."""
    segments = [s for s in template.split("/") if s]
    if len(segments) < 3 or segments[:2] != ["api", "v1"]:
        return None, None
    table = SNAPSHOT_TABLES.get(segments[2])
    if table is None:
        return None, None
    ident: Any = None
    if len(segments) > 3 and segments[3].startswith("{"):
        ident = path_params.get(segments[3].strip("{}"))
    text_id = str(ident) if ident is not None else ""
    if text_id.isascii() and text_id.isdigit() and int(text_id) < 2**63:
        return table, int(text_id)
    return table, None


async def _row(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    row = (await conn.execute(text(sql), params)).first()
    return None if row is None else dict(row[0])


def _status(request: HTTPConnection) -> int:
    route = request.scope.get("route")
    code = getattr(route, "status_code", None)
    return int(code) if code else 200


def _entity(template: str, table: str | None) -> str:
    if table:
        return table
    segments = [s for s in template.split("/") if s and not s.startswith("{")]
    if len(segments) > 2 and segments[0] == "api":
        return segments[2]
    return (segments or ["?"])[-1]


@dataclass
class TxAudit:
    """The fallback entry of one request transaction (see the module docstring)."""

    request: HTTPConnection
    principal: Principal
    table: str | None
    entity_id: int | None
    before: dict[str, Any] | None = None

    @classmethod
    async def begin(cls, request: HTTPConnection, conn: AsyncConnection) -> TxAudit | None:
        """Start watching a write request's transaction (None for reads and anonymous calls)."""
        principal = (request.scope.get("state") or {}).get("principal")
        if request.scope.get("method") not in WRITE_METHODS or principal is None:
            return None
        table, entity_id = target(template_of(request), dict(request.scope.get("path_params") or {}))
        watch = cls(request, principal, table, entity_id)
        if table is not None and entity_id is not None:
            watch.before = await _row(conn, _SNAPSHOT.format(table=table), {"id": entity_id})
        return watch

    async def commit(self, conn: AsyncConnection) -> None:
        """Before ``COMMIT``: append the entry unless the handler recorded its change."""
        if is_audited(self.request):
            return
        after = None
        entity_id = self.entity_id
        if self.table is not None:
            if entity_id is not None:
                after = await _row(conn, _SNAPSHOT.format(table=self.table), {"id": entity_id})
            else:
                after = await _row(conn, _CREATED.format(table=self.table), {})
                entity_id = after.get("id") if after else None
        template = template_of(self.request)
        row = audit.entry(
            self.principal,
            self.request,
            f"{self.request.scope.get('method')} {template}",
            _entity(template, self.table),
            entity_id,
            self.before,
            after,
            status=_status(self.request),
        )
        await conn.execute(INSERT, row)
        mark_audited(self.request)


def envelope(request: HTTPConnection, principal: Principal) -> dict[str, Any]:
    """Return the entry :class:`TxAudit` would append for this write, but for the row.

    For a service whose own write statement records the entry (intake): who, where, the
    route (``<METHOD> <template>``), the table and the status; the statement adds the
    entity id, the row (``after``) and ``changed``. The caller marks the request audited
    (:func:`mark_audited`) once that statement ran.
    """
    template = template_of(request)
    table, _ = target(template, dict(request.scope.get("path_params") or {}))
    return audit.entry(
        principal,
        request,
        f"{request.scope.get('method')} {template}",
        _entity(template, table),
        None,
        None,
        None,
        status=_status(request),
    )


async def record_write(request: HTTPConnection, principal: Principal) -> None:
    """Record a successful write nobody recorded: who, when, where, route, status (own transaction)."""
    if is_audited(request):
        return
    template = template_of(request)
    table, entity_id = target(template, dict(request.scope.get("path_params") or {}))
    row = audit.entry(
        principal,
        request,
        f"{request.scope.get('method')} {template}",
        _entity(template, table),
        entity_id,
        None,
        None,
        status=_status(request),
    )
    try:
        async with request.app.state.engine.begin() as conn:
            await conn.execute(INSERT, row)
        mark_audited(request)
    except (OSError, SQLAlchemyError) as exc:  # the write itself is done; say so loudly
        log.error(
            "audit entry for %s %s not written: %s", request.scope.get("method"), template, type(exc).__name__
        )


class Refusals:
    """Writes refusal entries, at most ``rate`` per second per client address (bursts of ``burst``)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.budget = RateLimiter(rate, burst)
        self.dropped = 0

    async def record(
        self, request: HTTPConnection, principal: Principal | None, status: int, reason: str
    ) -> None:
        """Append one refusal (no body, no query values) unless over the client's budget."""
        client = audit.client_ip(request) or "?"
        if self.budget.allow(client):
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning(
                    "refusals over the audit budget: %d not stored (last from %s)", self.dropped, client
                )
            return
        template = template_of(request)
        row = audit.entry(
            principal,
            request,
            "request.refused",
            "route",
            f"{request.scope.get('method')} {template}",
            None,
            {"status": status, "reason": reason[:300]},
            status=status,
        )
        try:
            async with request.app.state.engine.begin() as conn:
                await conn.execute(INSERT, row)
        except (OSError, SQLAlchemyError) as exc:
            log.error("refusal entry not written: %s", type(exc).__name__)
