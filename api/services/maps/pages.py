"""The data of each map page, for the caller's area: coverage, heatmap, visits, people, party, plan.

Each use case checks the filters (:func:`api.services.maps.filters.resolve`),
runs its independent queries at once (each on its own pooled connection) and
returns a typed result; ``.page()`` gives the dictionary that ``maps.pages``
draws and embeds (``{"boundaries", "bounds", <layers>, "notes", "meta"}``). The
API routers and ``wangge map`` call the same functions; nothing here renders.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth import policy
from api.auth.principal import Principal
from api.errors import NotFound
from api.services.incidents.limits import SQL_OPEN, SQL_OVERDUE
from api.services.maps.filters import SHANGHAI, PageFilters, Resolved, Window, resolve
from api.store.sql import maps as q
from api.store.sql.maps import (
    PARTY_GRID_COLUMNS,
    AreaTotals,
    Heat,
    PageArea,
    PartyTables,
    PlanComparison,
    PlanInfo,
    Table,
    VisitGaps,
)

#: Most buildings listed on a page (must-visit first); the grid colours still count every one.
GAP_CAP = {"coverage": 1000, "visits": 6000}
#: How each figure is counted (embedded in every page's meta block).
DEFINITIONS = {
    "population": "incidents with since <= created_at < until AND duplicate_of IS NULL",
    "open": SQL_OPEN,
    "overdue": SQL_OVERDUE,
    "satisfaction": "count(ratings WHERE good) / count(ratings) of those cases",
    "grid": "incidents.grid_id (cases outside the active grids count in meta.metrics only)",
    "visit_coverage": "buildings (buildings.grid_id) with a visit in (asof - days, asof] / buildings",
}

T = TypeVar("T")


async def _run(engine: AsyncEngine, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    async with engine.connect() as conn:
        return await fn(conn, *args)


async def _resolve(engine: AsyncEngine, principal: Principal, f: PageFilters) -> Resolved:
    async with engine.connect() as conn:
        return await resolve(conn, principal, f)


def _local(t: dt.datetime) -> str:
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _window_note(w: Window) -> str:
    return f"事项时间 Cases created: {_local(w.since)} – {_local(w.until)} (UTC+8)"


def _visit_note(w: Window) -> str:
    return f"走访 Visits: {w.days} 天内 days up to {_local(w.asof)}"


def _filters(w: Window | None) -> dict[str, Any]:
    if w is None:
        return {
            "since": None,
            "until": None,
            "asof": None,
            "days": 30,
            "item": None,
            "category": None,
            "role": None,
        }
    return {
        "since": w.since.isoformat(),
        "until": w.until.isoformat(),
        "asof": w.asof.isoformat(),
        "days": w.days,
        "item": w.item,
        "category": w.category,
        "role": w.role,
    }


def _page(
    name: str,
    common: PageCommon,
    layers: dict[str, Any],
    totals: dict[str, Any],
    **meta: Any,
) -> dict[str, Any]:
    a = common.area
    return {
        "boundaries": common.boundaries.page(),
        "bounds": a.bounds,
        **layers,
        "notes": common.notes,
        "meta": {
            "page": name,
            "area": {"community": a.community, "district": a.district, "label": a.label},
            "filters": _filters(common.window),
            "definitions": DEFINITIONS,
            **meta,
            "totals": totals,
        },
    }


@dataclass(frozen=True)
class PageCommon:
    """What every page has: its area, window (None for a plan), base layer and notes."""

    area: PageArea
    window: Window | None
    boundaries: Table
    notes: list[str]


def grid_totals(grids: Table) -> dict[str, Any]:
    """Sum a grid statistics table (``q.GRID_COLUMNS``) and count its grids."""
    keys = ("households", "buildings", "visited", "incidents", "open", "overdue", "rated", "good")
    idx = {k: grids.columns.index(k) for k in keys}
    totals: dict[str, Any] = {k: sum(r[i] or 0 for r in grids.rows) for k, i in idx.items()}
    totals["grids"] = len(grids.rows)
    return totals


@dataclass(frozen=True)
class CoverageMap:
    """Grids with every measure, incident heat, the worst visit gaps and the people on duty."""

    common: PageCommon
    grids: Table
    heat: Heat
    gaps: VisitGaps
    people: Table
    metrics: AreaTotals
    measure: str

    def totals(self) -> dict[str, Any]:
        """Sum the grids; count the cases in the heat, the buildings not visited, the people shown."""
        return {
            **grid_totals(self.grids),
            "heat": self.heat.total,
            "gaps": self.gaps.total,
            "people": len(self.people.rows),
        }

    def page(self) -> dict[str, Any]:
        """Return the data ``maps.pages.coverage_page`` draws."""
        m = self.metrics
        metrics = {
            "incidents": m.incidents,
            "open": m.open,
            "overdue": m.overdue,
            "ratings": m.ratings,
            "good": m.good,
            "satisfaction": m.satisfaction,
        }
        layers = {
            "grids": self.grids.page(),
            "heat": self.heat.page(),
            "gaps": self.gaps.page(),
            "people": self.people.page(),
        }
        return _page("coverage", self.common, layers, self.totals(), measure=self.measure, metrics=metrics)


@dataclass(frozen=True)
class HeatmapMap:
    """Heat frames over the window (month/day/hour steps) and the grid outlines."""

    common: PageCommon
    grids: Table
    heat: Heat

    def page(self) -> dict[str, Any]:
        """Return the data ``maps.pages.heatmap_page`` draws."""
        totals = {"incidents": self.heat.total, "frames": len(self.heat.frames)}
        return _page("heatmap", self.common, {"grids": self.grids.page(), "heat": self.heat.page()}, totals)


@dataclass(frozen=True)
class VisitsMap:
    """Grid visit coverage and the buildings not visited (must-visit first)."""

    common: PageCommon
    grids: Table
    gaps: VisitGaps

    def page(self) -> dict[str, Any]:
        """Return the data ``maps.pages.visits_page`` draws."""
        g = self.gaps
        totals = {**grid_totals(self.grids), "gaps": g.total, "gaps_must_visit": g.total_must_visit}
        return _page("visits", self.common, {"grids": self.grids.page(), "gaps": g.page()}, totals)


@dataclass(frozen=True)
class PeopleMap:
    """Everyone with a position (or one role), over the grid outlines."""

    common: PageCommon
    grids: Table
    people: Table

    @property
    def on_duty(self) -> int:
        """How many of the people shown are on duty."""
        i = self.people.columns.index("on_duty")
        return sum(1 for r in self.people.rows if r[i])

    def page(self) -> dict[str, Any]:
        """Return the data ``maps.pages.people_page`` draws."""
        totals = {"people": len(self.people.rows), "on_duty": self.on_duty}
        return _page(
            "people", self.common, {"grids": self.grids.page(), "people": self.people.page()}, totals
        )


@dataclass(frozen=True)
class PartyMap:
    """Committees, grid branches (with group coverage of buildings) and building groups."""

    common: PageCommon
    party: PartyTables

    def totals(self) -> dict[str, Any]:
        """Grids, grids without a branch, groups, buildings and buildings covered by a group."""
        feats = [dict(zip(PARTY_GRID_COLUMNS, r, strict=True)) for r in self.party.grids.rows]
        return {
            "grids": len(feats),
            "without_branch": sum(1 for g in feats if not g["branch"]),
            "groups": len(self.party.groups.rows),
            "buildings": sum(g["buildings"] for g in feats),
            "covered": sum(g["covered"] for g in feats),
        }

    def page(self) -> dict[str, Any]:
        """Return the data ``maps.pages.party_page`` draws."""
        p = self.party
        layers = {"grids": p.grids.page(), "committees": p.committees.page(), "groups": p.groups.page()}
        return _page("party", self.common, layers, self.totals())


@dataclass(frozen=True)
class PlanMap:
    """A plan's grids over the active grids of its community, and the buildings that move."""

    common: PageCommon
    plan: PlanInfo
    comparison: PlanComparison

    def page(self) -> dict[str, Any]:
        """Return the data ``maps.pages.plan_page`` draws."""
        c = self.comparison
        totals = {
            "draft_grids": len(c.draft.rows),
            "active_grids": len(c.active.rows),
            "moved": len(c.moved.rows),
        }
        layers = {"draft": c.draft.page(), "active": c.active.page(), "moved": c.moved.page()}
        info = {"id": self.plan.id, "name": self.plan.name, "status": self.plan.status}
        return _page("plan", self.common, layers, totals, plan=info)


