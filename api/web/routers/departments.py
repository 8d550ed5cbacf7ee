"""Departments (社区吹哨、部门报到): the list with codes, and each department's queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.errors import Forbidden, InvalidInput, NotFound
from api.store.sql import incidents as q
from api.web.deps import ConnDep, PrincipalDep, SecuritySettingsDep
from api.web.routers.incidents import serialize

router = APIRouter(prefix="/api/v1/departments", tags=["incidents"])


@router.get("", summary="City departments with their codes, time limits and queue sizes")
async def list_departments(conn: ConnDep) -> list[dict[str, Any]]:
    return await q.departments(conn)


@router.get("/{code}/queue", summary="Cases escalated to the department, most urgent first (overdue flagged)")
async def queue(
    code: str,
    conn: ConnDep,
    principal: PrincipalDep,
    security: SecuritySettingsDep,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=2**63 - 1)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> dict[str, Any]:
    if not await q.department_exists(conn, code):
        raise NotFound(f"no department with code {code!r} (GET /api/v1/departments)", loc=["path", "code"])
    if principal.role == "department" and principal.department_code != code:
        raise Forbidden(
            f"a {principal.department_code!r} token may not read the queue of {code!r}", loc=["path", "code"]
        )
    if principal.role not in ("admin", "dispatcher", "department", "planner"):
        raise Forbidden(
            f"role {principal.role!r} may not read a department's queue", loc=["header", "authorization"]
        )
    if limit > security.max_page_size:
        raise InvalidInput(f"limit is at most {security.max_page_size}", loc=["query", "limit"])
    filters = {"department": code, "status": ["escalated", "department_accepted"], "overdue": overdue}
    total, rows = await q.list_incidents(conn, principal, filters, limit, offset, order="due")
    return {
        "department": code,
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [serialize(r, principal) for r in rows],
    }
