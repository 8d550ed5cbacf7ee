"""Request and response models of grid planning (``/api/v1/plans``).

Responses mirror the results of :mod:`api.services.planning.results` (same field
names) and read them by attribute, so a router returns the service's result and
FastAPI validates and documents it once. Plan figures and parameters are
documented by their keys; keys the algorithm adds later pass through. Coordinates
are WGS84 longitude, latitude.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.errors import InvalidInput
from api.services.coords import CRSName
from api.services.planning.edits import Edit, MergeGrids, MoveBuildings, RedrawBoundary, SplitGrid
from api.services.planning.redraw import RedrawRequest

CommunityCode = Field(pattern=r"^\d{12}$", description="12-digit community code")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Open(_Out):
    """A mapping documented by its known keys; other keys pass through."""

    model_config = ConfigDict(from_attributes=True, extra="allow")


# ------------------------------------------------------------------ requests


class RedrawBody(BaseModel):
    """Ask for a draft plan of one community."""

    community: str = CommunityCode
    households: tuple[int, int] | None = Field(
        default=None,
        description="[min, max] households per grid (default [300, 500] when `grids` is not given either)",
    )
    grids: int | None = Field(default=None, ge=1, le=999, description="exact number of grids")
    keep_existing: bool = Field(
        default=False, description="start from the active plan, move as few households as possible"
    )
    seed: int = Field(default=0, ge=0, description="random seed (same seed, same plan)")
    follow_streets: bool = Field(
        default=True, description="draw grid boundaries along streets where possible"
    )
    keep_codes: bool = Field(
        default=True, description="grids that continue an active grid keep its code (off: numbered afresh)"
    )
    oversize: Literal["own_grid", "split_units", "refuse"] = Field(
        default="own_grid",
        description="a building above the maximum becomes its own grid, flagged over_maximum (own_grid); "
        "is split by its units (单元, `wangge import units`) so its units go to grids like buildings, a "
        "building without unit data falling back to own_grid and listed in figures.oversize_not_split "
        "(split_units); or the redraw is refused (refuse)",
    )

    def to_request(self) -> RedrawRequest:
        """Return the service's request (default range 300–500 when neither range nor count is given)."""
        households = self.households
        if households is None and self.grids is None:
            households = (300, 500)
        return RedrawRequest(
            households=households,
            grids=self.grids,
            keep_existing=self.keep_existing,
            seed=self.seed,
            follow_streets=self.follow_streets,
            keep_codes=self.keep_codes,
            oversize=self.oversize,
        )


class EditBody(BaseModel):
    """One edit of a draft.

    * ``{"op": "move", "buildings": [ids], "to": "<grid code>"}``
    * ``{"op": "merge", "grids": ["<keep>", "<absorb>"]}``
    * ``{"op": "split", "grid": "<code>"}`` (balanced halves) or with
      ``"line": {"type": "LineString", "coordinates": [...]}, "crs": "gcj02"``
    * ``{"op": "boundary", "grid": "<code>", "polygon": {"type": "Polygon", ...}, "crs": "wgs84"}``:
      the grid's new boundary as drawn on the map

    Send ``version`` (the plan's version you are looking at): an edit made on an older
    version is refused with 409 instead of being applied to a plan you have not seen.
    """

    op: Literal["move", "merge", "split", "boundary"]
    buildings: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    to: str | None = None
    grids: list[str] | None = Field(default=None, min_length=2, max_length=2)
    grid: str | None = None
    line: dict[str, Any] | None = None
    polygon: dict[str, Any] | None = None
    crs: CRSName | None = None
    seed: int = Field(default=0, ge=0)
    version: int | None = Field(default=None, ge=1, description="the plan version this edit was made on")

    def to_edit(self) -> Edit:
        """Return the typed edit, refusing (422, naming the field) what the op needs but lacks."""
        need = {
            "move": ("buildings", "to"),
            "merge": ("grids",),
            "split": ("grid",),
            "boundary": ("grid", "polygon"),
        }
        for f in need[self.op]:
            if getattr(self, f) is None:
                raise InvalidInput(f"{f} is required for op {self.op!r}", loc=["body", f])
        crs = self.crs.value if self.crs is not None else None
        if (self.line is not None or self.op == "boundary") and crs is None:
            raise InvalidInput(
                "crs is required with a geometry (wgs84, cgcs2000, gcj02 or bd09)", loc=["body", "crs"]
            )
        if self.op == "move":
            assert self.buildings is not None and self.to is not None
            return MoveBuildings(buildings=list(self.buildings), to=self.to)
        if self.op == "merge":
            assert self.grids is not None
            return MergeGrids(keep=self.grids[0], absorb=self.grids[1])
        if self.op == "split":
            assert self.grid is not None
            return SplitGrid(grid=self.grid, line=self.line, crs=crs, seed=self.seed)
        assert self.grid is not None and self.polygon is not None and crs is not None
        return RedrawBoundary(grid=self.grid, polygon=self.polygon, crs=crs)