async def coverage(engine: AsyncEngine, principal: Principal, f: PageFilters, measure: str) -> CoverageMap:
    """Gather the coverage page: grids by ``measure``, heat, visit gaps, people on duty (caller's area).

    Parameters
    ----------
    engine
        The engine (the queries run at once, each on a pooled connection).
    principal
        The caller: an area left out means the token's area.
    f
        The page filters.
    measure
        The measure the grids are coloured by (``maps.pages.MEASURES``).

    Raises
    ------
    InvalidInput, Forbidden, NotFound
        As :func:`api.services.maps.filters.resolve`.
    """
    r = await _resolve(engine, principal, f)
    a, w = r.area, r.window
    bounds, grids, heat, gaps, people, metrics = await asyncio.gather(
        _run(engine, q.boundaries, a),
        _run(engine, q.grid_stats, a, w.since, w.until, w.asof, w.days),
        _run(engine, q.heat, a, w.since, w.until, w.item, w.category, False),
        _run(engine, q.visit_gaps, a, w.asof, w.days, GAP_CAP["coverage"]),
        _run(engine, q.people, a, w.role, True),
        _run(engine, q.area_totals, a, w.since, w.until),
    )
    notes = [*r.notes, _window_note(w), _visit_note(w), "人员 People: 在岗 on duty only"]
    if gaps.total > len(gaps.table.rows):
        notes.append(
            f"未走访楼栋 Buildings not visited: {gaps.total}, "
            f"显示 showing {len(gaps.table.rows)} (必访户优先 must-visit first)"
        )
    return CoverageMap(PageCommon(a, w, bounds, notes), grids, heat, gaps, people, metrics, measure)


