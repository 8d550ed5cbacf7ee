"""Micro-grid tasks (微网格任务): offered to the nearest available volunteer or rider.

Offers expire lazily: every read or write of a task first brings it up to date
(an offer past its window moves to the next candidate), and
``POST /api/v1/tasks/expire-offers`` sweeps all of them (or ``wangge dispatch sweep``).
Each route parses, calls one use case of :mod:`api.services.dispatch` and returns its response model.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response

from api.services.dispatch import sweep, tasks
from api.services.dispatch.inputs import CancelIn, CompleteIn, PersonAction, TaskIn, TaskQuery, TaskStatus
from api.services.dispatch.views import SweepCounts, TaskCompleted, TaskDetail, TaskView
from api.web.deps import ConnDep, DispatchSettingsDep, PrincipalDep, TxDep
from api.web.schemas.dispatch import SweepOut, TaskCompletedOut, TaskDetailOut, TaskOut

router = APIRouter(prefix="/api/v1/tasks", tags=["dispatch"])

TaskId = Annotated[int, Path(ge=1)]
_TASK: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such task (or person) in this token's reach"}
}
_ACT: dict[int | str, dict[str, Any]] = {
    **_TASK,
    403: {"description": "a worker token acting for another person"},
}


@router.post(
    "",
    status_code=201,
    response_model=TaskDetailOut,
    summary="Create a task and offer it to the nearest available person",
    responses={
        200: {"model": TaskDetailOut, "description": "the task an idempotency key already created"},
        403: {"description": "the place is outside this token's area"},
        404: {"description": "no such incident in this token's reach"},
    },
)
async def create_task(
    body: TaskIn,
    conn: TxDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> TaskDetail:
    """Create and offer; a retry with the same key (same token) answers 200 with the same task."""
    made = await tasks.create_task(conn, principal, settings, body, idempotency_key)
    if not made.created:
        response.status_code = 200
    return made.task


@router.post(
    "/expire-offers",
    response_model=SweepOut,
    summary="The dispatch sweep: move lapsed offers on, retry open tasks, expire late ones, "
    "prune old position history",
)
async def expire_offers(
    conn: TxDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
    retry_open: Annotated[bool, Query(description="offer open tasks again")] = True,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> SweepCounts:
    """Sweep the tasks and people of the token's area."""
    return await sweep.sweep(conn, principal, settings, retry_open, limit)


@router.get(
    "",
    response_model=list[TaskOut],
    summary="Tasks, newest first",
    responses={403: {"description": "a community outside this token's area, or another person"}},
)
async def list_tasks(
    conn: ConnDep,
    principal: PrincipalDep,
    status: Annotated[TaskStatus | None, Query()] = None,
    person: Annotated[int | None, Query(ge=1, description="offered to or accepted by")] = None,
    community: Annotated[
        str | None, Query(pattern=r"^\d{12}$", description="default: the token's area")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TaskView]:
    """Tasks of the token's area (a worker token: its own tasks)."""
    query = TaskQuery(status=status, person=person, community=community, limit=limit)
    return await tasks.list_tasks(conn, principal, query)


@router.get(
    "/{task_id}",
    response_model=TaskDetailOut,
    responses=_TASK,
    summary="A task with its offers (lapsed offers are moved on first)",
)
async def get_task(
    task_id: TaskId, conn: TxDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> TaskDetail:
    """Read the task as it is now."""
    return await tasks.get_task(conn, principal, settings, task_id)


@router.post(
    "/{task_id}/accept",
    response_model=TaskDetailOut,
    responses=_ACT,
    summary="The offered person accepts the task",
)
async def accept(
    task_id: TaskId, body: PersonAction, conn: TxDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> TaskDetail:
    """Accept the offer."""
    return await tasks.accept_task(conn, principal, settings, task_id, body)


@router.post(
    "/{task_id}/decline",
    response_model=TaskDetailOut,
    responses=_ACT,
    summary="The offered person declines: the next candidate gets it",
)
async def decline(
    task_id: TaskId, body: PersonAction, conn: TxDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> TaskDetail:
    """Decline the offer."""
    return await tasks.decline_task(conn, principal, settings, task_id, body)


@router.post(
    "/{task_id}/complete",
    response_model=TaskCompletedOut,
    responses=_ACT,
    summary="The assignee completes the task on the spot: points credited",
)
async def complete(
    task_id: TaskId, body: CompleteIn, conn: TxDep, principal: PrincipalDep, settings: DispatchSettingsDep
) -> TaskCompleted:
    """Complete with proof of presence."""
    return await tasks.complete_task(conn, principal, settings, task_id, body)


@router.post(
    "/{task_id}/cancel",
    response_model=TaskDetailOut,
    responses=_TASK,
    summary="Cancel a task that is not finished",
)
async def cancel(
    task_id: TaskId,
    conn: TxDep,
    principal: PrincipalDep,
    settings: DispatchSettingsDep,
    body: CancelIn | None = None,
) -> TaskDetail:
    """Cancel; the pending offer is withdrawn."""
    return await tasks.cancel_task(conn, principal, settings, task_id, body.reason if body else None)
