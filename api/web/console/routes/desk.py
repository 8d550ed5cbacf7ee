"""``/console/dispatch``: the dispatcher desk (调度台) — live queue, map, one case, claim lock, bulk.

Every handler parses the page's query or form and calls one use case of
:mod:`api.services.incidents.desk` / :mod:`api.services.incidents.claims` (the same
functions the API's routes call). Refusals the dispatcher must read in the page (a
case claimed by someone else: 409; a wrong field: 422) are rendered into the case
panel, which htmx swaps for those statuses; other errors go to the page's toast.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.auth.policy import token_area
from api.errors import Conflict, InvalidInput, WanggeError
from api.services.incidents import claims, desk
from api.services.incidents.inputs import BIGINT_MAX, StatusName
from api.store.sql import console as area_sql
from api.web.console.access import ConsoleUser, ConsoleUserDep, CsrfDep
from api.web.console.forms import blank as _blank
from api.web.console.i18n import N_, translations
from api.web.console.templating import is_htmx, render
from api.web.deps import ApiSettingsDep, ConnDep, DispatchSettingsDep, TxDep

router = APIRouter(include_in_schema=False)

IncidentId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
ROLES = ("grid_worker", "volunteer", "rider", "police", "window_worker")
TASK_ROLES = ("volunteer", "rider", "grid_worker", "police")


@dataclass(frozen=True)
class Template:
    """An escalation note template (吹哨): a key, its title and its text (message ids)."""

    key: str
    title: str
    text: str


#: the whistle's note templates; placeholders {department} {item} {grid} {place}
TEMPLATES = (
    Template(
        "beyond",
        N_("Beyond the community's powers"),
        N_(
            "The community has handled what it can; {item} at {place} ({grid}) needs {department}'s "
            "powers. Please report for duty within the time limit."
        ),
    ),
    Template(
        "safety",
        N_("Safety hazard: attend at once"),
        N_(
            "Safety hazard: {item} at {place} ({grid}). The grid worker is on site; "
            "{department} please attend at once."
        ),
    ),
    Template(
        "repeated",
        N_("Repeated reports: enforcement needed"),
        N_(
            "Residents keep reporting {item} at {place} ({grid}); persuasion has not worked. "
            "{department} please enforce and reply."
        ),
    ),
    Template(
        "facility",
        N_("Specialist equipment or works"),
        N_(
            "{item} at {place} ({grid}) needs specialist equipment or works (lift, pipes, wiring). "
            "{department} please arrange them and report back."
        ),
    ),
)
TEMPLATE_KEYS = {t.key: t for t in TEMPLATES}


def _hours(value: str | None) -> int | None:
    value = _blank(value)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 4:
        raise InvalidInput("due within: a whole number of hours", loc=["query", "due_within"])
    return int(value)


def _overdue(value: str | None) -> bool | None:
    return {"1": True, "0": False}.get(value or "")


def _query_of(f: desk.DeskFilter) -> str:
    pairs: list[tuple[str, Any]] = []
    for key, value in (
        ("community", f.community),
        ("grid", f.grid),
        ("item", f.item),
        ("channel", f.channel),
    ):
        if value:
            pairs.append((key, value))
    pairs += [("status", s) for s in f.status]
    if f.overdue is not None:
        pairs.append(("overdue", "1" if f.overdue else "0"))
    if f.due_within_hours is not None:
        pairs.append(("due_within", f.due_within_hours))
    if f.sort != "due":
        pairs.append(("sort", f.sort))
    return urlencode(pairs)


def _filled(template: Template, gettext: Any, case: Any, department: str) -> str:
    inc = case.incident
    return str(gettext(template.text)).format(
        item=inc.item_name,
        place=inc.address or inc.community_name or "",
        grid=inc.grid_name or inc.grid_code or "",
        department=department,
    )


async def _case_context(
    request: Request,
    conn: Any,
    user: ConsoleUser,
    settings: Any,
    tolerance_m: float,
    incident_id: int,
    role: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    found = await desk.case_desk(
        conn, user.principal, settings, incident_id, tolerance_m=tolerance_m, role=role
    )
    return {
        "d": found,
        "roles": ROLES,
        "task_roles": TASK_ROLES,
        "templates": TEMPLATES,
        "role": role or "",
        "task_key": uuid.uuid4().hex,
        "assignable": desk.ASSIGNABLE_ROLES,
        "message": None,
        "error": None,
        **extra,
    }


def _status_of(exc: WanggeError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


@dataclass(frozen=True)
class CaseAction:
    """An action on one case of the panel: the request, the case, the transaction and who acts.

    Every action route parses its form, calls one use case and answers the case panel
    through :meth:`run`: the panel with a message on success (``desk:changed`` for the
    queue), or with the refusal the dispatcher must read (409 a claim, 422 a field).
    """

    request: Request
    incident_id: int
    tx: Any
    user: ConsoleUser
    settings: Any
    tolerance_m: float

    async def answer(
        self,
        *,
        case: int | None = None,
        message: str | None = None,
        error: WanggeError | None = None,
        status_code: int = 200,
        changed: bool = False,
    ) -> HTMLResponse:
        """Render the panel of ``case`` (default: this action's) with a message or an error."""
        context = await _case_context(
            self.request,
            self.tx,
            self.user,
            self.settings,
            self.tolerance_m,
            self.incident_id if case is None else case,
            message=message,
            error=error,
        )
        headers = {"HX-Trigger": "desk:changed"} if changed else None
        return render(
            self.request, "desk/_case.html", context, user=self.user, status_code=status_code, headers=headers
        )

    async def refuse(self, exc: WanggeError) -> HTMLResponse:
        """Render the panel with the refusal (409 for a conflict, else 422)."""
        return await self.answer(error=exc, status_code=_status_of(exc))

    async def run(
        self,
        action: Awaitable[Any],
        done: str,
        *,
        then: int | None = None,
        refused: tuple[type[WanggeError], ...] = (Conflict, InvalidInput),
    ) -> HTMLResponse:
        """Await the use case; answer the panel (of ``then`` if given) saying ``done``, or the refusal."""
        try:
            await action
        except refused as exc:
            return await self.refuse(exc)
        return await self.answer(case=then, message=done, changed=True)


async def case_action(
    request: Request,
    incident_id: IncidentId,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    settings: DispatchSettingsDep,
    api_settings: ApiSettingsDep,
) -> CaseAction:
    """Collect what every case action needs (a CSRF-checked form post in one transaction)."""
    return CaseAction(request, incident_id, tx, user, settings, api_settings.boundary_tolerance_m)


CaseActionDep = Annotated[CaseAction, Depends(case_action)]


@router.get("/console/dispatch", response_class=HTMLResponse)
async def desk_page(
    request: Request,
    conn: ConnDep,
    user: ConsoleUserDep,
    settings: DispatchSettingsDep,
    api_settings: ApiSettingsDep,
    community: Annotated[str | None, Query(max_length=12)] = None,
    grid: Annotated[str | None, Query(max_length=15)] = None,
    status: Annotated[list[StatusName] | None, Query()] = None,
    item: Annotated[str | None, Query(max_length=32)] = None,
    channel: Annotated[
        Literal["window", "mini_program", "phone", "patrol", "open311", ""] | None, Query()
    ] = None,
    overdue: Annotated[Literal["", "1", "0"] | None, Query()] = None,
    due_within: Annotated[str | None, Query(max_length=4)] = None,
    sort: Annotated[Literal["due", "created"], Query()] = "due",
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    case: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
) -> HTMLResponse:
    """Answer the desk (full page), or its queue alone for htmx (filters, paging, live refresh)."""
    f = desk.DeskFilter(
        community=_blank(community),
        grid=_blank(grid),
        status=tuple(status or ()),
        item=_blank(item),
        channel=_blank(channel),
        overdue=_overdue(overdue),
        due_within_hours=_hours(due_within),
        sort=sort,
        offset=offset,
    )
    queue = await desk.open_queue(conn, user.principal, f)
    context: dict[str, Any] = {
        "q": queue,
        "f": f,
        "query": _query_of(f),
        "statuses": desk.DESK_STATUSES,
        "departments": await desk.departments(conn),
        "templates": TEMPLATES,
    }
    if is_htmx(request) and request.headers.get("hx-target") == "desk-queue":
        return render(request, "desk/_queue.html", context, user=user)
    area = token_area(user.principal)
    bounds = await area_sql.area_bounds(conn, f.community or area.community, area.district)
    context.update(bounds=bounds, case_panel=None)
    if case is not None:
        try:
            context["case_panel"] = await _case_context(
                request, conn, user, settings, api_settings.boundary_tolerance_m, case
            )
        except WanggeError:
            context["case_panel"] = None
    return render(request, "desk/page.html", context, user=user)


@router.get("/console/dispatch/cases/{incident_id}", response_class=HTMLResponse)
async def case_panel(
    request: Request,
    incident_id: IncidentId,
    conn: ConnDep,
    user: ConsoleUserDep,
    settings: DispatchSettingsDep,
    api_settings: ApiSettingsDep,
    role: Annotated[Literal[ROLES] | None, Query()] = None,  # type: ignore[valid-type]
) -> HTMLResponse:
    """One case: its log, claim, the nearest available people, tasks and actions."""
    context = await _case_context(
        request, conn, user, settings, api_settings.boundary_tolerance_m, incident_id, role=role
    )
    return render(request, "desk/_case.html", context, user=user)


@router.get("/console/dispatch/people")
async def people_on_map(
    conn: ConnDep,
    user: ConsoleUserDep,
    settings: DispatchSettingsDep,
    bbox: Annotated[str, Query(max_length=100)],
) -> JSONResponse:
    """People on duty in the map's view: ``[[id, role, lon, lat], ...]`` (no names)."""
    try:
        box = tuple(float(v) for v in bbox.split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        raise InvalidInput("bbox is west,south,east,north", loc=["query", "bbox"])
    people = await desk.map_people(conn, user.principal, settings, box)
    rows = [[p.id, p.role, round(p.lon, 6), round(p.lat, 6)] for p in people]
    return JSONResponse({"people": rows, "limit": desk.MAP_PEOPLE}, headers={"Cache-Control": "no-store"})


@router.post("/console/dispatch/cases/{incident_id}/claim", response_class=HTMLResponse)
async def claim_case(
    act: CaseActionDep,
    minutes: Annotated[int, Form(ge=1, le=claims.MAX_MINUTES)] = claims.DEFAULT_MINUTES,
) -> HTMLResponse:
    """Claim the case for N minutes; another dispatcher's claim is refused in the panel (409)."""
    return await act.run(claims.claim(act.tx, act.user.principal, act.incident_id, minutes), N_("Claimed"))


@router.post("/console/dispatch/cases/{incident_id}/release", response_class=HTMLResponse)
async def release_case(act: CaseActionDep) -> HTMLResponse:
    """Give the claim back (return the case to the queue)."""
    action = claims.release(act.tx, act.user.principal, act.incident_id)
    return await act.run(action, N_("Returned to the queue"), refused=(Conflict,))


@router.post("/console/dispatch/cases/{incident_id}/assign", response_class=HTMLResponse)
async def assign_case(
    act: CaseActionDep, person_id: Annotated[int, Form(ge=1, le=BIGINT_MAX)]
) -> HTMLResponse:
    """Assign the case to a person of the nearest list."""
    action = desk.assign(act.tx, act.user.principal, act.incident_id, person_id, tolerance_m=act.tolerance_m)
    return await act.run(action, N_("Assigned"))


@router.post("/console/dispatch/cases/{incident_id}/task", response_class=HTMLResponse)
async def offer_task(
    act: CaseActionDep,
    role: Annotated[Literal[TASK_ROLES], Form()],  # type: ignore[valid-type]
    key: Annotated[str, Form(min_length=8, max_length=64)],
) -> HTMLResponse:
    """Offer a micro-grid task for the case to the nearest available person of a role (idempotent key)."""
    action = desk.offer_task(
        act.tx, act.user.principal, act.settings, act.incident_id, role, key, tolerance_m=act.tolerance_m
    )
    return await act.run(action, N_("Task offered"))


@router.post("/console/dispatch/cases/{incident_id}/reassign", response_class=HTMLResponse)
async def reassign_case(
    act: CaseActionDep,
    grid: Annotated[str, Form(max_length=15)],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> HTMLResponse:
    """Move the case to another grid (its worker takes it)."""
    if not (grid.isascii() and grid.isdigit() and len(grid) == 15):
        return await act.refuse(InvalidInput("a grid code has 15 digits", loc=["body", "grid"]))
    action = desk.reassign(
        act.tx, act.user.principal, act.incident_id, grid, _blank(note), tolerance_m=act.tolerance_m
    )
    return await act.run(action, N_("Reassigned"))


def _escalation_note(
    request: Request, user: ConsoleUser, template: str | None, note: str | None, case: Any, department: Any
) -> str:
    gettext = translations(user.lang).gettext
    parts = []
    chosen = TEMPLATE_KEYS.get(template or "")
    if chosen is not None:
        name = department.name if user.lang.startswith("zh") else department.name_en
        parts.append(_filled(chosen, gettext, case, name))
    if _blank(note):
        parts.append(str(note).strip())
    if not parts:
        raise InvalidInput("choose a template or write a note for the department", loc=["body", "note"])
    return "\n".join(parts)


@router.post("/console/dispatch/cases/{incident_id}/escalate", response_class=HTMLResponse)
async def escalate_case(
    act: CaseActionDep,
    department: Annotated[str, Form(max_length=32)],
    template: Annotated[str | None, Form(max_length=32)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> HTMLResponse:
    """Blow the whistle: escalate to a department with a templated note (吹哨)."""
    tol = act.tolerance_m
    try:
        found = await desk.case_desk(
            act.tx, act.user.principal, act.settings, act.incident_id, tolerance_m=tol
        )
        dep = next((d for d in found.departments if d.code == department), None)
        if dep is None:
            raise InvalidInput(f"unknown department {department!r}", loc=["body", "department"])
        text = _escalation_note(act.request, act.user, template, note, found.case, dep)
    except InvalidInput as exc:
        return await act.refuse(exc)
    action = desk.escalate(act.tx, act.user.principal, act.incident_id, department, text, tolerance_m=tol)
    return await act.run(action, N_("Escalated"))


@router.post("/console/dispatch/cases/{incident_id}/conclude", response_class=HTMLResponse)
async def conclude_case(
    act: CaseActionDep,
    action: Annotated[str, Form(max_length=16)],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> HTMLResponse:
    """Verify (核查), close (结案) or reopen a case the handler reported back."""
    done = {"verify": N_("Verified"), "close": N_("Closed"), "reopen": N_("Reopened")}.get(action, "")
    call = desk.conclude(
        act.tx, act.user.principal, act.incident_id, action, _blank(note), tolerance_m=act.tolerance_m
    )
    return await act.run(call, done)


@router.post("/console/dispatch/cases/{incident_id}/merge", response_class=HTMLResponse)
async def merge_case(act: CaseActionDep, into: Annotated[int, Form(ge=1, le=BIGINT_MAX)]) -> HTMLResponse:
    """Merge the case into the one it repeats; the panel then shows the surviving case."""
    action = desk.merge(act.tx, act.user.principal, act.incident_id, into, tolerance_m=act.tolerance_m)
    return await act.run(action, N_("Merged"), then=into)


@router.post("/console/dispatch/bulk", response_class=HTMLResponse)
async def bulk_action(
    request: Request,
    tx: TxDep,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    api_settings: ApiSettingsDep,
    action: Annotated[Literal["assign", "escalate"], Form()],
    ids: Annotated[list[int], Form()],
    department: Annotated[str | None, Form(max_length=32)] = None,
    template: Annotated[str | None, Form(max_length=32)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> HTMLResponse:
    """Assign (each to its grid's worker on duty) or escalate the checked cases, each on its own."""
    tol = api_settings.boundary_tolerance_m
    text = _blank(note)
    if action == "escalate":
        chosen = TEMPLATE_KEYS.get(template or "")
        if chosen is not None:
            gettext = translations(user.lang).gettext
            # one note for many cases: the template without the case's own facts
            generic = str(gettext(chosen.title))
            text = generic + ("\n" + text if text else "")
    try:
        result = await desk.bulk(
            tx, user.principal, ids, action, tolerance_m=tol, department=_blank(department), note=text
        )
    except InvalidInput as exc:
        return render(
            request,
            "desk/_bulk.html",
            {"result": None, "error": exc, "action": action},
            user=user,
            status_code=422,
        )
    return render(
        request,
        "desk/_bulk.html",
        {"result": result, "error": None, "action": action},
        user=user,
        headers={"HX-Trigger": "desk:changed"},
    )
