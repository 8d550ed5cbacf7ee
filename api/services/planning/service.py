"""The planning use cases, once, for the API, the CLI and the console.

Every function takes a :class:`~api.services.planning.db.Database` (an engine for the CLI,
the server's async engine from a worker thread for the API and the console), the caller's
:class:`~api.auth.principal.Principal` and typed inputs, decides scope and ownership
(:mod:`api.services.planning.access`), and returns a typed result
(:mod:`api.services.planning.results`). The CLI acts as the operator
(:func:`~api.services.planning.access.operator`) and names itself with ``actor``.

============================  ===============================================================
use case                      function
============================  ===============================================================
redraw one community          :func:`redraw` (progress, cancel)
redraw several                :func:`redraw_many` (communities, a street office, a district)
list / show plans             :func:`list_plans`, :func:`show_plan`
review table                  :func:`review_plan`
edit a draft / undo           :func:`edit_plan` (:data:`~api.services.planning.edits.Edit`),
                              :func:`undo_edit`
compare two plans             :func:`compare_plans`
publish / roll back           :func:`publish_preview`, :func:`publish_plan` (``rollback``)
discard a draft               :func:`discard_plan`
export GeoPackage             :func:`export_plan`
imports                       :mod:`api.services.planning.importing`
============================  ===============================================================
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from starlette.requests import HTTPConnection

from api.auth import policy
from api.auth.principal import Principal
from api.errors import Conflict, InvalidInput, Unavailable, WanggeError
from api.services.planning import access
from api.services.planning.compare import compare_in
from api.services.planning.db import Database
from api.services.planning.diff import plan_diff, refresh_moved
from api.services.planning.edits import Edit, EditContext, apply_edit, result_grids
from api.services.planning.export import export_in
from api.services.planning.inputs import CommunityInputs, load_inputs
from api.services.planning.jobs import CancelToken, ProgressFn, step
from api.services.planning.publish import preview_in, publish_in
from api.services.planning.redraw import (
    Draft,
    RedrawRequest,
    compute_draft,
    compute_isolated,
    save_grids,
    store_redraw,
)
from api.services.planning.results import (
    EditEntry,
    EditResult,
    ExportResult,
    GridCollection,
    GridFeature,
    GridProperties,
    PlanComparison,
    PlanDetail,
    PlanReview,
    PlanSummary,
    PublishPreview,
    PublishResult,
    RedrawOutcome,
    RedrawResult,
    UnitHeld,
)
from api.services.planning.review import review_in
from api.services.planning.splitting import merged_assignment
from api.services.planning.stale import stale_message
from api.store.sql.plans import community as qc
from api.store.sql.plans import drafts as qd
from api.store.sql.plans import edits as qe
from api.store.sql.plans.rows import PlanRow

log = logging.getLogger(__name__)

PLAN_LOC = ("path", "plan_id")
VERSION_LOC = ("body", "version")
#: Figures a plan list shows.
HEADLINE = ("n_grids", "households", "valid", "households_moved", "over_maximum", "households_estimated")


# ------------------------------------------------------------------ redraw


def redraw(
    db: Database,
    principal: Principal,
    community: str,
    request: RedrawRequest,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    actor: str | None = None,
) -> RedrawResult:
    """Draw a draft plan of one community; the caller's token owns it.

    Progress stages: ``loading``, ``units``, ``partition``, ``grids``, ``figures``,
    ``storing`` (each 1 of 1). A cancel before ``storing`` stores nothing.

    Raises
    ------
    Forbidden
        The community is outside the caller's area.
    NotFound
        No such community.
    InvalidInput
        A bad request, a community without buildings;
        :class:`~api.services.planning.redraw.Infeasible` when no plan meets it (causes named).
    Cancelled
        The caller cancelled.
    """
    request.check()
    policy.area_for(principal, community, loc=("body",))
    what = f"the redraw of {community}"
    with db.read() as s:
        inputs = s.run(load_inputs, community)
    step(progress, cancel, "loading", 1, 1, what)
    draft = compute_draft(inputs, request, progress=progress, cancel=cancel)
    with db.transaction() as tx:
        result = tx.run(_store, principal, inputs, draft, actor)
        if cancel is not None:
            cancel.check(what)  # still inside the transaction: nothing is stored
    step(progress, None, "storing", 1, 1)
    return result


def _store(
    conn: Connection, principal: Principal, inputs: CommunityInputs, draft: Draft, actor: str | None
) -> RedrawResult:
    return store_redraw(
        conn,
        inputs,
        draft,
        actor=access.actor_of(principal, actor),
        owner_token_id=access.owner_token(principal),
    )


def _targets(
    conn: Connection,
    principal: Principal,
    communities: list[str] | None,
    street: str | None,
    district: str | None,
) -> list[str]:
    """Return the communities a redraw of several covers, each inside the caller's area."""
    if communities is not None:
        for c in communities:
            policy.area_for(principal, c, loc=("body", "communities"))
        known = set(qc.community_codes(conn, codes=communities))
        missing = [c for c in communities if c not in known]
        if missing:
            raise InvalidInput(f"no community with code(s) {missing[:10]}", loc=["body", "communities"])
        return sorted(set(communities))
    area = policy.area_for(principal, None, district, loc=("body",))
    codes = qc.community_codes(conn, street=street, district=area.district, community=area.community)
    if street is not None and not codes:
        raise InvalidInput(
            f"no community in your area belongs to street office {street}", loc=["body", "street"]
        )
    return codes


