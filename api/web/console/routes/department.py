"""``/console/department``: the department queue (社区吹哨、部门报到).

A department's staff see the cases the communities escalated to their department,
most urgent first, with the department's time limit counting down; they accept a
case (报到), reply to the community (反馈), return a case that is not theirs with
the reasons (退回), and close their part with a note (办结: the workflow's
``resolve``; the community verifies and closes the case, 结案). The queue refreshes
itself on every change of a case (the page's event stream).

Pages call the use cases the API calls: :func:`api.services.incidents.reading.department_queue`,
:func:`api.services.incidents.reading.get_incident`, and for the actions
:func:`api.services.incidents.department.act` (``moves.transition`` / ``replies.reply`` once
per idempotency key: the case panel's form carries a key, a retry answers the same case
with ``Idempotent-Replayed: true`` and writes nothing).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import Conflict, InvalidInput
from api.services.incidents import department, reading
from api.services.incidents.inputs import Page
from api.web.console.access import ConsoleUser, ConsoleUserDep, CsrfDep
from api.web.console.i18n import N_
from api.web.console.templating import is_htmx, render
from api.web.deps import ApiSettingsDep, ConnDep, TxDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 200
#: how the log names each event (message ids)
EVENT_WORDS = {
    "intake": N_("Taken in"),
    "assign": N_("Dispatched"),
    "accept": N_("Accepted"),
    "start": N_("Handling started"),
    "escalate": N_("Escalated"),
    "department_accept": N_("Department accepted"),
    "reply": N_("Department replied"),
    "return": N_("Returned"),
    "resolve": N_("Handled"),
    "reassign": N_("Reassigned"),
    "verify": N_("Verified"),
    "close": N_("Closed"),
    "reopen": N_("Reopened"),
    "flag_duplicate": N_("Likely duplicate"),
    "merged": N_("Merged"),
    "rated": N_("Rated"),
}


def _key() -> str:
    """Make a new idempotency key for a case panel's actions (a retry of the form sends it again)."""
    return uuid.uuid4().hex


def _department(user: ConsoleUser, asked: str | None) -> str | None:
    """Pick the department whose queue is shown: the token's; an admin names one."""
    return user.principal.department_code or (asked or None)


async def _queue_context(conn: AsyncConnection, user: ConsoleUser, department: str | None) -> dict[str, Any]:
    departments = await reading.list_departments(conn)
    queue = None
    if department is not None:
        queue = await reading.department_queue(
            conn, user.principal, department, overdue=None, page=Page(PAGE_SIZE, 0)
        )
    current = next((d for d in departments if d.code == department), None)
    return {"queue": queue, "department": current, "departments": departments, "code": department or ""}


@router.get("/console/department", response_class=HTMLResponse)
async def department_page(
    request: Request,
    conn: ConnDep,
    user: ConsoleUserDep,
    department: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """Show the queue of the token's department (an admin names one with ``?department=``)."""
    context = await _queue_context(conn, user, _department(user, department))
    extra = {"case": None, "error": None, "done": None, "event_words": EVENT_WORDS}
    return render(request, "department/page.html", {**context, **extra}, user=user)


@router.get("/console/department/queue", response_class=HTMLResponse)
async def department_queue(
    request: Request,
    conn: ConnDep,
    user: ConsoleUserDep,
    department: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """Answer the queue alone (htmx refreshes it on every change of a case)."""
    context = await _queue_context(conn, user, _department(user, department))
    return render(request, "department/_queue.html", context, user=user)


@router.get("/console/department/{incident_id}", response_class=HTMLResponse)
async def department_case(
    request: Request, incident_id: int, conn: ConnDep, user: ConsoleUserDep, api: ApiSettingsDep
) -> HTMLResponse:
    """One case with its log and the department's actions (404 unless escalated to it)."""
    case = await reading.get_incident(conn, user.principal, incident_id, tolerance_m=api.boundary_tolerance_m)
    context: dict[str, Any] = {
        "case": case,
        "error": None,
        "done": None,
        "event_words": EVENT_WORDS,
        "act_key": _key(),
    }
    if is_htmx(request):
        return render(request, "department/_case.html", context, user=user)
    queue = await _queue_context(conn, user, case.incident.department_code or _department(user, None))
    return render(request, "department/page.html", {**queue, **context}, user=user)


@router.post("/console/department/{incident_id}/act", response_class=HTMLResponse)
async def department_act(
    request: Request,
    incident_id: int,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    api: ApiSettingsDep,
    action: Annotated[str, Form(max_length=16)],
    key: Annotated[str, Form(max_length=department.KEY_MAX)],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> HTMLResponse:
    """Accept, reply, return or close a case once per key; answer the case again (409/422: why)."""
    tolerance = api.boundary_tolerance_m
    text = (note or "").strip() or None
    try:
        done = await department.act(tx, user.principal, incident_id, action, text, key, tolerance_m=tolerance)
    except (Conflict, InvalidInput) as exc:
        # refused before anything changed: show the case as it is, with the reason
        case = await reading.get_incident(tx, user.principal, incident_id, tolerance_m=tolerance)
        status = 409 if isinstance(exc, Conflict) else 422
        refused = {"case": case, "error": exc, "done": None, "event_words": EVENT_WORDS, "act_key": _key()}
        return render(request, "department/_case.html", refused, user=user, status_code=status)
    context: dict[str, Any] = {
        "case": done.case,
        "error": None,
        "done": action,
        "event_words": EVENT_WORDS,
        "act_key": _key(),
    }
    headers = {"HX-Trigger": "wg:department-changed"}
    if done.replayed:
        headers["Idempotent-Replayed"] = "true"
    return render(request, "department/_case.html", context, user=user, headers=headers)
