"""``/console/field``: the field worker's page (网格员工作台), mobile first, working offline.

A grid worker, volunteer or rider signed in with a token bound to their person sees
their open cases, the tasks offered to them and those they accepted, and (grid
workers) the must-visit households of their grid (三必访) that are due. Every action
(accept or decline a task, complete it with the phone's position, record a visit with
the checklist, move a case) is queued on the phone first (``static/js/field-queue.js``)
and sent to ``POST /console/field/actions`` with an idempotency key made on the phone:
the server does each key once (:func:`api.services.field.actions.perform`), so a resend
after a lost answer, a reload or a network drop never doubles anything and nothing
queued is lost. ``/console/field/sw.js`` is a small service worker that keeps the page
and its scripts so that it also reloads without a network.

Why a console route and not the API's task and visit routes: those do not take an
idempotency key for accept/decline/complete/visit, and the queue needs one answer shape
for every kind; the route calls one service, which calls the same use cases as the API.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from api.services.field import actions, work
from api.services.field.inputs import FieldAction
from api.web.console.access import ConsoleUserDep, CsrfDep
from api.web.console.i18n import N_
from api.web.console.templating import HERE, is_htmx, render
from api.web.deps import ApiSettingsDep, ConnDep, DispatchSettingsDep, TxDep

router = APIRouter(include_in_schema=False)

SERVICE_WORKER = HERE / "static" / "js" / "field-sw.js"

#: how a household's flags are named (must-visit reasons: 三必访)
FLAG_WORDS = {
    "elderly_alone": N_("Elderly living alone"),
    "disabled": N_("Disabled"),
    "low_income": N_("Low income"),
    "bedridden": N_("Bedridden"),
}
#: how the checklist's groups are named
GROUP_WORDS = {
    "care": N_("Living and care"),
    "safety": N_("Safety"),
    "services": N_("Public services"),
    "community": N_("Community"),
}
#: case moves a worker takes from this page (the workflow's names) → button text
CASE_ACTIONS = {
    "accept": N_("Accept the case"),
    "start": N_("Start handling"),
    "resolve": N_("Report handled"),
}


class ActionAnswer(BaseModel):
    """The answer to one synced action (``replayed``: done before under this key, nothing done now)."""

    key: str
    kind: str
    replayed: bool
    done_at: dt.datetime
    result: dict[str, Any]


async def _context(conn: Any, user: Any, settings: Any) -> dict[str, Any]:
    day = await work.field_day(conn, user.principal, settings)
    return {
        "day": day,
        "flag_words": FLAG_WORDS,
        "group_words": GROUP_WORDS,
        "case_actions": CASE_ACTIONS,
    }


@router.get("/console/field", response_class=HTMLResponse)
async def field_page(
    request: Request, conn: ConnDep, user: ConsoleUserDep, settings: DispatchSettingsDep
) -> HTMLResponse:
    """My cases, my tasks and the households due a visit."""
    context = await _context(conn, user, settings)
    name = "field/_work.html" if is_htmx(request) else "field/page.html"
    return render(request, name, context, user=user)


@router.get("/console/field/work", response_class=HTMLResponse)
async def field_work(
    request: Request, conn: ConnDep, user: ConsoleUserDep, settings: DispatchSettingsDep
) -> HTMLResponse:
    """Answer the work lists alone (refreshed on every change of my cases and tasks, after a sync)."""
    return render(request, "field/_work.html", await _context(conn, user, settings), user=user)


@router.post("/console/field/actions", response_model=ActionAnswer)
async def field_action(
    action: Annotated[FieldAction, Body()],
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    settings: DispatchSettingsDep,
    api: ApiSettingsDep,
) -> ActionAnswer:
    """Do one action the phone queued, once per idempotency key (a resend answers the first result)."""
    done = await actions.perform(tx, user.principal, settings, action, tolerance_m=api.boundary_tolerance_m)
    return ActionAnswer(
        key=done.key, kind=done.kind, replayed=done.replayed, done_at=done.done_at, result=done.result
    )


@router.get("/console/field/sw.js")
async def field_service_worker(user: ConsoleUserDep) -> Response:
    """Serve the service worker that keeps the field page for offline reloads (scope ``/console/field``)."""
    return Response(
        SERVICE_WORKER.read_bytes(),
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/console/field", "Cache-Control": "no-cache"},
    )