def redraw_many(
    db: Database,
    principal: Principal,
    request: RedrawRequest,
    *,
    communities: list[str] | None = None,
    street: str | None = None,
    district: str | None = None,
    jobs: int = 1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    actor: str | None = None,
) -> list[RedrawOutcome]:
    """Draw a draft for each of several communities: those named, a street office's, a district's.

    With nothing named, every community of the caller's area. Each draft is stored
    in its own transaction as soon as it is computed, so a failure or a cancel keeps
    the drafts already made; every community gets an outcome (``drafted``,
    ``failed`` with the reason, or ``cancelled``). ``jobs > 1`` computes in that many
    processes. Progress stages: ``loading``, ``redrawing``, ``storing`` (i of n).

    Raises
    ------
    Forbidden
        A named community or district outside the caller's area.
    InvalidInput
        A bad request or unknown community.
    """
    request.check()
    with db.read() as s:
        codes = s.run(_targets, principal, communities, street, district)
    outcomes: dict[str, RedrawOutcome] = {}
    inputs: list[CommunityInputs] = []
    with db.read() as s:
        for i, code in enumerate(codes):
            if cancel is not None and cancel.cancelled:
                break
            try:
                inputs.append(s.run(load_inputs, code))
            except WanggeError as exc:
                outcomes[code] = _failed(code, exc)
            if progress is not None:
                progress("loading", i + 1, len(codes))

    def done(inp: CommunityInputs, draft: Draft | WanggeError, i: int) -> None:
        if isinstance(draft, WanggeError):
            outcomes[inp.code] = _failed(inp.code, draft)
        else:
            with db.transaction() as tx:
                res = tx.run(_store, principal, inp, draft, actor)
            outcomes[inp.code] = RedrawOutcome(inp.code, "drafted", result=res)
        if progress is not None:
            progress("redrawing", i + 1, len(inputs))
            progress("storing", i + 1, len(inputs))

    if len(inputs) > 1 and jobs > 1:
        pool = ProcessPoolExecutor(max_workers=jobs)
        try:
            futures = [pool.submit(compute_isolated, x, request) for x in inputs]
            for i, (inp, fut) in enumerate(zip(inputs, futures, strict=True)):
                if cancel is not None and cancel.cancelled:
                    break
                done(inp, fut.result(), i)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for i, inp in enumerate(inputs):
            if cancel is not None and cancel.cancelled:
                break
            done(inp, compute_isolated(inp, request), i)
    return [outcomes.get(c) or RedrawOutcome(c, "cancelled", error=_reason(cancel)) for c in codes]