async def heatmap(engine: AsyncEngine, principal: Principal, f: PageFilters) -> HeatmapMap:
    """Gather the heatmap page: incident heat per month/day/hour and the grid outlines (caller's area)."""
    r = await _resolve(engine, principal, f)
    a, w = r.area, r.window
    bounds, grids, heat = await asyncio.gather(
        _run(engine, q.boundaries, a),
        _run(engine, q.grid_outlines, a),
        _run(engine, q.heat, a, w.since, w.until, w.item, w.category, True),
    )
    notes = [*r.notes, _window_note(w)]
    if w.item or w.category:
        notes.append(f"事项 Item: {w.item or '-'}  类别 Category: {w.category or '-'}")
    return HeatmapMap(PageCommon(a, w, bounds, notes), grids, heat)


async def visits(engine: AsyncEngine, principal: Principal, f: PageFilters) -> VisitsMap:
    """Gather the visits page: grid visit coverage and the buildings not visited (caller's area)."""
    r = await _resolve(engine, principal, f)
    a, w = r.area, r.window
    bounds, grids, gaps = await asyncio.gather(
        _run(engine, q.boundaries, a),
        _run(engine, q.grid_stats, a, w.since, w.until, w.asof, w.days),
        _run(engine, q.visit_gaps, a, w.asof, w.days, GAP_CAP["visits"]),
    )
    notes = [
        *r.notes,
        _visit_note(w),
        f"未走访楼栋 Buildings not visited: {gaps.total} "
        f"(必访户 with must-visit households: {gaps.total_must_visit})",
    ]
    if gaps.total > len(gaps.table.rows):
        notes.append(f"显示 showing {len(gaps.table.rows)}, 必访户优先 must-visit first")
    return VisitsMap(PageCommon(a, w, bounds, notes), grids, gaps)


async def people(engine: AsyncEngine, principal: Principal, f: PageFilters) -> PeopleMap:
    """Gather the people page: everyone with a position (or one role) in the caller's area."""
    r = await _resolve(engine, principal, f)
    a, w = r.area, r.window
    bounds, grids, people_ = await asyncio.gather(
        _run(engine, q.boundaries, a),
        _run(engine, q.grid_outlines, a),
        _run(engine, q.people, a, w.role, False),
    )
    page = PeopleMap(PageCommon(a, w, bounds, list(r.notes)), grids, people_)
    page.common.notes.append(
        f"有位置人员 People with a position: {len(people_.rows)} (在岗 on duty {page.on_duty})"
    )
    return page


async def party(engine: AsyncEngine, principal: Principal, f: PageFilters) -> PartyMap:
    """Gather the party page: committee → branch → group coverage of the caller's area."""
    r = await _resolve(engine, principal, f)
    bounds, tables = await asyncio.gather(_run(engine, q.boundaries, r.area), _run(engine, q.party, r.area))
    branch = PARTY_GRID_COLUMNS.index("branch")
    no_branch = sum(1 for row in tables.grids.rows if not row[branch])
    notes = [*r.notes, f"网格 Grids: {len(tables.grids.rows)}, 无党支部 without a branch: {no_branch}"]
    return PartyMap(PageCommon(r.area, r.window, bounds, notes), tables)


async def _plan(conn: AsyncConnection, principal: Principal, plan_id: int) -> PlanMap:
    info = await q.plan_info(conn, plan_id)
    rel = None if info is None else policy.Relation.of(community_code=info.community_code)
    policy.require_related(principal, rel, f"plan with id {plan_id}", ["path", "plan_id"])
    assert info is not None
    area = await q.resolve_area(conn, info.community_code, None)
    if area is None:  # pragma: no cover - a plan's community is a foreign key
        raise NotFound(f"no plan with id {plan_id}", loc=["path", "plan_id"])
    bounds = await q.boundaries(conn, area)
    comparison = await q.plan_comparison(conn, plan_id, info.community_code)
    notes = [
        f"范围 Area: {area.label}",
        f"草案 Plan {plan_id} «{info.name}» ({info.status})",
        f"调整楼栋 Buildings moved: {len(comparison.moved.rows)}",
    ]
    cols = comparison.draft.columns
    over = [r[0] for r in comparison.draft.rows if r[cols.index("over_maximum")]]
    if over:
        notes.append(f"超上限网格 Grids over maximum (one building above the maximum): {', '.join(over)}")
    estimated = sum(int(r[cols.index("households_estimated")]) for r in comparison.draft.rows)
    if estimated:
        notes.append(f"估算户数 Households estimated from footprints: {estimated:,}")
    return PlanMap(PageCommon(area, None, bounds, notes), info, comparison)


async def plan(engine: AsyncEngine, principal: Principal, plan_id: int) -> PlanMap:
    """Compare a plan's grids with the active grids of its community: the buildings that change grid.

    Raises
    ------
    NotFound
        No such plan, or one outside the caller's area (the same answer).
    """
    async with engine.connect() as conn:
        return await _plan(conn, principal, plan_id)