class VersionBody(BaseModel):
    """The plan version the caller is looking at (optional; checked when given)."""

    version: int | None = Field(default=None, ge=1, description="refused with 409 if the plan moved on")


class PublishBody(VersionBody):
    """Publish a draft, or (``rollback``) publish a retired plan again to go back to it."""

    rollback: bool = Field(default=False, description="publish a retired plan again (roll back to it)")


# ------------------------------------------------------------------ figures and parameters


class HouseholdFigures(_Open):
    """Households per grid."""

    total: int | None = None
    min: int | None = None
    max: int | None = None
    mean: float | None = None
    max_dev: float | None = None
    max_dev_pct: float | None = None
    within_range_share: float | None = Field(default=None, description="share of grids within the range")


class ContiguityFigures(_Open):
    """Whether every grid is in one piece."""

    all_contiguous: bool | None = None
    non_contiguous_grids: int | None = None


class CompactnessFigures(_Open):
    """Polsby–Popper (4πA/P²) and Reock compactness of the grids, mean and minimum."""

    polsby_popper_mean: float | None = None
    polsby_popper_min: float | None = None
    reock_mean: float | None = None
    reock_min: float | None = None


class Problem(_Open):
    """A validation problem of a plan (GAP, OVERLAP, NON_CONTIGUOUS, BUILDING_UNASSIGNED, OUT_OF_RANGE...)."""

    code: str
    message: str
    grids: list[str] = []
    buildings: list[int] = []
    area: float | None = None


class Figures(_Open):
    """The quality figures of a plan (stored with it, refreshed by every edit)."""

    n_grids: int | None = None
    households: HouseholdFigures | int | None = Field(
        default=None, description="per-grid households (a plain total for plans loaded without figures)"
    )
    contiguity: ContiguityFigures | None = None
    compactness: CompactnessFigures | None = None
    street_boundary_share: float | None = Field(
        default=None, description="share of inner boundaries on streets"
    )
    blocks_split: int | None = None
    blocks_total: int | None = None
    households_moved: int | None = Field(default=None, description="against the active plan")
    buildings_moved: int | None = None
    against_plan: int | None = Field(
        default=None, description="the active plan the moves are counted against"
    )
    households_range: list[int] | None = None
    valid: bool | None = Field(default=None, description="no problem other than OUT_OF_RANGE")
    problems: list[Problem] | None = None
    households_per_grid: dict[str, int] | None = None
    notes: list[str] | None = None
    crossing_buildings: int | None = None
    over_maximum: list[str] | None = Field(
        default=None, description="codes of the grids holding one building above the maximum (flagged)"
    )
    households_estimated: int | None = Field(
        default=None, description="households estimated from footprints (the rest counted or registered)"
    )
    buildings_estimated: int | None = Field(default=None, description="buildings whose count is estimated")


class HeadlineFigures(_Open):
    """The figures a plan list shows."""

    n_grids: int | None = None
    households: HouseholdFigures | int | None = None
    valid: bool | None = None
    households_moved: int | None = None
    over_maximum: list[str] | None = Field(
        default=None, description="grids holding one building above the maximum (flagged)"
    )
    households_estimated: int | None = Field(default=None, description="households estimated, not counted")


class PlanParams(_Open):
    """How a plan was made (a redraw's request, or the file it was imported from)."""

    source: str | None = Field(default=None, description="redraw or import")
    households: list[int] | None = None
    grids: int | None = None
    keep_existing: bool | None = None
    seed: int | None = None
    follow_streets: bool | None = None
    keep_codes: bool | None = None
    oversize: str | None = Field(default=None, description="own_grid, split_units or refuse")
    base_plan_id: int | None = Field(default=None, description="the active plan it was drawn against")
    metric_crs: str | None = None
    feasible_grid_counts: list[int] | None = None
    file: str | None = None
    import_run: int | None = None