def _failed(code: str, exc: WanggeError) -> RedrawOutcome:
    causes = [json.loads(json.dumps(c, default=str)) for c in exc.extra.get("causes", [])]
    return RedrawOutcome(code, "failed", error=exc.msg, error_type=exc.error_type, causes=causes)


def _reason(cancel: CancelToken | None) -> str:
    return cancel.reason if cancel is not None else "cancelled"


# ------------------------------------------------------------------ read


def _summary(plan: PlanRow, grids: int) -> PlanSummary:
    return PlanSummary(
        id=plan.id,
        community=plan.community_code,
        name=plan.name,
        status=plan.status,
        grids=grids,
        params=plan.params,
        figures={k: plan.figures.get(k) for k in HEADLINE} if plan.figures else {},
        created_by=plan.created_by,
        created_at=plan.created_at,
        published_at=plan.published_at,
        retired_at=plan.retired_at,
        version=plan.version,
        owner_token_id=plan.owner_token_id,
        updated_at=plan.updated_at,
        stale=stale_message(plan.figures or {}) if plan.status == "draft" else None,
    )


def list_plans(
    db: Database,
    principal: Principal,
    *,
    community: str | None = None,
    district: str | None = None,
    status: str | None = None,
) -> list[PlanSummary]:
    """List plans of a community or district, or (naming neither) of the caller's whole area.

    Raises
    ------
    Forbidden
        A named community or district outside the caller's area.
    """
    area = policy.area_for(principal, community, district, loc=("query",))
    with db.read() as s:
        rows = s.run(
            qd.list_plans, community=area.community, district=area.district, status=status, city=area.city
        )
    return [_summary(r.plan, r.grids) for r in rows]


def grid_collection(conn: Connection, plan_id: int) -> GridCollection:
    """Return a plan's grids as a GeoJSON FeatureCollection (WGS84), with the units each holds."""
    held: dict[str, list[UnitHeld]] = {}
    for u in qd.units_held(conn, plan_id):
        held.setdefault(u.grid_code, []).append(
            UnitHeld(u.building_id, u.building_code, u.label, u.households)
        )
    return GridCollection(
        features=[
            GridFeature(
                id=r.code,
                geometry=json.loads(r.geometry),
                properties=GridProperties(
                    r.code, r.name, r.households, r.buildings, r.worker_id, r.active, held.get(r.code, [])
                ),
            )
            for r in qd.grid_features(conn, plan_id)
        ]
    )


def _show(conn: Connection, principal: Principal, plan_id: int) -> PlanDetail:
    plan = access.visible(principal, qd.plan_row(conn, plan_id), plan_id, PLAN_LOC)
    return PlanDetail(
        id=plan.id,
        community=plan.community_code,
        name=plan.name,
        status=plan.status,
        params=plan.params,
        figures=plan.figures,
        created_by=plan.created_by,
        created_at=plan.created_at,
        published_at=plan.published_at,
        retired_at=plan.retired_at,
        version=plan.version,
        owner_token_id=plan.owner_token_id,
        updated_at=plan.updated_at,
        stale=stale_message(plan.figures or {}) if plan.status == "draft" else None,
        grids=grid_collection(conn, plan_id),
        diff=plan_diff(conn, plan),
        edits=[
            EditEntry(e.seq, e.op, e.params, e.actor, e.at, e.version, e.undone_at, e.undone_by)
            for e in qe.plan_edits(conn, plan_id)
        ],
    )


def show_plan(db: Database, principal: Principal, plan_id: int) -> PlanDetail:
    """Return a plan with its grids (GeoJSON), figures, diff against the active plan and edit history.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area (the same answer).
    """
    with db.read() as s:
        return s.run(_show, principal, plan_id)


def review_plan(db: Database, principal: Principal, plan_id: int) -> PlanReview:
    """Return the per-grid review table of a plan against the active plan (flags, workers, changes).

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    """
    with db.read() as s:
        return s.run(review_in, principal, plan_id)


