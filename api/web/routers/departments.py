"""Departments (社区吹哨、部门报到): the list with codes, and each department's queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.services.incidents import reading
from api.services.incidents.inputs import BIGINT_MAX, Page
from api.web.deps import ConnDep, PrincipalDep, SecuritySettingsDep
from api.web.schemas.incidents import Department, DepartmentQueue

router = APIRouter(prefix="/api/v1/departments", tags=["incidents"])


@router.get(
    "",
    summary="City departments with their codes, time limits and queue sizes",
    response_model=list[Department],
)
async def list_departments(conn: ConnDep) -> list[Department]:
    """List the departments (see :func:`api.services.incidents.reading.list_departments`)."""
    return [Department.of(d) for d in await reading.list_departments(conn)]


@router.get(
    "/{code}/queue",
    summary="Cases escalated to the department, most urgent first (overdue flagged)",
    response_model=DepartmentQueue,
    response_model_exclude_unset=True,
)
async def queue(
    code: str,
    conn: ConnDep,
    principal: PrincipalDep,
    security: SecuritySettingsDep,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=BIGINT_MAX)] = 100,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> DepartmentQueue:
    """Read a department's queue (see :func:`api.services.incidents.reading.department_queue`)."""
    page = Page.within(limit, offset, security.max_page_size)
    return DepartmentQueue.of(
        await reading.department_queue(conn, principal, code, overdue=overdue, page=page)
    )