class EditSummary(_Open):
    """What an edit did."""

    op: str = Field(description="move, merge, split, boundary or undo")
    buildings: list[int] | None = None
    to: str | None = None
    kept: str | None = None
    absorbed: str | None = None
    grid: str | None = None
    new_grid: str | None = None
    mode: str | None = Field(default=None, description="split: balanced or line")
    cells_gained: int | None = None
    cells_released: int | None = None
    buildings_moved: int | None = None
    grids_touched: list[str] | None = None
    undone: int | None = Field(default=None, description="undo: the number of the edit undone")
    undone_op: str | None = None


# ------------------------------------------------------------------ GeoJSON


class MultiPolygonGeometry(_Out):
    """A GeoJSON MultiPolygon (WGS84 ``[lon, lat]``)."""

    type: Literal["MultiPolygon"]
    coordinates: list[list[list[list[float]]]]


class UnitHeldOut(_Out):
    """A unit (单元) of a building split by its units (``oversize: "split_units"``), held by a grid."""

    building_id: int
    building_code: str
    unit: str = Field(description="the unit's label, as the registry names it")
    households: int


class GridProperties(_Out):
    """The properties of a grid feature."""

    code: str = Field(description="15 digits: community code + grid number")
    name: str
    households: int
    buildings: int
    worker_id: int | None
    active: bool
    units: list[UnitHeldOut] = Field(
        default_factory=list,
        description="units of buildings split by their units that this grid holds (households counted here)",
    )


class GridFeature(_Out):
    """A grid as a GeoJSON Feature."""

    type: Literal["Feature"]
    id: str
    geometry: MultiPolygonGeometry
    properties: GridProperties


class GridCollection(_Out):
    """A plan's grids as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[GridFeature]


# ------------------------------------------------------------------ diff


class ChangedGridOut(_Out):
    """A grid continuing an old grid, changed."""

    code: str
    was: str
    households: int
    households_before: int
    households_in: int
    households_out: int


class UnchangedGridOut(_Out):
    """A grid continuing an old grid unchanged."""

    code: str
    was: str


class GridChangesOut(_Out):
    """Grids added, removed, changed and unchanged."""

    added: list[str]
    removed: list[str]
    changed: list[ChangedGridOut]
    unchanged: list[UnchangedGridOut]


class WorkerMoveOut(_Out):
    """A grid worker: the grid held now (``from``) and after (``to``)."""

    worker_id: int
    name: str | None
    from_: str = Field(serialization_alias="from")
    to: str | None = None


class WorkerChangesOut(_Out):
    """What happens to grid workers."""

    kept: list[WorkerMoveOut]
    grid_changed: list[WorkerMoveOut]
    released: list[WorkerMoveOut]
    grids_without_worker: list[str]


class BranchMoveOut(_Out):
    """A grid party branch: its grid now (``from``) and after (``to``)."""

    branch: str | None
    name: str | None
    from_: str = Field(serialization_alias="from")
    to: str | None = None


class BranchChangesOut(_Out):
    """What happens to grid party branches."""

    kept: list[BranchMoveOut]
    grid_changed: list[BranchMoveOut]
    left_without_grid: list[BranchMoveOut]
    new_needed: list[str]


class PlanDiffOut(_Out):
    """A plan against the community's active plan."""

    against: int | None = Field(description="the active plan's id (null: no plan in force)")
    grids: GridChangesOut
    buildings_moved: int
    households_moved: int
    workers: WorkerChangesOut
    party_branches: BranchChangesOut
    open_incidents_moving: int


# ------------------------------------------------------------------ plans


class _PlanHead(_Out):
    id: int
    community: str
    name: str
    status: Literal["draft", "active", "retired"]
    params: PlanParams
    created_by: str | None
    created_at: dt.datetime
    published_at: dt.datetime | None
    retired_at: dt.datetime | None
    version: int = Field(description="raised by every change; send it back with a change")
    owner_token_id: int | None = Field(description="the token that drew the draft (null: command line)")
    updated_at: dt.datetime
    stale: str | None = Field(
        default=None,
        description="a draft drawn before households, units or buildings were imported: why its figures "
        "are out of date (redraw, or edit it to recount); null when current",
    )


class PlanSummaryOut(_PlanHead):
    """A plan in a list."""

    grids: int
    figures: HeadlineFigures


class PlanListOut(_Out):
    """Plans, by community then newest first."""

    plans: list[PlanSummaryOut]