def compare_plans(db: Database, principal: Principal, plan_a: int, plan_b: int) -> PlanComparison:
    """Compare two plans of one community: grid pairs, grids in one only, buildings that move.

    Raises
    ------
    NotFound
        Either plan missing or outside the caller's area.
    InvalidInput
        Plans of two communities, or one plan with itself.
    """
    with db.read() as s:
        return s.run(compare_in, principal, plan_a, plan_b)


# ------------------------------------------------------------------ edits


def _changeable(
    conn: Connection, principal: Principal, plan_id: int, version: int | None, doing: str
) -> PlanRow:
    """Lock a draft the caller may change at the version it saw (404, 409 not a draft, 403, 409 stale)."""
    plan = access.visible(principal, qd.plan_row(conn, plan_id, lock=True), plan_id, PLAN_LOC)
    access.require_draft(plan, doing, PLAN_LOC)
    access.require_owner(principal, plan, PLAN_LOC)
    access.require_version(plan, version, VERSION_LOC)
    return plan


def _load_for_edit(conn: Connection, principal: Principal, plan_id: int, version: int | None) -> EditContext:
    plan = _changeable(conn, principal, plan_id, version, "edited")
    return EditContext(
        plan=plan,
        inputs=load_inputs(conn, plan.community_code),
        grids=qd.plan_grids(conn, plan_id),
        assignment=merged_assignment(
            qd.plan_assignment(conn, plan_id), qd.plan_unit_assignment(conn, plan_id)
        ),
    )


def _store_edit(
    conn: Connection,
    ctx: EditContext,
    grids: gpd.GeoDataFrame,
    assignment: dict[int, str],
    figures: dict[str, Any],
    summary: dict[str, Any],
    actor: str,
) -> EditResult:
    plan_id = ctx.plan.id
    version = qd.bump_version(conn, plan_id)
    logged = qe.insert_edit(
        conn,
        plan_id,
        op=str(summary["op"]),
        params=summary,
        figures=figures,
        figures_before=ctx.plan.figures,
        actor=actor,
        version=version,
    )
    save_grids(conn, plan_id, ctx.inputs, grids, assignment, code_col="code")
    qd.update_figures(conn, plan_id, figures)
    return EditResult(
        plan_id=plan_id,
        edit=logged.seq,
        summary=summary,
        figures=refresh_moved(conn, plan_id),
        grids=grid_collection(conn, plan_id),
        version=version,
    )


def edit_plan(
    db: Database,
    principal: Principal,
    plan_id: int,
    edit: Edit,
    *,
    version: int | None = None,
    actor: str | None = None,
) -> EditResult:
    """Apply one edit to a draft, validated at once; it can be undone (:func:`undo_edit`).

    The draft is locked for the edit, so concurrent edits queue; with ``version``
    (the version the caller saw) an edit made on an older version is refused.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    Conflict
        Not a draft; :class:`~api.services.planning.access.StaleVersion`;
        :class:`~api.services.planning.edits.EditRefused` (the edit would empty a grid
        or leave it in pieces; the reason names the grids).
    Forbidden
        :class:`~api.services.planning.access.NotOwner`: the draft is another token's.
    InvalidInput
        Unknown grids or buildings, a geometry without its ``crs`` or malformed.
    """
    who = access.actor_of(principal, actor)
    with db.transaction() as tx:
        ctx = tx.run(_load_for_edit, principal, plan_id, version)
        new, codes, summary = apply_edit(ctx, edit)
        grids, assignment, figures = result_grids(ctx, new, codes)
        return tx.run(_store_edit, ctx, grids, assignment, figures, summary, who)


