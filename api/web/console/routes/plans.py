"""``/console/plans``: the planner's screen — redraw, review over the active plan, edit, compare, publish.

Every route calls the planning use cases the API calls (:mod:`api.services.planning.service`)
in a worker thread, plus the console's own small ones: background redraw runs
(:mod:`api.services.planning.runs`) and the map's grids (:mod:`api.services.planning.views`).
Scope, owners and versions are decided there; a refused change (stale version,
another planner's draft, an edit that would break the tiling) is answered with the
same partial and a message saying what happened, in the page's language.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.errors import Conflict, Forbidden, InvalidInput, NotFound, WanggeError
from api.services.planning import runs, service, views
from api.services.planning.db import AsyncEngineDatabase, run_in_worker
from api.services.planning.results import PlanReview
from api.web.console.access import ConsoleUser, ConsoleUserDep, CsrfDep
from api.web.console.templating import is_htmx, render
from api.web.deps import map_changed
from api.web.schemas.planning import EditBody, VersionBody

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

#: Runs started by this process, kept referenced until they end.
_RUNNING: set[asyncio.Task[Any]] = set()
#: Filters of the review table (``?flag=``): a flag of the review, or every flagged grid.
TABLE_FILTERS = ("all", "flagged", "out_of_range", "non_contiguous", "over_maximum", "no_worker")


def _db(request: Request) -> AsyncEngineDatabase:
    return AsyncEngineDatabase(request.app.state.engine, request.app.state.read_engine)


def _problem(exc: WanggeError) -> dict[str, Any]:
    """Describe a refused change for the page: its kind and the service's own reason."""
    return {"type": exc.error_type, "msg": exc.msg, "extra": exc.extra}


