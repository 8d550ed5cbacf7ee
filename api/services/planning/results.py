"""What the planning use cases return: typed results shared by the API, the CLI and the console.

Field names are the JSON keys of the API (``from_`` is sent as ``from``). Plan
figures stay a mapping: they are the algorithm's quality figures
(:func:`gis.planning.metrics.plan_metrics` plus validation), stored as they are
in ``plans.figures``; the API documents their keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# ------------------------------------------------------------------ GeoJSON


@dataclass(frozen=True, slots=True)
class UnitHeld:
    """A unit (单元) of a building split by its units, held by a grid."""

    building_id: int
    building_code: str
    unit: str
    households: int


@dataclass(frozen=True, slots=True)
class GridProperties:
    """The properties of a grid feature (``units``: the units of split buildings it holds)."""

    code: str
    name: str
    households: int
    buildings: int
    worker_id: int | None
    active: bool
    units: list[UnitHeld] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GridFeature:
    """A grid as a GeoJSON feature (WGS84 MultiPolygon)."""

    id: str
    geometry: dict[str, Any]
    properties: GridProperties
    type: str = "Feature"


@dataclass(frozen=True, slots=True)
class GridCollection:
    """A plan's grids as a GeoJSON FeatureCollection."""

    features: list[GridFeature]
    type: str = "FeatureCollection"


# ------------------------------------------------------------------ diff


@dataclass(frozen=True, slots=True)
class ChangedGrid:
    """A grid that continues an old grid but changed (households moved, shape or count)."""

    code: str
    was: str
    households: int
    households_before: int
    households_in: int
    households_out: int


@dataclass(frozen=True, slots=True)
class UnchangedGrid:
    """A grid that continues an old grid unchanged."""

    code: str
    was: str


@dataclass(frozen=True, slots=True)
class GridChanges:
    """Grids added, removed, changed and unchanged against the other plan."""

    added: list[str]
    removed: list[str]
    changed: list[ChangedGrid]
    unchanged: list[UnchangedGrid]


@dataclass(frozen=True, slots=True)
class WorkerMove:
    """A grid worker and the grid they hold now (``from_``) and after (``to``; None: released)."""

    worker_id: int
    name: str | None
    from_: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerChanges:
    """What happens to grid workers."""

    kept: list[WorkerMove] = field(default_factory=list)
    grid_changed: list[WorkerMove] = field(default_factory=list)
    released: list[WorkerMove] = field(default_factory=list)
    grids_without_worker: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BranchMove:
    """A grid party branch and its grid now (``from_``) and after (``to``; None: left without grid)."""

    branch: str | None
    name: str | None
    from_: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class BranchChanges:
    """What happens to grid party branches."""

    kept: list[BranchMove] = field(default_factory=list)
    grid_changed: list[BranchMove] = field(default_factory=list)
    left_without_grid: list[BranchMove] = field(default_factory=list)
    new_needed: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """A plan against the community's active plan (``against``: its id; None: no plan in force)."""

    against: int | None
    grids: GridChanges
    buildings_moved: int
    households_moved: int
    workers: WorkerChanges
    party_branches: BranchChanges
    open_incidents_moving: int


# ------------------------------------------------------------------ plans


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """A plan in a list, with its headline figures."""

    id: int
    community: str
    name: str
    status: str
    grids: int
    params: dict[str, Any]
    figures: dict[str, Any]
    created_by: str | None
    created_at: dt.datetime
    published_at: dt.datetime | None
    retired_at: dt.datetime | None
    version: int
    owner_token_id: int | None
    updated_at: dt.datetime
    #: Why a draft's figures are out of date (an import since it was drawn), None when current.
    stale: str | None = None


@dataclass(frozen=True, slots=True)
class EditEntry:
    """One edit in a draft's history (``undone_at`` set once it was undone)."""

    seq: int
    op: str
    params: dict[str, Any]
    actor: str | None
    at: dt.datetime
    version: int
    undone_at: dt.datetime | None
    undone_by: str | None


@dataclass(frozen=True, slots=True)
class PlanDetail:
    """A plan with its grids, figures, diff against the active plan and edit history."""

    id: int
    community: str
    name: str
    status: str
    params: dict[str, Any]
    figures: dict[str, Any]
    created_by: str | None
    created_at: dt.datetime
    published_at: dt.datetime | None
    retired_at: dt.datetime | None
    version: int
    owner_token_id: int | None
    updated_at: dt.datetime
    stale: str | None
    grids: GridCollection
    diff: PlanDiff
    edits: list[EditEntry]