def _undo(
    conn: Connection, principal: Principal, plan_id: int, version: int | None, actor: str
) -> EditResult:
    _changeable(conn, principal, plan_id, version, "edited")
    last = qe.last_live_edit(conn, plan_id)
    if last is None:
        raise Conflict(f"plan {plan_id} has no edit left to undo", loc=list(PLAN_LOC))
    if last.figures_before is None:
        raise Conflict(
            f"edit {last.seq} of plan {plan_id} was made before edits could be undone; redraw instead",
            loc=list(PLAN_LOC),
        )
    qe.restore_before(conn, plan_id, last.id)
    qd.update_figures(conn, plan_id, last.figures_before)
    qe.mark_undone(conn, last.id, actor)
    new_version = qd.bump_version(conn, plan_id)
    return EditResult(
        plan_id=plan_id,
        edit=last.seq,
        summary={"op": "undo", "undone": last.seq, "undone_op": last.op},
        figures=refresh_moved(conn, plan_id),
        grids=grid_collection(conn, plan_id),
        version=new_version,
    )


def undo_edit(
    db: Database,
    principal: Principal,
    plan_id: int,
    *,
    version: int | None = None,
    actor: str | None = None,
) -> EditResult:
    """Undo the latest edit of a draft not yet undone (repeat to step further back).

    The draft's grids, assignments and figures return to what they were before
    that edit; the edit stays in the history, marked undone.

    Raises
    ------
    NotFound, Forbidden, Conflict
        As :func:`edit_plan`; Conflict also when no edit is left to undo.
    """
    with db.transaction() as tx:
        return tx.run(_undo, principal, plan_id, version, access.actor_of(principal, actor))


def _discard(conn: Connection, principal: Principal, plan_id: int, version: int | None) -> None:
    _changeable(conn, principal, plan_id, version, "discarded")
    qd.delete_plan(conn, plan_id)


def discard_plan(db: Database, principal: Principal, plan_id: int, *, version: int | None = None) -> None:
    """Delete a draft with its grids and history.

    Raises
    ------
    NotFound, Forbidden, Conflict
        As :func:`edit_plan` (active and retired plans are never discarded).
    """
    with db.transaction() as tx:
        tx.run(_discard, principal, plan_id, version)


# ------------------------------------------------------------------ publish


def publish_preview(db: Database, principal: Principal, plan_id: int) -> PublishPreview:
    """Return what publishing a plan would change (grids, workers, party branches) and what blocks it.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    """
    with db.read() as s:
        return s.run(preview_in, principal, plan_id)


def publish_plan(
    db: Database,
    principal: Principal,
    plan_id: int,
    *,
    version: int | None = None,
    rollback: bool = False,
    actor: str | None = None,
    origin: HTTPConnection | None = None,
) -> PublishResult:
    """Make a plan the community's active plan, atomically (see :mod:`api.services.planning.publish`).

    A draft is published; ``rollback=True`` publishes a retired plan again (the way back
    to an earlier plan). ``origin`` (the HTTP request, when there is one) goes into the
    audit entry written in the same transaction.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    Conflict
        Not publishable (active, retired without ``rollback``, invalid, drawn against a
        plan no longer active) or a stale ``version``.
    Unavailable
        The store failed mid-publish; everything was rolled back (no database text is
        passed on; it is logged).
    """
    who = access.actor_of(principal, actor)
    try:
        with db.transaction() as tx:
            return tx.run(
                publish_in, principal, plan_id, version=version, rollback=rollback, actor=who, origin=origin
            )
    except DBAPIError as exc:
        log.error("publishing plan %s failed and was rolled back: %s", plan_id, exc)
        raise Unavailable(
            f"publishing plan {plan_id} failed and was rolled back; the active plan is unchanged; "
            "retry shortly",
            loc=list(PLAN_LOC),
        ) from exc


# ------------------------------------------------------------------ export


def export_plan(db: Database, principal: Principal, plan_id: int, path: str | Path) -> ExportResult:
    """Write a plan as a GeoPackage for QGIS (layers grids, buildings, community; EPSG:4326).

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area.
    InvalidInput
        ``path`` does not end in ``.gpkg``.
    """
    with db.read() as s:
        return s.run(export_in, principal, plan_id, path)
