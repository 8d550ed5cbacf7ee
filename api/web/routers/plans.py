"""Grid plans: redraw, list, show, review, edit and undo, compare, publish and roll back, export.

Each route parses its input, calls ONE use case of :mod:`api.services.planning.service`
in a worker thread (:func:`~api.services.planning.db.run_in_worker`, so the
algorithms never block the event loop) and returns its typed result, which the
response model validates and documents. Scope, ownership and versions are decided
by the service.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.services.planning import service
from api.services.planning.db import AsyncEngineDatabase, run_in_worker
from api.services.planning.results import (
    EditResult,
    PlanComparison,
    PlanDetail,
    PlanReview,
    PublishPreview,
    PublishResult,
    RedrawResult,
)
from api.web.deps import PrincipalDep, map_changed
from api.web.schemas.planning import (
    EditBody,
    EditOut,
    PlanComparisonOut,
    PlanDetailOut,
    PlanListOut,
    PlanReviewOut,
    PublishBody,
    PublishOut,
    PublishPreviewOut,
    RedrawBody,
    RedrawOut,
    VersionBody,
)

router = APIRouter(prefix="/api/v1/plans", tags=["planning"])

#: The media type of a GeoPackage (OGC 12-128r18).
GPKG = "application/geopackage+sqlite3"


async def planning_db(request: Request) -> AsyncEngineDatabase:
    """Return the store as the planning use cases reach it (the app's engines)."""
    return AsyncEngineDatabase(request.app.state.engine, request.app.state.read_engine)


PlanningDb = Annotated[AsyncEngineDatabase, Depends(planning_db)]


@router.post("", status_code=201, response_model=RedrawOut, summary="Redraw a community: create a draft plan")
async def create_plan(body: RedrawBody, db: PlanningDb, principal: PrincipalDep) -> RedrawResult:
    """Draw a draft plan of one community; the calling token owns it."""
    return await run_in_worker(service.redraw, db, principal, body.community, body.to_request())


@router.get("", response_model=PlanListOut, summary="Plans of a community, a district, or the token's area")
async def list_plans(
    db: PlanningDb,
    principal: PrincipalDep,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    status: Annotated[Literal["draft", "active", "retired"] | None, Query()] = None,
) -> PlanListOut:
    """List plans; naming no area lists those of the token's own area."""
    plans = await run_in_worker(
        service.list_plans, db, principal, community=community, district=district, status=status
    )
    return PlanListOut.model_validate({"plans": plans})


@router.get(
    "/{plan_id}",
    response_model=PlanDetailOut,
    summary="A plan: grids (GeoJSON), figures, diff against the active plan, edit history",
)
async def get_plan(plan_id: int, db: PlanningDb, principal: PrincipalDep) -> PlanDetail:
    """Show one plan."""
    return await run_in_worker(service.show_plan, db, principal, plan_id)


@router.get(
    "/{plan_id}/review",
    response_model=PlanReviewOut,
    summary="A plan's review table: per grid households, area, compactness, worker, change, flags",
)
async def review_plan(plan_id: int, db: PlanningDb, principal: PrincipalDep) -> PlanReview:
    """Review a plan grid by grid against the active plan."""
    return await run_in_worker(service.review_plan, db, principal, plan_id)


@router.get(
    "/{plan_id}/compare/{other_id}",
    response_model=PlanComparisonOut,
    summary="Two plans of one community side by side",
)
async def compare_plans(
    plan_id: int, other_id: int, db: PlanningDb, principal: PrincipalDep
) -> PlanComparison:
    """Compare plan ``other_id`` with plan ``plan_id``."""
    return await run_in_worker(service.compare_plans, db, principal, plan_id, other_id)


@router.post(
    "/{plan_id}/edits",
    response_model=EditOut,
    summary="Edit a draft: move buildings, merge or split grids, redraw a boundary",
)
async def edit_plan(plan_id: int, body: EditBody, db: PlanningDb, principal: PrincipalDep) -> EditResult:
    """Apply one edit, validated at once (409 with the reason when refused)."""
    return await run_in_worker(
        service.edit_plan, db, principal, plan_id, body.to_edit(), version=body.version
    )


@router.post("/{plan_id}/undo", response_model=EditOut, summary="Undo the latest edit of a draft")
async def undo_edit(
    plan_id: int, db: PlanningDb, principal: PrincipalDep, body: VersionBody | None = None
) -> EditResult:
    """Undo the latest edit not yet undone."""
    version = body.version if body is not None else None
    return await run_in_worker(service.undo_edit, db, principal, plan_id, version=version)


@router.get(
    "/{plan_id}/publish-preview",
    response_model=PublishPreviewOut,
    summary="What publishing a plan would change (grids, workers, party branches) and what blocks it",
)
async def publish_preview(plan_id: int, db: PlanningDb, principal: PrincipalDep) -> PublishPreview:
    """Preview a publish, for the confirmation."""
    return await run_in_worker(service.publish_preview, db, principal, plan_id)


@router.post(
    "/{plan_id}/publish",
    response_model=PublishOut,
    summary="Make a draft the active plan, or roll back to a retired plan (one transaction)",
)
async def publish_plan(
    plan_id: int,
    db: PlanningDb,
    principal: PrincipalDep,
    request: Request,
    body: PublishBody | None = None,
) -> PublishResult:
    """Publish atomically; the audit entry commits with it."""
    b = body or PublishBody()
    result = await run_in_worker(
        service.publish_plan, db, principal, plan_id, version=b.version, rollback=b.rollback, origin=request
    )
    map_changed(request)  # committed: this process's grid index re-reads the map
    return result


@router.delete("/{plan_id}", status_code=204, summary="Discard a draft")
async def delete_plan(
    plan_id: int,
    db: PlanningDb,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, description="refused with 409 if the plan moved on")] = None,
) -> Response:
    """Delete a draft (its owner, or an admin)."""
    await run_in_worker(service.discard_plan, db, principal, plan_id, version=version)
    return Response(status_code=204)


@router.get(
    "/{plan_id}/export.gpkg",
    response_class=FileResponse,
    responses={200: {"content": {GPKG: {}}, "description": "layers grids, buildings, community (EPSG:4326)"}},
    summary="A plan as a GeoPackage for QGIS",
)
async def export_plan(plan_id: int, db: PlanningDb, principal: PrincipalDep) -> FileResponse:
    """Download a plan as a GeoPackage."""
    folder = Path(tempfile.mkdtemp(prefix="wangge-export-"))
    path = folder / f"plan-{plan_id}.gpkg"
    try:
        await run_in_worker(service.export_plan, db, principal, plan_id, path)
    except BaseException:
        _remove(folder)
        raise
    return FileResponse(path, media_type=GPKG, filename=path.name, background=BackgroundTask(_remove, folder))


def _remove(folder: Path) -> None:
    for p in folder.glob("*"):
        p.unlink(missing_ok=True)
    folder.rmdir()