def _status(exc: WanggeError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    return 422


# ------------------------------------------------------------------ the screen


@router.get("/console/plans", response_class=HTMLResponse)
async def plans_page(
    request: Request,
    user: ConsoleUserDep,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
) -> HTMLResponse:
    """Redraw form (communities by street office), the latest runs, and every plan of the area."""
    db = _db(request)
    choices = await run_in_worker(runs.choices, db, user.principal)
    plans = await run_in_worker(service.list_plans, db, user.principal, community=community)
    recent = await run_in_worker(runs.recent_runs, db, user.principal, 3)
    streets: dict[str, dict[str, Any]] = {}
    for c in choices:
        key = c.street_code or ""
        streets.setdefault(key, {"code": c.street_code, "name": c.street_name, "communities": []})
        streets[key]["communities"].append(c)
    names = {c.code: c.name for c in choices}
    context = {
        "streets": list(streets.values()),
        "plans": plans,
        "names": names,
        "community": community,
        "runs": recent,
        "key": uuid.uuid4().hex,
    }
    return render(request, "plans/index.html", context, user=user)


# ------------------------------------------------------------------ redraw runs


async def _execute(db: AsyncEngineDatabase, user: ConsoleUser, run_id: int) -> None:
    try:
        await run_in_worker(runs.execute_run, db, user.principal, run_id)
    except Exception:  # the run records its own failures; this is a failure to record
        log.exception("redraw run %s could not be run", run_id)


@router.post("/console/plans/runs", response_class=HTMLResponse)
async def start_run(
    request: Request,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    key: Annotated[str, Form(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    households_min: Annotated[int, Form(ge=0, le=100_000)] = 300,
    households_max: Annotated[int, Form(ge=1, le=100_000)] = 500,
    communities: Annotated[list[str] | None, Form(max_length=200)] = None,
    street: Annotated[str | None, Form(max_length=12)] = None,
    follow_streets: Annotated[bool, Form()] = False,
    keep_codes: Annotated[bool, Form()] = False,
    oversize: Annotated[Literal["own_grid", "split_units", "refuse"], Form()] = "own_grid",
) -> HTMLResponse:
    """Start a redraw in the background (idempotent on the page's ``key``) and show its progress."""
    db = _db(request)
    req = runs.RunRequest(
        communities=[c for c in (communities or []) if c],
        street=street or None,
        households=(households_min, households_max),
        follow_streets=follow_streets,
        keep_codes=keep_codes,
        oversize=oversize,
    )
    try:
        run, created = await run_in_worker(runs.start_run, db, user.principal, req, key=key)
    except (InvalidInput, Forbidden) as exc:
        return render(
            request, "plans/_run.html", {"run": None, "problem": _problem(exc)}, user=user, status_code=422
        )
    if created:
        task = asyncio.get_running_loop().create_task(_execute(db, user, run.id))
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
    return render(request, "plans/_run.html", {"run": run, "problem": None}, user=user)


@router.get("/console/plans/runs/{run_id}", response_class=HTMLResponse)
async def run_progress(request: Request, user: ConsoleUserDep, run_id: int) -> HTMLResponse:
    """Show a run's progress (the page polls it while it runs), then its drafts."""
    run = await run_in_worker(runs.run_status, _db(request), user.principal, run_id)
    return render(request, "plans/_run.html", {"run": run, "problem": None}, user=user)


@router.post("/console/plans/runs/{run_id}/cancel", response_class=HTMLResponse)
async def cancel_run(request: Request, user: ConsoleUserDep, _csrf: CsrfDep, run_id: int) -> HTMLResponse:
    """Ask a run to stop at its next stage."""
    run = await run_in_worker(runs.cancel_run, _db(request), user.principal, run_id)
    return render(request, "plans/_run.html", {"run": run, "problem": None}, user=user)


# ------------------------------------------------------------------ compare


@router.get("/console/plans/compare", response_class=HTMLResponse)
async def compare_page(
    request: Request,
    user: ConsoleUserDep,
    a: Annotated[int, Query(ge=1, lt=2**63)],
    b: Annotated[int, Query(ge=1, lt=2**63)],
) -> HTMLResponse:
    """Two plans of one community side by side: maps, headline figures, grid pairs, buildings moving."""
    db = _db(request)
    try:
        comparison = await run_in_worker(service.compare_plans, db, user.principal, a, b)
    except InvalidInput as exc:
        return render(
            request, "plans/compare.html", {"cmp": None, "problem": _problem(exc)}, user=user, status_code=422
        )
    return render(request, "plans/compare.html", {"cmp": comparison, "problem": None}, user=user)


# ------------------------------------------------------------------ review and edits


async def _review_context(
    request: Request, user: ConsoleUser, plan_id: int, flag: str = "all", **extra: Any
) -> dict[str, Any]:
    db = _db(request)
    review: PlanReview = await run_in_worker(service.review_plan, db, user.principal, plan_id)
    plan = await run_in_worker(service.list_plans, db, user.principal, community=review.community)
    this = next(p for p in plan if p.id == plan_id)
    others = [p for p in plan if p.id != plan_id]
    rows = review.grids
    if flag == "flagged":
        rows = [g for g in rows if g.flags]
    elif flag != "all":
        rows = [g for g in rows if flag in g.flags]
    owner = this.owner_token_id
    editable = review.status == "draft" and (
        user.principal.role == "admin" or owner is None or owner == user.principal.token_id
    )
    map_data = {
        "plan": review.plan_id,
        "version": review.version,
        "status": review.status,
        "editable": editable,
        "changed_buildings": review.changed_buildings,
        "grids": [{"code": g.code, "households": g.households, "flags": g.flags} for g in review.grids],
    }
    return {
        "map_data": map_data,
        "review": review,
        "plan": this,
        "others": others,
        "rows": rows,
        "flag": flag,
        "filters": TABLE_FILTERS,
        "editable": editable,
        "problem": None,
        "done": None,
        **extra,
    }


@router.get("/console/plans/{plan_id}", response_class=HTMLResponse)
async def review_page(
    request: Request,
    user: ConsoleUserDep,
    plan_id: int,
    flag: Annotated[str, Query(pattern="^(" + "|".join(TABLE_FILTERS) + ")$")] = "all",
) -> HTMLResponse:
    """Review a plan over the active plan: map, table per grid (filter by flag), edit tools, publish."""
    context = await _review_context(request, user, plan_id, flag)
    name = "plans/_review.html" if is_htmx(request) else "plans/review.html"
    return render(request, name, context, user=user)


@router.get("/console/plans/{plan_id}/grids.json")
async def plan_grids(request: Request, user: ConsoleUserDep, plan_id: int) -> JSONResponse:
    """Return the plan's grids as GeoJSON for the map (WGS84)."""
    grids = await run_in_worker(views.plan_grids, _db(request), user.principal, plan_id)
    features = [
        {"type": "Feature", "id": f.id, "geometry": f.geometry, "properties": vars_of(f.properties)}
        for f in grids.features
    ]
    return JSONResponse(
        {"type": "FeatureCollection", "features": features}, headers={"Cache-Control": "no-store"}
    )


def vars_of(props: Any) -> dict[str, Any]:
    """Return a slotted dataclass's fields as a mapping."""
    return {name: getattr(props, name) for name in props.__slots__}


async def _after_change(
    request: Request, user: ConsoleUser, plan_id: int, done: dict[str, Any] | None, exc: WanggeError | None
) -> HTMLResponse:
    context = await _review_context(request, user, plan_id, done=done)
    status = 200
    if exc is not None:
        context["problem"] = _problem(exc)
        status = _status(exc)
    return render(request, "plans/_review.html", context, user=user, status_code=status)


@router.post("/console/plans/{plan_id}/edits", response_class=HTMLResponse)
async def edit_plan(
    request: Request, user: ConsoleUserDep, _csrf: CsrfDep, plan_id: int, body: EditBody
) -> HTMLResponse:
    """Apply one edit (sent as JSON by the map), validated at once; answer the refreshed review."""
    try:
        result = await run_in_worker(
            service.edit_plan, _db(request), user.principal, plan_id, body.to_edit(), version=body.version
        )
    except (Conflict, Forbidden, InvalidInput) as exc:
        return await _after_change(request, user, plan_id, None, exc)
    return await _after_change(request, user, plan_id, {"summary": result.summary, "edit": result.edit}, None)


@router.post("/console/plans/{plan_id}/undo", response_class=HTMLResponse)
async def undo_edit(
    request: Request, user: ConsoleUserDep, _csrf: CsrfDep, plan_id: int, body: VersionBody
) -> HTMLResponse:
    """Undo the latest edit of the draft."""
    try:
        result = await run_in_worker(
            service.undo_edit, _db(request), user.principal, plan_id, version=body.version
        )
    except (Conflict, Forbidden, InvalidInput) as exc:
        return await _after_change(request, user, plan_id, None, exc)
    return await _after_change(request, user, plan_id, {"summary": result.summary, "edit": result.edit}, None)


# ------------------------------------------------------------------ publish and roll back


@router.get("/console/plans/{plan_id}/publish-preview", response_class=HTMLResponse)
async def publish_preview(request: Request, user: ConsoleUserDep, plan_id: int) -> HTMLResponse:
    """Show the confirmation: what publishing (or rolling back to) this plan changes, what blocks it."""
    preview = await run_in_worker(service.publish_preview, _db(request), user.principal, plan_id)
    return render(request, "plans/_publish.html", {"preview": preview, "problem": None}, user=user)


@router.post("/console/plans/{plan_id}/publish", response_class=HTMLResponse)
async def publish_plan(
    request: Request,
    user: ConsoleUserDep,
    _csrf: CsrfDep,
    plan_id: int,
    version: Annotated[int, Form(ge=1, lt=2**31)],
    rollback: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    """Publish the plan confirmed at ``version`` (one transaction); a retired plan only with ``rollback``."""
    db = _db(request)
    try:
        result = await run_in_worker(
            service.publish_plan,
            db,
            user.principal,
            plan_id,
            version=version,
            rollback=rollback,
            origin=request,
        )
    except Conflict as exc:
        preview = await run_in_worker(service.publish_preview, db, user.principal, plan_id)
        return render(
            request,
            "plans/_publish.html",
            {"preview": preview, "problem": _problem(exc)},
            user=user,
            status_code=409,
        )
    map_changed(request)  # committed: this process's grid index re-reads the map
    return render(request, "plans/_published.html", {"result": result}, user=user)
