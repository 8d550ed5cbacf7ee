"""Grid plans: redraw a community, inspect figures and diff, edit a draft, publish it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError

from api.auth import audit
from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from api.services.coords import CRSName
from api.services.planning import service
from api.services.planning.edits import apply_edit, load_for_edit, result_grids, store_edit
from api.services.planning.inputs import load_inputs
from api.services.planning.redraw import RedrawRequest, compute_draft
from api.store.sql import plans as q
from api.web.deps import EngineDep, PrincipalDep

router = APIRouter(prefix="/api/v1/plans", tags=["planning"])

Planner = PrincipalDep


class RedrawBody(BaseModel):
    """Ask for a draft plan of one community."""

    community: str = Field(pattern=r"^\d{12}$", description="12-digit community code")
    households: tuple[int, int] | None = Field(
        default=None,
        description="[min, max] households per grid (default [300, 500] when `grids` is not given either)",
    )
    grids: int | None = Field(default=None, ge=1, le=999, description="exact number of grids")
    keep_existing: bool = Field(
        default=False, description="start from the active plan, move as few households as possible"
    )
    seed: int = Field(default=0, ge=0, description="random seed (same seed, same plan)")


class EditBody(BaseModel):
    """One edit of a draft.

    * ``{"op": "move", "buildings": [ids], "to": "<grid code>"}``
    * ``{"op": "merge", "grids": ["<keep>", "<absorb>"]}``
    * ``{"op": "split", "grid": "<code>"}`` (balanced halves) or with
      ``"line": {"type": "LineString", "coordinates": [...]}, "crs": "gcj02"``
    """

    op: Literal["move", "merge", "split"]
    buildings: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    to: str | None = None
    grids: list[str] | None = Field(default=None, min_length=2, max_length=2)
    grid: str | None = None
    line: dict[str, Any] | None = None
    crs: CRSName | None = None
    seed: int = Field(default=0, ge=0)

    def as_edit(self) -> dict[str, Any]:
        need = {"move": ("buildings", "to"), "merge": ("grids",), "split": ("grid",)}[self.op]
        for f in need:
            if getattr(self, f) is None:
                raise InvalidInput(f"{f} is required for op {self.op!r}", loc=["body", f])
        if self.op == "split" and self.line is not None and self.crs is None:
            raise InvalidInput(
                "crs is required with a line (wgs84, cgcs2000, gcj02 or bd09)", loc=["body", "crs"]
            )
        out = self.model_dump(exclude_none=True)
        if self.crs is not None:
            out["crs"] = self.crs.value
        return out


def _check_scope(principal: Principal, community: str) -> None:
    if not principal.in_scope(community):
        raise Forbidden(
            f"community {community} is outside this token's scope", loc=["header", "authorization"]
        )


async def _plan_community(engine: Any, plan_id: int) -> str:
    async with engine.connect() as conn:
        plan = await conn.run_sync(q.plan_row, plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}", loc=["path", "plan_id"])
    return str(plan["community_code"])


@router.post("", status_code=201, summary="Redraw a community: create a draft plan")
async def create_plan(body: RedrawBody, engine: EngineDep, principal: Planner) -> dict[str, Any]:
    _check_scope(principal, body.community)
    households = body.households
    if households is None and body.grids is None:
        households = (300, 500)
    req = RedrawRequest(
        households=households, grids=body.grids, keep_existing=body.keep_existing, seed=body.seed
    )
    req.check()
    async with engine.connect() as conn:
        inputs = await conn.run_sync(load_inputs, body.community)
    draft = await anyio.to_thread.run_sync(compute_draft, inputs, req)
    async with engine.begin() as conn:
        plan_id, figures = await conn.run_sync(service.store_redraw, inputs, draft, principal.actor)
    return {
        "id": plan_id,
        "community": body.community,
        "status": "draft",
        "params": draft.params,
        "figures": figures,
    }


@router.get("", summary="Plans of a community (or of all communities in scope)")
async def list_plans(
    engine: EngineDep,
    principal: PrincipalDep,
    community: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    status: Annotated[Literal["draft", "active", "retired"] | None, Query()] = None,
) -> dict[str, Any]:
    if community is not None:
        _check_scope(principal, community)
    async with engine.connect() as conn:
        rows = await conn.run_sync(q.list_plans, community, status)
    items = [
        {
            "id": r["id"],
            "community": r["community_code"],
            "name": r["name"],
            "status": r["status"],
            "grids": r["grids"],
            "params": r["params"],
            "figures": {
                k: r["figures"].get(k) for k in ("n_grids", "households", "valid", "households_moved")
            }
            if r["figures"]
            else {},
            "created_by": r["created_by"],
            "created_at": r["created_at"].isoformat(),
            "published_at": r["published_at"].isoformat() if r["published_at"] else None,
        }
        for r in rows
        if principal.in_scope(r["community_code"])
    ]
    return {"plans": items}


@router.get("/{plan_id}", summary="A plan: grids (GeoJSON), figures, diff against the active plan")
async def get_plan(plan_id: int, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    _check_scope(principal, await _plan_community(engine, plan_id))
    async with engine.connect() as conn:
        return await conn.run_sync(service.show, plan_id)


@router.post("/{plan_id}/edits", summary="Edit a draft: move buildings, merge or split grids")
async def edit_plan(plan_id: int, body: EditBody, engine: EngineDep, principal: Planner) -> dict[str, Any]:
    _check_scope(principal, await _plan_community(engine, plan_id))
    edit = body.as_edit()
    async with engine.begin() as conn:
        ctx = await conn.run_sync(load_for_edit, plan_id)

        def compute() -> tuple[Any, ...]:
            plan, codes, summary = apply_edit(ctx, edit)
            return (*result_grids(ctx, plan, codes), summary)

        grids, assignment, figures, summary = await anyio.to_thread.run_sync(compute)
        seq = await conn.run_sync(store_edit, ctx, grids, assignment, figures, summary, principal.actor)
        await conn.run_sync(q.update_figures, plan_id, figures)
        figures = await conn.run_sync(service.refresh_moved, plan_id)
        grids_fc = await conn.run_sync(q.grids_geojson, plan_id)
    return {"plan_id": plan_id, "edit": seq, "summary": summary, "figures": figures, "grids": grids_fc}


@router.post("/{plan_id}/publish", summary="Make a draft the active plan (one transaction)")
async def publish_plan(
    plan_id: int, engine: EngineDep, principal: Planner, request: Request
) -> dict[str, Any]:
    _check_scope(principal, await _plan_community(engine, plan_id))
    try:
        async with engine.begin() as conn:
            before = await conn.run_sync(q.plan_row, plan_id)
            out: dict[str, Any] = await conn.run_sync(service.publish, plan_id, principal.actor)
            # the audit entry commits (or rolls back) with the publish itself
            await audit.record(
                conn,
                principal,
                request,
                "plan.publish",
                "plan",
                plan_id,
                before,
                await conn.run_sync(q.plan_row, plan_id),
            )
            return out
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise Unavailable(
            f"publishing plan {plan_id} failed and was rolled back; the active plan is unchanged ({first})",
            loc=["path", "plan_id"],
        ) from exc


@router.delete("/{plan_id}", status_code=204, summary="Discard a draft")
async def delete_plan(plan_id: int, engine: EngineDep, principal: Planner) -> Response:
    _check_scope(principal, await _plan_community(engine, plan_id))
    async with engine.begin() as conn:
        plan = await conn.run_sync(q.plan_row, plan_id, True)
        if plan is None:
            raise NotFound(f"no plan {plan_id}", loc=["path", "plan_id"])
        if plan["status"] != "draft":
            raise Conflict(
                f"plan {plan_id} is {plan['status']}; only drafts can be discarded", loc=["path", "plan_id"]
            )
        await conn.run_sync(q.delete_plan, plan_id)
    return Response(status_code=204)