class EditEntryOut(_Out):
    """One edit of a draft's history."""

    seq: int
    op: str
    params: EditSummary
    actor: str | None
    at: dt.datetime
    version: int = Field(description="the plan version this edit produced")
    undone_at: dt.datetime | None
    undone_by: str | None


class PlanDetailOut(_PlanHead):
    """A plan with its grids, figures, diff against the active plan and edit history."""

    figures: Figures
    grids: GridCollection
    diff: PlanDiffOut
    edits: list[EditEntryOut]


class RedrawOut(_Out):
    """A new draft plan."""

    id: int
    community: str
    status: Literal["draft"]
    params: PlanParams
    figures: Figures
    version: int
    owner_token_id: int | None


class EditOut(_Out):
    """A draft after an edit or an undo."""

    plan_id: int
    edit: int = Field(description="the number of the edit made (or undone)")
    summary: EditSummary
    figures: Figures
    grids: GridCollection
    version: int = Field(description="the plan's version now")


# ------------------------------------------------------------------ review and compare


class GridReviewOut(_Out):
    """One row of a plan's review table."""

    code: str
    name: str
    households: int
    buildings: int
    area_m2: float
    polsby_popper: float = Field(description="4πA/P² on the spheroid (1 = circle)")
    pieces: int
    households_estimated: int = Field(description="households estimated from footprints, not counted")
    buildings_estimated: int
    worker_id: int | None
    worker_name: str | None
    worker_status: Literal["keeps", "grid_changed", "none"]
    change: Literal["added", "changed", "unchanged"]
    was: str | None = Field(description="the active grid it continues")
    households_before: int | None
    households_in: int
    households_out: int
    out_of_range: bool
    non_contiguous: bool
    over_maximum: bool = Field(description="one building alone holds more households than the maximum")
    flags: list[Literal["out_of_range", "non_contiguous", "over_maximum", "no_worker"]]


class PlanReviewOut(_Out):
    """The review table of a plan against the active plan."""

    plan_id: int
    community: str
    status: str
    version: int
    households_range: list[int] | None
    against: int | None
    grids: list[GridReviewOut]
    workers_released: list[WorkerMoveOut]
    changed_buildings: list[int] = Field(description="ids of buildings that change grid (to highlight)")
    flagged: dict[str, int] = Field(description="grids per flag")
    valid: bool
    problems: list[Problem]


class PlanSideOut(_Out):
    """One plan of a comparison."""

    id: int
    status: str
    version: int
    name: str
    n_grids: int
    households_range: list[int] | None
    figures: Figures


class GridPairOut(_Out):
    """A grid of plan A and the grid of plan B continuing it."""

    a: str
    b: str
    households_a: int
    households_b: int
    shared_share: float = Field(description="shared area over the smaller grid's area")


class PlanComparisonOut(_Out):
    """Two plans of one community side by side."""

    community: str
    a: PlanSideOut
    b: PlanSideOut
    pairs: list[GridPairOut]
    only_in_a: list[str]
    only_in_b: list[str]
    buildings_moved: int
    households_moved: int
    moved_buildings: list[int]


# ------------------------------------------------------------------ publish


class PublishPreviewOut(_Out):
    """What publishing a plan would change, and what blocks it."""

    plan_id: int
    community: str
    status: str
    version: int
    rollback: bool = Field(description="publishing would roll back to this retired plan")
    publishable: bool
    blockers: list[str]
    diff: PlanDiffOut
    problems: list[Problem]


class BranchWithoutGridOut(_Out):
    """A party branch whose grid has no successor."""

    branch: str
    was: str


class CreatedBranchOut(_Out):
    """A party branch created for a new grid."""

    code: str
    name: str
    grid_id: int


class PublishOut(_Out):
    """What a publish did."""

    plan_id: int
    community: str
    status: Literal["active"]
    version: int
    rollback: bool
    retired_plan_id: int | None
    buildings_reassigned: int
    late_buildings_assigned: int
    grids: int
    grids_without_worker: list[str]
    workers_released: list[WorkerMoveOut]
    party_branches_moved: int
    party_branches_reattached: int
    party_branches_without_grid: list[BranchWithoutGridOut]
    party_branches_created: list[CreatedBranchOut]
    party_groups_regrouped: int
    incidents_moved: int
    changes: PlanDiffOut = Field(description="the diff against the plan it retired, as announced")