@dataclass(frozen=True, slots=True)
class RedrawResult:
    """A draft drawn for one community."""

    id: int
    community: str
    status: str
    params: dict[str, Any]
    figures: dict[str, Any]
    version: int
    owner_token_id: int | None


@dataclass(frozen=True, slots=True)
class RedrawOutcome:
    """One community of a redraw of several: its draft, or why it has none.

    ``status`` is ``"drafted"``, ``"failed"`` (``error``, ``error_type`` and ``causes`` say
    why) or ``"cancelled"``.
    """

    community: str
    status: str
    result: RedrawResult | None = None
    error: str | None = None
    error_type: str | None = None
    causes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EditResult:
    """A draft after one edit (or undo): the edit's number, what it did, figures, grids, version."""

    plan_id: int
    edit: int
    summary: dict[str, Any]
    figures: dict[str, Any]
    grids: GridCollection
    version: int


# ------------------------------------------------------------------ review


@dataclass(frozen=True, slots=True)
class GridReview:
    """One row of the review table of a plan.

    ``change`` is ``"added"``, ``"changed"`` or ``"unchanged"`` against the active plan (``was``:
    the active grid it continues); ``worker_status`` is ``"keeps"`` (the same worker on the same
    grid), ``"grid_changed"`` (the worker follows to a changed grid) or ``"none"`` (the grid
    has no worker after publishing).
    """

    code: str
    name: str
    households: int
    buildings: int
    area_m2: float
    polsby_popper: float
    pieces: int
    households_estimated: int
    buildings_estimated: int
    worker_id: int | None
    worker_name: str | None
    worker_status: str
    change: str
    was: str | None
    households_before: int | None
    households_in: int
    households_out: int
    out_of_range: bool
    non_contiguous: bool
    over_maximum: bool
    flags: list[str]


@dataclass(frozen=True, slots=True)
class PlanReview:
    """The review table of a plan against the active plan, with what to highlight on the map."""

    plan_id: int
    community: str
    status: str
    version: int
    households_range: list[int] | None
    against: int | None
    grids: list[GridReview]
    workers_released: list[WorkerMove]
    changed_buildings: list[int]
    flagged: dict[str, int]
    valid: bool
    problems: list[dict[str, Any]]


# ------------------------------------------------------------------ compare


@dataclass(frozen=True, slots=True)
class PlanSide:
    """One plan of a comparison, with its headline figures."""

    id: int
    status: str
    version: int
    name: str
    n_grids: int
    households_range: list[int] | None
    figures: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GridPair:
    """A grid of plan A and the grid of plan B that continues it (by largest shared area)."""

    a: str
    b: str
    households_a: int
    households_b: int
    shared_share: float


@dataclass(frozen=True, slots=True)
class PlanComparison:
    """Two plans of one community side by side."""

    community: str
    a: PlanSide
    b: PlanSide
    pairs: list[GridPair]
    only_in_a: list[str]
    only_in_b: list[str]
    buildings_moved: int
    households_moved: int
    moved_buildings: list[int]


# ------------------------------------------------------------------ publish


@dataclass(frozen=True, slots=True)
class PublishPreview:
    """What publishing a plan would change, and whether it may be published now."""

    plan_id: int
    community: str
    status: str
    version: int
    rollback: bool
    publishable: bool
    blockers: list[str]
    diff: PlanDiff
    problems: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class BranchWithoutGrid:
    """A party branch whose grid has no successor (``was``: that grid's code)."""

    branch: str
    was: str


@dataclass(frozen=True, slots=True)
class CreatedBranchOut:
    """A party branch created for a new grid."""

    code: str
    name: str
    grid_id: int


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What a publish did (``changes``: the diff announced before it, against the plan it retired)."""

    plan_id: int
    community: str
    status: str
    version: int
    rollback: bool
    retired_plan_id: int | None
    buildings_reassigned: int
    late_buildings_assigned: int
    grids: int
    grids_without_worker: list[str]
    workers_released: list[WorkerMove]
    party_branches_moved: int
    party_branches_reattached: int
    party_branches_without_grid: list[BranchWithoutGrid]
    party_branches_created: list[CreatedBranchOut]
    party_groups_regrouped: int
    incidents_moved: int
    changes: PlanDiff


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A plan written to a GeoPackage: the file and the features per layer."""

    plan_id: int
    path: str
    layers: dict[str, int]
