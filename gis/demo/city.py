"""The Ma'anshan demo city: every table of ``api/store/models.py`` as a data frame.

Deterministic: the same seed and reference time (``as_of``) give identical
frames; the geometry depends on the seed alone. The year of history ends at
``as_of``: people on duty then have fresh positions, shifts cover it, cases
are open, due soon or overdue, visits fall due and tasks are on offer.
``communities=N`` keeps the first N communities (by code) of the full city and
everything that belongs to them, with ids renumbered from 1.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon

from gis.demo import catalogue, clock, estates, patterns, shifts, tasks
from gis.demo.buildings import PUBLIC
from gis.demo.clock import BEIJING_OFFSET as BEIJING
from gis.demo.clock import DAY, HOUR, reference_time
from gis.demo.geometry import (
    CITY_CODE,
    N_COMMUNITIES,
    Layout,
    build_layout,
    to_metric,
    to_wgs84,
)
from gis.demo.names import id_numbers, person_names, phones, place_names
from gis.demo.streets import StreetLine, extend_start

ProgressFn = Callable[[str, int, int], None]

N_VOLUNTEERS = 5_300
N_RIDERS = 500
STAFF_PER_DEPARTMENT = 4
MUST_VISIT_SHARE = 0.03
INCIDENTS_PER_HOUSEHOLD_YEAR = 0.06

#: Table order (parents first), as in the schema.
TABLES = (
    "admin_areas",
    "communities",
    "departments",
    "service_items",
    "people",
    "plans",
    "grids",
    "buildings",
    "plan_assignments",
    "residents",
    "party_orgs",
    "party_group_buildings",
    "party_members",
    "streets",
    "incidents",
    "incident_reporters",
    "incident_events",
    "ratings",
    "visits",
    "tasks",
    "task_offers",
    "redemptions",
    "points_ledger",
)
#: Names of the public buildings, by kind: (zh suffix, estate-based name?).
PUBLIC_NAMES = {
    "service_centre": "党群服务中心",
    "market": "菜市场",
    "kindergarten": "幼儿园",
    "school": "学校",
    "shop": "商铺",
}


@dataclass
class DemoCity:
    """One frame per table of ``api/store/models.py``, keyed by table name.

    ``places`` lists the public places cases cluster around (kind, community
    code, WGS84 point, active from/until for construction sites): what a
    simulator needs to file new cases where the history has them.
    """

    seed: int
    reference_time: dt.datetime
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    places: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def as_of(self) -> dt.datetime:
        """The reference time: the end of the generated history ("now" in the demo)."""
        return self.reference_time

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(frame) for name, frame in self.tables.items()}

    def __getitem__(self, name: str) -> pd.DataFrame:
        """Return the frame of table ``name``."""
        return self.tables[name]


def _ts(seconds: np.ndarray) -> pd.Series:
    """Epoch seconds (NaN = missing) → tz-aware UTC timestamps, whole seconds."""
    s = np.asarray(seconds, dtype=float)
    return pd.Series(pd.to_datetime(np.round(s), unit="s", utc=True))


def _epoch(ts: pd.Series) -> np.ndarray:
    """Timestamps → epoch seconds (NaN for missing), whatever the frame's time resolution."""
    return ((ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype=float)


def _points_or_none(points: list[shapely.Point | None]) -> np.ndarray:
    """Metric points (or None) → WGS84 points (or None), in one go."""
    out = np.full(len(points), None, dtype=object)
    have = np.array([p is not None for p in points], dtype=bool)
    if have.any():
        out[have] = to_wgs84(np.array([p for p in points if p is not None], dtype=object))
    return out


def _multi(geoms: np.ndarray) -> np.ndarray:
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        out[i] = g if isinstance(g, MultiPolygon) else MultiPolygon([g])
    return out


def _valid_polygons(geoms: np.ndarray) -> np.ndarray:
    """Polygonal geometries repaired where reprojection left them invalid (slivers dropped)."""
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if not g.is_valid:
            parts = [p for p in shapely.get_parts(shapely.make_valid(g)) if p.geom_type == "Polygon"]
            g = shapely.union_all(parts)
        out[i] = g
    return out


def _gdf(data: dict, geometry: str) -> gpd.GeoDataFrame:
    frame = pd.DataFrame({k: v for k, v in data.items()})
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def _nullable(values: np.ndarray | list) -> pd.arrays.IntegerArray:
    return pd.array(
        [None if (v is None or (isinstance(v, float) and np.isnan(v)) or v < 0) else int(v) for v in values],
        dtype="Int64",
    )


def _alloc(weights: np.ndarray, total: int) -> np.ndarray:
    raw = weights / weights.sum() * total
    out = np.floor(raw).astype(int)
    rest = total - out.sum()
    if rest > 0:
        out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


def generate_city(
    seed: int = 20240601,
    communities: int | None = None,
    progress: ProgressFn | None = None,
    as_of: dt.datetime | None = None,
) -> DemoCity:
    """Generate the Ma'anshan demo city (114 communities, 1,675 grids) deterministically.

    Parameters
    ----------
    seed : int
        Same seed, same city (streets, grids, buildings, people).
    communities : int, optional
        Keep only the first N communities (by code): a small city for trials and tests.
    progress : callable, optional
        ``progress(stage, done, total)`` as the work goes on.
    as_of : datetime, optional
        The reference time, with a UTC offset: the year of history ends here.
        Default :func:`gis.demo.clock.reference_time` of the seed (``wangge demo``
        passes the present).

    Returns
    -------
    DemoCity
    """
    gen = _Generator(seed, communities, progress, as_of)
    return gen.run()


class _Generator:
    def __init__(
        self, seed: int, communities: int | None, progress: ProgressFn | None, as_of: dt.datetime | None
    ) -> None:
        self.seed = int(seed)
        self.limit = communities
        self.progress = progress or (lambda stage, done, total: None)
        self.ref = clock.normalise(as_of) if as_of is not None else reference_time(self.seed)
        self.ref_s = self.ref.timestamp()
        self.t: dict[str, pd.DataFrame] = {}

    def rng(self, *key: int) -> np.random.Generator:
        # the reference time joins the key of every stream that draws history
        return np.random.default_rng([self.seed, *key])

    def hrng(self, *key: int) -> np.random.Generator:
        """Return a random stream for history and the present (seed and reference time)."""
        return np.random.default_rng([self.seed, int(self.ref_s), *key])

    # ------------------------------------------------------------------ driver
    def run(self) -> DemoCity:
        t0 = time.monotonic()
        self.progress("layout", 0, 1)
        layout, admin = build_layout(self.seed, first_communities=self.limit)
        self.layout = layout
        self.progress("layout", 1, 1)
        n_all = len(layout.community_codes)
        n = n_all if self.limit is None else max(1, min(int(self.limit), n_all))
        self.n_comm = n
        self._areas(admin)
        self._catalogue()
        self._buildings()
        stages = (
            self._people,
            self._plans_grids,
            self._residents,
            self._party,
            self._streets,
            self._incidents,
            self._visits,
            self._tasks,
            self._points,
        )
        for k, stage in enumerate(stages):
            self.progress("history", k, len(stages))
            stage()
        self.progress("history", len(stages), len(stages))
        self.elapsed = time.monotonic() - t0
        tables = {name: self.t[name].reset_index(drop=True) for name in TABLES}
        return DemoCity(self.seed, self.ref, tables, self.places_frame())

    # ------------------------------------------------------------------ areas
    def _areas(self, admin: list) -> None:
        lay: Layout = self.layout
        n = self.n_comm
        self.comm_codes = lay.community_codes[:n]
        comm_rng = self.rng(10)
        names = place_names(comm_rng, len(lay.community_codes))
        self.comm_names = [f"{zh}社区" for zh, _ in names][:n]
        comm_en = [f"{en} Community" for _, en in names][:n]
        comm_street_idx = lay.community_street[:n]
        office_names = place_names(self.rng(11), len(lay.street_offices))
        used_offices = sorted(set(comm_street_idx))
        self.comm_metric = lay.community_geoms[:n]
        comm_wgs = to_wgs84(self.comm_metric)
        office_geoms = _valid_polygons(
            to_wgs84(np.array([lay.street_offices[i][2] for i in used_offices], dtype=object))
        )
        rows: dict[str, list[Any]] = {
            "code": [],
            "name": [],
            "name_en": [],
            "level": [],
            "parent_code": [],
            "city_code": [],
            "geom": [],
        }
        for a in admin:
            rows["code"].append(a.code)
            rows["name"].append(a.name)
            rows["name_en"].append(a.name_en)
            rows["level"].append("city" if a.level == "city" else "district")
            rows["parent_code"].append(None if a.level == "city" else CITY_CODE)
            rows["city_code"].append(CITY_CODE)
            rows["geom"].append(a.geom_wgs84)
        self.district_names = {a.code: a.name for a in admin}
        self.office_name = {}
        for k, i in enumerate(used_offices):
            code = lay.street_offices[i][0]
            zh, en = office_names[i]
            self.office_name[i] = f"{zh}街道"
            rows["code"].append(code)
            rows["name"].append(f"{zh}街道")
            rows["name_en"].append(f"{en} Subdistrict")
            rows["level"].append("street")
            rows["parent_code"].append(code[:6])
            rows["city_code"].append(CITY_CODE)
            rows["geom"].append(_multi(np.array([office_geoms[k]], dtype=object))[0])
        self.t["admin_areas"] = _gdf(rows, "geom")
        self.comm_district = lay.community_district[:n]
        self.comm_street_code = [lay.street_offices[i][0] for i in comm_street_idx]
        self.comm_street_idx = comm_street_idx
        self.t["communities"] = _gdf(
            {
                "code": self.comm_codes,
                "name": self.comm_names,
                "name_en": comm_en,
                "district_code": self.comm_district,
                "street_code": self.comm_street_code,
                "city_code": CITY_CODE,
                "geom": _multi(comm_wgs),
            },
            "geom",
        )
        self.comm_index = {c: i for i, c in enumerate(self.comm_codes)}
        # grids of the kept communities
        keep = lay.grid_community < n
        self.grid_global = np.where(keep)[0]
        self.grid_metric = lay.grid_geoms[keep]
        self.grid_comm = lay.grid_community[keep]
        self.grid_codes = [lay.grid_codes[i] for i in self.grid_global]
        self.n_grid = len(self.grid_global)
        self.grid_ids = np.arange(1, self.n_grid + 1)

    def _catalogue(self) -> None:
        self.t["departments"] = catalogue.departments_frame()
        self.t["service_items"] = catalogue.service_items_frame()

    # ------------------------------------------------------------------ buildings
    def _buildings(self) -> None:
        lay = self.layout
        n_grid = self.n_grid
        plan = estates.plan_grids(
            lay.grid_geoms,
            lay.grid_community,
            lay.grid_block,
            lay.grid_oldness,
            lay.community_geoms,
            self._touches_arterial(lay.grid_geoms),
            self.seed,
        )
        kept = lay.grid_geoms[: self.n_grid]
        edges, art_edges = estates.grid_edges(kept, lay.streets)
        placed: list[estates.Placed] = []
        for k in range(n_grid):
            rng = np.random.default_rng([self.seed, 21, k])
            placed.append(
                estates.place_buildings(
                    kept[k],
                    float(lay.grid_angle[k]),
                    plan.programs[k],
                    edges[k],
                    art_edges[k],
                    plan.anchors[k],
                    rng,
                )
            )
            if k % 100 == 0:
                self.progress("buildings", k, n_grid)
        self.progress("buildings", n_grid, n_grid)
        self.grid_estate = plan.estate[:n_grid]
        self.grid_kind = [p.estate for p in plan.programs[:n_grid]]
        self.estate_roads = [r for p in placed for r in p.roads]
        foot: list[np.ndarray] = []
        rows_grid: list[np.ndarray] = []
        kinds: list[str] = []
        floors: list[np.ndarray] = []
        hh: list[np.ndarray] = []
        units: list[np.ndarray] = []
        per_floor: list[np.ndarray] = []
        places: list[tuple[str, int, shapely.Point]] = []
        for k, p in enumerate(placed):
            m = len(p.floors)
            # homes numbered west→east, north→south within the grid; public buildings first
            xy = shapely.get_coordinates(shapely.centroid(p.footprints))
            public = np.array([kd in PUBLIC for kd in p.kinds])
            order = np.lexsort((xy[:, 0], -np.round(xy[:, 1] / 30.0), ~public))
            foot.append(p.footprints[order])
            rows_grid.append(np.full(m, k))
            kinds += [p.kinds[i] for i in order]
            floors.append(p.floors[order])
            hh.append(p.households[order])
            units.append(p.units[order])
            per_floor.append(p.per_floor[order])
            places += [(kind, k, pt) for kind, pt in p.places]
        self.grid_places = places
        b_metric = np.concatenate(foot)
        b_grid = np.concatenate(rows_grid)
        self.b_metric = b_metric
        self.b_grid = b_grid
        self.b_comm = self.grid_comm[b_grid]
        self.b_kind = np.array(kinds)
        self.b_hh = np.concatenate(hh).astype(int)
        self.b_floors = np.concatenate(floors).astype(int)
        self.b_units = np.concatenate(units).astype(int)
        self.b_pf = np.concatenate(per_floor).astype(int)
        self.b_home = self.b_hh > 0
        nb = len(b_metric)
        self.b_ids = np.arange(1, nb + 1)
        self.b_point_metric = shapely.point_on_surface(b_metric)
        self.b_xy = shapely.get_coordinates(self.b_point_metric)
        self.b_old = np.array([self.grid_kind[g] == "walkup" for g in b_grid]) & self.b_home
        # building numbers: homes 1..m per grid; names by kind
        b_no = np.zeros(nb, dtype=int)
        names: list[str] = []
        counters: dict[tuple[int, str], int] = {}
        for i in range(nb):
            g = int(b_grid[i])
            kind = str(self.b_kind[i])
            key = (g, "home" if self.b_home[i] else kind)
            counters[key] = counters.get(key, 0) + 1
            b_no[i] = counters[key]
            estate = self.grid_estate[g]
            c = int(self.grid_comm[g])
            if self.b_home[i]:
                names.append(f"{estate}{b_no[i]}栋")
            elif kind == "service_centre":
                names.append(f"{self.comm_names[c]}{PUBLIC_NAMES[kind]}")
            elif kind == "school":
                names.append(f"{estate[:2]}小学{b_no[i]}号教学楼")
            elif kind == "shop":
                names.append(f"{estate[:2]}商业街{b_no[i]}号")
            else:
                names.append(f"{estate[:2]}{PUBLIC_NAMES[kind]}")
        self.b_no = b_no
        self.b_name = names
        addresses = []
        for g, name in zip(b_grid, names, strict=True):
            c = int(self.grid_comm[g])
            addresses.append(
                f"马鞍山市{self.district_names[self.comm_district[c]]}"
                f"{self.office_name[self.comm_street_idx[c]]}{self.comm_names[c]}{name}"
            )
        self.b_address = addresses
        self.b_wgs = to_wgs84(b_metric)
        self.b_point_wgs = to_wgs84(self.b_point_metric)
        self.grid_hh = np.bincount(b_grid, weights=self.b_hh, minlength=n_grid).astype(int)
        self.grid_nb = np.bincount(b_grid, minlength=n_grid).astype(int)
        self._construction()

    def _touches_arterial(self, grids: np.ndarray) -> np.ndarray:
        lines = np.array([s.geom for s in self.layout.streets if s.kind == "arterial"], dtype=object)
        gi, _li = shapely.STRtree(lines).query(shapely.buffer(grids, 0.5), predicate="intersects")
        out = np.zeros(len(grids), bool)
        out[gi] = True
        return out

    def _construction(self) -> None:
        """Place construction sites: a spot in a large grid clear of its buildings, busy for months."""
        rng = self.rng(25)
        sites = estates.construction_sites(self.grid_metric, self.grid_comm, self.n_comm, self.seed)
        tree = shapely.STRtree(self.b_metric)
        out: list[tuple[int, shapely.Point, float, float]] = []
        for g, _c in sites:
            free = shapely.buffer(self.grid_metric[g], -25.0)
            near = tree.query(free, predicate="intersects")
            if len(near):
                free = shapely.difference(free, shapely.buffer(shapely.union_all(self.b_metric[near]), 25.0))
            if free.is_empty:
                continue
            pt = shapely.point_on_surface(free)
            start = self.ref_s - rng.uniform(30, 420) * DAY
            end = start + rng.uniform(120, 400) * DAY
            out.append((g, pt, start, end))
        self.construction = out

    def places_frame(self) -> pd.DataFrame:
        """Return the public places cases cluster around, in WGS84 (see :class:`DemoCity`)."""
        rows = [
            (kind, self.comm_codes[int(self.grid_comm[g])], self.grid_ids[g], pt, None, None)
            for kind, g, pt in self.grid_places
        ]
        rows += [
            (
                "construction",
                self.comm_codes[int(self.grid_comm[g])],
                self.grid_ids[g],
                pt,
                _ts(np.array([a]))[0],
                _ts(np.array([b]))[0],
            )
            for g, pt, a, b in self.construction
        ]
        frame = pd.DataFrame(
            rows, columns=["kind", "community_code", "grid_id", "geom", "active_from", "active_until"]
        )
        frame["geom"] = to_wgs84(np.array(list(frame["geom"]), dtype=object)) if len(frame) else []
        return gpd.GeoDataFrame(frame, geometry="geom", crs="EPSG:4326")

    # ------------------------------------------------------------------ people
    def _allotment(self, total: int) -> np.ndarray:
        """``total`` people split over the kept communities: by district plan, then by grids."""
        lay = self.layout
        plan = lay.district_plan
        codes = [d for d in plan]
        per_d = dict(zip(codes, _alloc(np.array([plan[d][1] for d in codes], float), total), strict=True))
        n_all = len(lay.community_codes)
        grids = np.bincount(lay.grid_community, minlength=n_all).astype(float)
        out = np.zeros(n_all, dtype=int)
        district = np.array(lay.community_district)
        for d in lay.districts_laid_out:
            idx = np.where(district == d)[0]
            out[idx] = _alloc(grids[idx], int(per_d[d]))
        return out[: self.n_comm]

    def _people(self) -> None:
        n = self.n_comm
        vol = self._allotment(N_VOLUNTEERS)
        rid = self._allotment(N_RIDERS)
        grids_per_comm = np.bincount(self.grid_comm, minlength=n)
        police = np.maximum(1, np.round(grids_per_comm / 5.0).astype(int))
        rng = self.rng(30)
        role: list[str] = []
        comm: list[int] = []
        grid_of: list[int] = []
        for c in range(n):
            role += ["window_worker"] * 2
            comm += [c, c]
            grid_of += [-1, -1]
        for g in range(self.n_grid):
            role.append("grid_worker")
            comm.append(int(self.grid_comm[g]))
            grid_of.append(g)
        for c in range(n):
            gs = np.where(self.grid_comm == c)[0]
            for k in range(police[c]):
                role.append("police")
                comm.append(c)
                grid_of.append(int(gs[(k * 5) % len(gs)]))
        for c in range(n):
            role += ["volunteer"] * int(vol[c])
            comm += [c] * int(vol[c])
            grid_of += [-1] * int(vol[c])
        for c in range(n):
            role += ["rider"] * int(rid[c])
            comm += [c] * int(rid[c])
            grid_of += [-1] * int(rid[c])
        dept: list[str | None] = [None] * len(role)
        for d in catalogue.DEPARTMENTS:
            for _ in range(STAFF_PER_DEPARTMENT):
                role.append("department_staff")
                comm.append(-1)
                grid_of.append(-1)
                dept.append(d[0])
        m = len(role)
        role_a = np.array(role)
        comm_a = np.array(comm)
        grid_a = np.array(grid_of)
        share = {
            "window_worker": 0.3,
            "grid_worker": 0.3,
            "police": 0.6,
            "volunteer": 0.3,
            "rider": 0.1,
            "department_staff": 0.5,
        }
        party = rng.random(m) < np.array([share[r] for r in role])
        # the first window worker of each community is the committee secretary
        party[np.arange(n) * 2] = True
        cap = {
            "window_worker": 5,
            "grid_worker": 3,
            "police": 2,
            "volunteer": 1,
            "rider": 2,
            "department_staff": 3,
        }
        capacity = np.array([cap[r] for r in role])
        vol_skills = [
            "elderly_care",
            "mediation",
            "repair",
            "medical",
            "legal",
            "patrol",
            "cleaning",
            "tutoring",
            "it_help",
            "publicity",
            "fire_safety",
        ]
        skills: list[list[str]] = []
        for r in role:
            if r == "window_worker":
                skills.append(["all_round", "public_service", "social_security"])
            elif r == "grid_worker":
                extra = [vol_skills[int(i)] for i in rng.choice(len(vol_skills), 2, replace=False)]
                skills.append(["all_round", "visit", *sorted(extra)])
            elif r == "police":
                skills.append(["policing", "mediation", "patrol"])
            elif r == "volunteer":
                k = int(rng.integers(1, 4))
                skills.append(
                    sorted(vol_skills[int(i)] for i in rng.choice(len(vol_skills), k, replace=False))
                )
            elif r == "rider":
                skills.append(["delivery", "patrol", "report"])
            else:
                skills.append(["department"])
        names_ = person_names(rng, m)
        ids = np.arange(1, m + 1)
        self.p_role = role_a
        self.p_comm = comm_a
        self.p_grid = grid_a
        self.p_party = party
        self.p_ids = ids
        self.p_names = names_
        self.p_phones = phones(rng, m)
        self.p_dept = dept
        self.p_capacity = capacity
        self.grid_worker = np.where(role_a == "grid_worker")[0]  # index per grid
        self.window_workers = np.where(role_a == "window_worker")[0].reshape(n, 2)
        # homes: volunteers and riders live in a home of their community
        hrng = self.rng(31)
        homes_by_comm = [np.where((self.b_comm == c) & self.b_home)[0] for c in range(n)]
        home = np.full(m, -1)
        for c in range(n):
            sel = np.where(comm_a == c)[0]
            home[sel] = homes_by_comm[c][hrng.integers(0, len(homes_by_comm[c]), len(sel))]
        self.p_home = home
        # the present: rosters, who is on duty now, and where everyone was last seen
        self.roster = shifts.Roster.from_people(role_a, ids, comm_a, self.seed)
        on_duty, shift_end = self.roster.at(self.ref_s)
        self.p_on = on_duty
        self.p_station = on_duty & (role_a == "volunteer") & self._station_now()
        xy, seen = self._positions(on_duty, shift_end)
        self.p_xy = xy
        self.p_seen = seen
        self.t["people"] = _gdf(
            {
                "id": ids,
                "city_code": CITY_CODE,
                "name": names_,
                "phone": self.p_phones,
                "role": role,
                "community_code": [self.comm_codes[c] if c >= 0 else None for c in comm],
                "department_code": dept,
                "skills": skills,
                "party_member": party,
                "on_duty": on_duty,
                "capacity": capacity,
                "shift_end": _ts(shift_end),
                "position": to_wgs84(shapely.points(xy)),
                "position_at": _ts(seen),
            },
            "position",
        )

    def _station_now(self) -> np.ndarray:
        """Volunteers whose duty now is a slot at their community's volunteer station."""
        r = self.roster
        day = int(clock.beijing_day(np.array([self.ref_s]))[0])
        hour = float(clock.beijing_hour(np.array([self.ref_s]))[0])
        out = np.zeros(len(r.role), bool)
        for s, (a, b) in enumerate(shifts.SLOTS):
            if a <= hour < b:
                g = np.maximum(r.group, 1)
                out = (r.role == "volunteer") & (
                    ((r.rank - (day * len(shifts.SLOTS) + s) * shifts.STATION) % g) < shifts.STATION
                )
        return out

    def _positions(self, on_duty: np.ndarray, shift_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Last positions (metric) and when they were reported.

        On duty now: a report from the last few minutes. Window workers are at the
        service centre and station volunteers near it; grid workers, police and
        riders on a street of their grid or community; other volunteers near home.
        Off duty: where their last shift ended, reported then.
        """
        rng = self.hrng(32)
        m = len(self.p_role)
        role = self.p_role
        xy = np.zeros((m, 2))
        centre_b = {
            int(self.grid_comm[g]): i
            for i, (kind, g) in enumerate(zip(self.b_kind, self.b_grid, strict=True))
            if kind == "service_centre"
        }
        centre_xy = np.array([self.b_xy[centre_b[c]] for c in range(self.n_comm)])
        self.comm_centre_xy = centre_xy
        streets = np.array([s.geom for s in self.layout.streets] + list(self.estate_roads), dtype=object)
        tree = shapely.STRtree(streets)
        self.grid_zone = shapely.buffer(self.grid_metric, 3.0, quad_segs=2)
        grid_streets = [tree.query(g, predicate="intersects") for g in self.grid_zone]

        def on_street(g: int) -> np.ndarray:
            cand = grid_streets[g]
            if len(cand):
                # a point on a street along or inside the grid (not anywhere on a long arterial)
                line = shapely.intersection(streets[cand[int(rng.integers(len(cand)))]], self.grid_zone[g])
                if not line.is_empty and line.length > 0:
                    pt = shapely.line_interpolate_point(line, float(rng.random()), normalized=True)
                    return np.asarray(pt.coords[0])
            return self.b_xy[int(rng.choice(np.where(self.b_grid == g)[0]))]

        comm_grids = [np.where(self.grid_comm == c)[0] for c in range(self.n_comm)]
        city_centre = np.asarray(shapely.centroid(self.layout.land[0]).coords[0])
        for i in range(m):
            r = role[i]
            c = int(self.p_comm[i])
            if r == "department_staff":
                xy[i] = city_centre + rng.normal(0, 250, 2)
            elif r == "window_worker":
                xy[i] = centre_xy[c] + rng.normal(0, 4, 2)
            elif r in ("grid_worker", "police"):
                xy[i] = (
                    on_street(int(self.p_grid[i]))
                    if on_duty[i]
                    else self.b_xy[self._home_in_grid(int(self.p_grid[i]), rng)]
                )
            elif r == "rider":
                xy[i] = (
                    on_street(int(comm_grids[c][int(rng.integers(len(comm_grids[c])))]))
                    if on_duty[i]
                    else self.b_xy[self.p_home[i]]
                )
            elif self.p_station[i]:
                xy[i] = centre_xy[c] + rng.normal(0, 120, 2)
            else:
                xy[i] = self.b_xy[self.p_home[i]] + rng.normal(0, 15, 2)
        fresh = self.ref_s - rng.uniform(3.0, 360.0, m)
        old = np.where(np.isfinite(shift_end), shift_end, self.ref_s - shifts.LOOKBACK_DAYS * DAY)
        seen = np.where(on_duty, fresh, np.minimum(old, self.ref_s - 60.0))
        return xy, seen

    def _home_in_grid(self, g: int, rng: np.random.Generator) -> int:
        cand = np.where((self.b_grid == g) & self.b_home)[0]
        return int(cand[int(rng.integers(len(cand)))])

    def _plans_grids(self) -> None:
        n = self.n_comm
        created = self.ref_s - 400 * DAY
        published = created + 7 * DAY
        plan_ids = np.arange(1, n + 1)
        grids_per = np.bincount(self.grid_comm, minlength=n)
        hh_per = np.bincount(self.grid_comm, weights=self.grid_hh, minlength=n).astype(int)
        nb_per = np.bincount(self.grid_comm, weights=self.grid_nb, minlength=n).astype(int)
        self.t["plans"] = pd.DataFrame(
            {
                "id": plan_ids,
                "community_code": self.comm_codes,
                "city_code": CITY_CODE,
                "name": [f"{name}网格划分方案（2023版）" for name in self.comm_names],
                "status": "active",
                "params": [
                    {"households_min": 300, "households_max": 500, "generator": "gis.demo", "seed": self.seed}
                    for _ in range(n)
                ],
                "figures": [
                    {"grids": int(g), "households": int(h), "buildings": int(b)}
                    for g, h, b in zip(grids_per, hh_per, nb_per, strict=True)
                ],
                "created_by": "demo",
                "created_at": _ts(np.full(n, created)),
                "published_at": _ts(np.full(n, published)),
                "retired_at": _ts(np.full(n, np.nan)),
                # drafts' owner and version (migration 0008_plan_versions): loaded plans have none / 1
                "owner_token_id": pd.array([None] * n, dtype="Int64"),
                "version": 1,
                "updated_at": _ts(np.full(n, published)),
            }
        )
        grid_wgs = to_wgs84(self.grid_metric)
        no = [int(code[-3:]) for code in self.grid_codes]
        self.grid_plan = plan_ids[self.grid_comm]
        self.t["grids"] = _gdf(
            {
                "id": self.grid_ids,
                "plan_id": self.grid_plan,
                "code": self.grid_codes,
                "name": [f"{self.comm_names[c]}第{k}网格" for c, k in zip(self.grid_comm, no, strict=True)],
                "community_code": [self.comm_codes[c] for c in self.grid_comm],
                "city_code": CITY_CODE,
                "active": True,
                "worker_id": self.p_ids[self.grid_worker],
                "households": self.grid_hh,
                "buildings": self.grid_nb,
                "geom": _multi(grid_wgs),
            },
            "geom",
        )
        nb = len(self.b_ids)
        codes = []
        counter: dict[int, int] = {}
        for c in self.b_comm:
            counter[int(c)] = counter.get(int(c), 0) + 1
            codes.append(f"{self.comm_codes[c]}B{counter[int(c)]:04d}")
        b = _gdf(
            {
                "id": self.b_ids,
                "code": codes,
                "city_code": CITY_CODE,
                "community_code": [self.comm_codes[c] for c in self.b_comm],
                "grid_id": self.grid_ids[self.b_grid],
                "name": self.b_name,
                "address": self.b_address,
                "households": self.b_hh,
                "floors": self.b_floors,
                "households_estimated": np.zeros(nb, bool),
                "households_source": np.full(nb, "attribute", dtype=object),  # counted, as a registry would
                "kind": self.b_kind,
                "geom": _multi(self.b_wgs),
            },
            "geom",
        )
        b["point"] = gpd.GeoSeries(self.b_point_wgs, crs="EPSG:4326")
        self.t["buildings"] = b
        self.t["plan_assignments"] = pd.DataFrame(
            {
                "plan_id": self.grid_plan[self.b_grid],
                "building_id": self.b_ids,
                "grid_id": self.grid_ids[self.b_grid],
            }
        )

    # ------------------------------------------------------------------ residents
    def _residents(self) -> None:
        rng = self.rng(40)
        k = rng.binomial(self.b_hh, MUST_VISIT_SHARE)
        bi = np.repeat(np.arange(len(self.b_ids)), k)
        m = len(bi)
        floor = rng.integers(1, self.b_floors[bi] + 1)
        unit = rng.integers(1, self.b_units[bi] + 1)
        door = rng.integers(1, self.b_pf[bi] + 1)
        rooms = [f"{u}-{f}{d:02d}" for u, f, d in zip(unit, floor, door, strict=True)]
        primary = rng.choice(4, m, p=[0.45, 0.25, 0.22, 0.08])
        kinds = np.array(["elderly_alone", "disabled", "low_income", "bedridden"])
        flags: list[list[str]] = []
        extra = rng.random((m, 4))
        for i in range(m):
            f = {kinds[primary[i]]}
            if primary[i] == 0 and extra[i, 0] < 0.15:
                f.add("low_income")
            if primary[i] == 3 and extra[i, 1] < 0.6:
                f.add("disabled")
            if primary[i] == 1 and extra[i, 2] < 0.3:
                f.add("low_income")
            flags.append(sorted(f))
        every_of = {"bedridden": 14, "elderly_alone": 30, "disabled": 30, "low_income": 60}
        every = np.array([min(every_of[x] for x in f) for f in flags])
        elderly = np.isin(primary, [0, 3])
        lo = np.where(elderly, 1928, 1950)
        hi = np.where(elderly, 1960, 2003)
        region = [self.comm_district[self.b_comm[b]] for b in bi]
        has_phone = rng.random(m) < np.where(elderly, 0.55, 0.85)
        ph = phones(rng, m)
        self.r_ids = np.arange(1, m + 1)
        self.r_building = bi
        self.r_every = every
        self.r_names = person_names(rng, m)
        self.t["residents"] = pd.DataFrame(
            {
                "id": self.r_ids,
                "city_code": CITY_CODE,
                "building_id": self.b_ids[bi],
                "room": rooms,
                "name": self.r_names,
                "phone": [p if h else None for p, h in zip(ph, has_phone, strict=True)],
                "id_number": id_numbers(rng, region, lo, hi),
                "flags": flags,
                "must_visit": np.ones(m, bool),
                "visit_every_days": every,
            }
        )

    # ------------------------------------------------------------------ party
    def _party(self) -> None:
        rng = self.rng(50)
        n = self.n_comm
        org_rows: dict[str, list] = {
            k: []
            for k in (
                "id",
                "city_code",
                "tier",
                "code",
                "name",
                "parent_id",
                "community_code",
                "grid_id",
                "secretary_id",
            )
        }
        gb_group: list[int] = []
        gb_building: list[int] = []
        members: dict[int, tuple[int, str]] = {}  # person index -> (org id, position)
        vols_party = [
            list(np.where((self.p_role == "volunteer") & self.p_party & (self.p_comm == c))[0])
            for c in range(n)
        ]
        # building groups hold homes (public buildings have no households to organise)
        b_by_grid = [np.where((self.b_grid == g) & self.b_home)[0] for g in range(self.n_grid)]

        def add(
            tier: str,
            code: str,
            name: str,
            parent: int | None,
            c: int,
            grid: int | None,
            secretary: int | None,
        ) -> int:
            oid = len(org_rows["id"]) + 1
            org_rows["id"].append(oid)
            org_rows["city_code"].append(CITY_CODE)
            org_rows["tier"].append(tier)
            org_rows["code"].append(code)
            org_rows["name"].append(name)
            org_rows["parent_id"].append(parent)
            org_rows["community_code"].append(self.comm_codes[c])
            org_rows["grid_id"].append(grid)
            org_rows["secretary_id"].append(None if secretary is None else int(self.p_ids[secretary]))
            if secretary is not None:
                members[secretary] = (oid, "secretary")
            return oid

        for c in range(n):
            sec = int(self.window_workers[c, 0])
            committee = add(
                "committee", f"P{self.comm_codes[c]}", f"中共{self.comm_names[c]}委员会", None, c, None, sec
            )
            other = int(self.window_workers[c, 1])
            if self.p_party[other]:
                members[other] = (committee, "member")
            vols = vols_party[c]
            vpos = 0
            for g in np.where(self.grid_comm == c)[0]:
                worker = int(self.grid_worker[g])
                if self.p_party[worker]:
                    bsec: int | None = worker
                elif vpos < len(vols):
                    bsec = int(vols[vpos])
                    vpos += 1
                else:
                    bsec = None
                code = self.grid_codes[g]
                branch = add(
                    "branch",
                    f"P{code}",
                    f"{self.comm_names[c]}第{int(code[-3:])}网格党支部",
                    committee,
                    c,
                    int(self.grid_ids[g]),
                    bsec,
                )
                bs = b_by_grid[g]
                pos = 0
                gno = 0
                while pos < len(bs):
                    size = int(rng.integers(1, 5))
                    chunk = bs[pos : pos + size]
                    pos += size
                    gno += 1
                    if vpos < len(vols) and rng.random() < 0.8:
                        gsec: int | None = int(vols[vpos])
                        vpos += 1
                    else:
                        gsec = None
                    first, last = self.b_no[chunk[0]], self.b_no[chunk[-1]]
                    label = f"{first}栋" if first == last else f"{first}-{last}栋"
                    gid = add(
                        "group",
                        f"P{code}{gno:02d}",
                        f"{self.grid_estate[g]}{label}党小组",
                        branch,
                        c,
                        None,
                        gsec,
                    )
                    gb_group.extend([gid] * len(chunk))
                    gb_building.extend(self.b_ids[chunk].tolist())
            # remaining party members of the community join the committee or a branch
            branches = [
                i + 1
                for i, (t, cc) in enumerate(zip(org_rows["tier"], org_rows["community_code"], strict=True))
                if t == "branch" and cc == self.comm_codes[c]
            ]
            for p in np.where((self.p_comm == c) & self.p_party)[0]:
                p = int(p)
                if p in members:
                    continue
                if self.p_role[p] == "grid_worker":
                    members[p] = (
                        branches[int(np.searchsorted(np.where(self.grid_comm == c)[0], self.p_grid[p]))],
                        "member",
                    )
                elif self.p_role[p] in ("window_worker", "police"):
                    members[p] = (committee, "member")
                else:
                    members[p] = (branches[int(rng.integers(len(branches)))], "member")
        orgs = pd.DataFrame(org_rows)
        orgs["parent_id"] = _nullable(orgs["parent_id"].fillna(-1).to_numpy())
        orgs["grid_id"] = _nullable(orgs["grid_id"].fillna(-1).to_numpy())
        orgs["secretary_id"] = _nullable(orgs["secretary_id"].fillna(-1).to_numpy())
        self.t["party_orgs"] = orgs
        self.t["party_group_buildings"] = pd.DataFrame({"group_id": gb_group, "building_id": gb_building})
        items = sorted(members.items())
        self.t["party_members"] = pd.DataFrame(
            {
                "org_id": [o for _, (o, _pos) in items],
                "person_id": [int(self.p_ids[p]) for p, _ in items],
                "position": [pos for _, (_o, pos) in items],
            }
        )

    # ------------------------------------------------------------------ streets
    def _streets(self) -> None:
        lay = self.layout
        lines = list(lay.streets) + [StreetLine(extend_start(r), "estate", None) for r in self.estate_roads]
        src = np.array([s.geom for s in lines], dtype=object)
        noded = shapely.get_parts(shapely.union_all(src))
        # one node per place: vertices on a 1 cm grid, so near-coincident ends become one
        noded = shapely.set_precision(noded, 0.01)
        noded = noded[~shapely.is_empty(noded)]
        noded = shapely.get_parts(noded)
        noded = noded[shapely.length(noded) > 0]
        length = shapely.length(noded)
        # drop the ~1 m stubs where lanes and estate roads were extended across the street they meet
        ends = np.concatenate(
            [
                shapely.get_coordinates(shapely.get_point(noded, 0)),
                shapely.get_coordinates(shapely.get_point(noded, -1)),
            ]
        )
        keys = np.round(ends, 3)
        _u, inv, cnt = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        inv = inv.ravel()
        deg = cnt[inv]
        m = len(noded)
        dangling = (deg[:m] == 1) | (deg[m:] == 1)
        noded = noded[~(dangling & (length < 2.0))]
        # the streets of the laid-out districts, each district's network in one piece
        noded = self._district_networks(noded)
        mids = shapely.line_interpolate_point(noded, 0.5, normalized=True)
        tree = shapely.STRtree(src)
        qi, si = tree.query_nearest(mids, max_distance=0.01, all_matches=False)
        origin = np.full(len(noded), -1)
        origin[qi] = si
        kinds = [lines[o].kind if o >= 0 else "secondary" for o in origin]
        names = [lines[o].name if o >= 0 else None for o in origin]
        ends = np.concatenate(
            [
                shapely.get_coordinates(shapely.get_point(noded, 0)),
                shapely.get_coordinates(shapely.get_point(noded, -1)),
            ]
        )
        keys = np.round(ends, 3)
        _u, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel() + 1
        k = len(noded)
        order = np.lexsort((shapely.get_coordinates(mids)[:, 0], -shapely.get_coordinates(mids)[:, 1]))
        self.t["streets"] = _gdf(
            {
                "id": np.arange(1, k + 1),
                "city_code": CITY_CODE,
                "name": [names[i] for i in order],
                "kind": [kinds[i] for i in order],
                "source": inv[:k][order],
                "target": inv[k:][order],
                "length_m": np.round(shapely.length(noded), 2)[order],
                "geom": to_wgs84(noded[order]),
            },
            "geom",
        )

    def _district_networks(self, noded: np.ndarray) -> np.ndarray:
        """Segments within the laid-out districts; per district, its largest connected network.

        A segment belongs to the district its midpoint lies in; the few pieces cut off
        from their district's network (near its boundary) are left out.
        """
        lay = self.layout
        mids = shapely.line_interpolate_point(noded, 0.5, normalized=True)
        which = np.full(len(noded), -1)
        for k, d in enumerate(lay.districts_laid_out):
            zone = lay.district_metric[d]
            shapely.prepare(zone)
            which[(which < 0) & shapely.contains(zone, mids)] = k
        keep = np.zeros(len(noded), bool)
        ends = np.round(
            np.concatenate(
                [
                    shapely.get_coordinates(shapely.get_point(noded, 0)),
                    shapely.get_coordinates(shapely.get_point(noded, -1)),
                ]
            ),
            3,
        )
        _u, node = np.unique(ends, axis=0, return_inverse=True)
        node = node.ravel()
        n = len(noded)
        for k in range(len(lay.districts_laid_out)):
            idx = np.where(which == k)[0]
            g = nx.Graph()
            g.add_edges_from(zip(node[idx], node[idx + n], strict=True))
            if g.number_of_nodes() == 0:
                continue
            largest = max(nx.connected_components(g), key=len)
            keep[idx[np.isin(node[idx], list(largest))]] = True
        return noded[keep]

    # ------------------------------------------------------------------ incidents
    def _incident_places(self) -> dict[str, list[list[tuple[np.ndarray, int, float, float]]]]:
        """Per place kind, per community: (point xy, grid, active from, active until)."""
        out: dict[str, list[list[tuple[np.ndarray, int, float, float]]]] = {
            k: [[] for _ in range(self.n_comm)] for k in ("market", "school", "shops", "construction")
        }
        for kind, g, pt in self.grid_places:
            if kind in out:
                out[kind][int(self.grid_comm[g])].append((np.asarray(pt.coords[0]), g, -np.inf, np.inf))
        for g, pt, a, b in self.construction:
            out["construction"][int(self.grid_comm[g])].append((np.asarray(pt.coords[0]), g, a, b))
        return out

    def _incidents(self) -> None:
        rng = self.hrng(60)
        items = self.t["service_items"]
        weights = catalogue.item_weights()
        codes = items["code"].to_numpy()
        w = np.array([weights[c] for c in codes])
        limit_h = items["time_limit_hours"].to_numpy().astype(float)
        spot = items["on_the_spot"].to_numpy()
        dept_of = items["department_code"].to_numpy()
        is_ps = (items["category"] == "public_service").to_numpy()
        dept_limit = dict(
            zip(self.t["departments"]["code"], self.t["departments"]["time_limit_hours"], strict=True)
        )
        hh_comm = np.bincount(self.b_comm, weights=self.b_hh, minlength=self.n_comm)
        per_comm = rng.poisson(hh_comm * INCIDENTS_PER_HOUSEHOLD_YEAR)
        m = int(per_comm.sum())
        comm = np.repeat(np.arange(self.n_comm), per_comm)
        item = rng.choice(len(codes), m, p=w / w.sum())
        ps = is_ps[item]
        # channel
        u = rng.random(m)
        chan = np.where(
            ps,
            np.select([u < 0.84, u < 0.94], ["window", "mini_program"], "phone"),
            np.select([u < 0.46, u < 0.7, u < 0.93], ["mini_program", "phone", "patrol"], "window"),
        )
        # place: drawn from the item's place mix among the places the community has
        start_year = self.ref_s - 365 * DAY
        places = self._incident_places()
        place = np.full(m, "home", dtype=object)
        pu = rng.random(m)
        active = {
            k: np.array(
                [
                    any(a < self.ref_s and b > start_year for _xy, _g, a, b in places[k][c])
                    for c in range(self.n_comm)
                ]
            )
            for k in places
        }
        for it in np.unique(item):
            pat = patterns.pattern(str(codes[it]))
            names = list(pat.places)
            for c in range(self.n_comm):
                sel = np.where((item == it) & (comm == c))[0]
                if len(sel) == 0:
                    continue
                w = np.array(
                    [pat.places[k] if k in ("home", "old_home") or active[k][c] else 0.0 for k in names]
                )
                if w.sum() <= 0:
                    continue
                cum = np.cumsum(w / w.sum())
                pick = np.minimum(np.searchsorted(cum, pu[sel], side="right"), len(names) - 1)
                place[sel] = np.array(names, dtype=object)[pick]
        # location: a home (old walk-up estates for "old_home"), or around a public place
        homes = self.b_home
        # some buildings are "problem buildings" that report again and again (old pipes, a
        # quarrelsome neighbour): a heavy-tailed propensity per building, fixed by the seed
        propensity = self.rng(61).lognormal(0.0, 1.2, len(self.b_hh))
        bw_all = self.b_hh.astype(float) * propensity
        b_sel = np.zeros(m, dtype=int)
        b_by_comm = [np.where((self.b_comm == c) & homes)[0] for c in range(self.n_comm)]
        old_by_comm = [np.where((self.b_comm == c) & self.b_old)[0] for c in range(self.n_comm)]
        for c in range(self.n_comm):
            for kind, pool in (
                ("home", b_by_comm[c]),
                ("old_home", old_by_comm[c] if len(old_by_comm[c]) else b_by_comm[c]),
            ):
                sel = np.where((comm == c) & (place == kind))[0]
                if len(sel):
                    p = bw_all[pool] / bw_all[pool].sum()
                    b_sel[sel] = rng.choice(pool, len(sel), p=p)
        xy = self.b_xy[b_sel] + rng.normal(0, 8, (m, 2))
        grid = self.b_grid[b_sel].copy()
        near_place = np.isin(place, ["market", "school", "shops", "construction"])
        window_from = np.full(m, start_year)
        window_to = np.full(m, self.ref_s - 60.0)
        spread = {"market": 12.0, "school": 10.0, "shops": 15.0, "construction": 18.0}
        for i in np.where(near_place)[0]:
            c = int(comm[i])
            opts = [o for o in places[str(place[i])][c] if o[2] < self.ref_s and o[3] > start_year]
            pxy, g, a, b = opts[int(rng.integers(len(opts)))]
            xy[i] = pxy + rng.normal(0, spread[str(place[i])], 2)
            grid[i] = g
            window_from[i] = max(start_year, a)
            window_to[i] = min(self.ref_s - 60.0, b)
            # the nearest home names the place in the address
            b_sel[i] = int(self._nearest_building(pxy))
        # a report stays inside the grid it belongs to
        outside = ~shapely.within(shapely.points(xy), self.grid_metric[grid])
        for i in np.where(outside)[0]:
            xy[i] = (
                self.b_xy[b_sel[i]]
                if not near_place[i]
                else np.asarray(
                    shapely.point_on_surface(
                        shapely.intersection(
                            self.grid_metric[grid[i]], shapely.buffer(shapely.Point(xy[i]), 40.0)
                        )
                    ).coords[0]
                )
            )
        bad = ~shapely.within(shapely.points(xy), self.grid_metric[grid])
        xy[bad] = shapely.get_coordinates(shapely.point_on_surface(self.grid_metric[grid[bad]]))
        comm = self.grid_comm[grid]
        # --- created_at: by item, channel and place over the year before the reference time
        days = np.arange(
            int(clock.beijing_day(np.array([start_year]))[0]),
            int(clock.beijing_day(np.array([self.ref_s]))[0]) + 1,
        )
        storms = clock.rainstorms(days, self.seed)
        rain_by_day = {int(d): float(s) for d, s in zip(days, storms, strict=True) if s > 0}
        self.rain_days = rain_by_day
        created = np.empty(m)
        key = pd.DataFrame({"item": item, "chan": chan, "place": place, "a": window_from, "b": window_to})
        for (it, ch, pl, a, b), idx in key.groupby(["item", "chan", "place", "a", "b"]).indices.items():
            hours = patterns.HOURS["school"] if pl == "school" else None
            created[idx] = patterns.draw_times(
                str(codes[it]), str(ch), len(idx), float(a), float(b), rain_by_day, rng, hours
            )
        created = np.minimum(np.round(created), self.ref_s - 60)
        market = near_place
        order = np.argsort(created, kind="stable")
        item, chan, xy, grid, comm, created, b_sel, ps, market = (
            cast(np.ndarray, a[order]) for a in (item, chan, xy, grid, comm, created, b_sel, ps, market)
        )
        lim = limit_h[item] * HOUR
        due = created + lim
        # first-asked responsibility: an on-the-spot item taken at the window is accepted at
        # intake by the window worker; ~95% are finished there and then
        window_spot = spot[item] & (chan == "window")
        quick = window_spot & (rng.random(m) < 0.95)
        dept = dept_of[item]
        esc_p = np.where(ps & ~spot[item], 0.6, 0.0)
        esc_p = np.where((~ps) & pd.notna(dept), 0.3, esc_p)
        escalate = (~quick) & pd.notna(dept) & (rng.random(m) < esc_p)
        stuck = (~quick) & (rng.random(m) < 0.006)
        nan = np.full(m, np.nan)
        # timeline (NaN = does not happen); the app's actions and statuses
        t_assign = np.where(window_spot, created, created + rng.uniform(2, 30, m) * 60)
        t_accept = np.where(window_spot, nan, t_assign + rng.uniform(5, 120, m) * 60)
        acc_base = np.where(window_spot, created, t_accept)
        t_start = np.where(quick, nan, acc_base + rng.uniform(0.5, 24, m) * HOUR)
        t_start = np.where(quick, nan, np.maximum(np.minimum(t_start, created + 0.3 * lim), acc_base + 60))
        dlim = np.array([dept_limit.get(d, 72) if isinstance(d, str) else 72 for d in dept]) * HOUR
        t_esc = np.where(escalate, t_start + rng.uniform(2, 48, m) * HOUR, nan)
        t_dacc = np.where(escalate, t_esc + rng.uniform(1, 12, m) * HOUR, nan)
        d_due = t_esc + dlim
        late = rng.random(m) < 0.008
        # most cases are handled early; a third near the end of their time limit (late ones past it)
        near_limit = rng.random(m) < 0.35
        in_time = np.where(near_limit, rng.beta(5, 1.6, m) * 0.97, rng.beta(2, 4, m) * 0.95)
        frac = np.where(late, rng.uniform(1.05, 2.0, m), in_time)
        t_res_normal = np.maximum(t_start + 600, created + frac * lim)
        # an on-the-spot item not finished at the window is finished on a later day
        next_day = created - (created + BEIJING) % DAY + DAY + rng.uniform(1, 8, m) * HOUR
        t_res_normal = np.where(window_spot, np.maximum(t_res_normal, next_day), t_res_normal)
        t_res_esc = np.maximum(
            t_dacc + 600, t_esc + np.where(late, rng.uniform(1.05, 2.0, m), rng.beta(2, 3, m) * 0.95) * dlim
        )
        t_resolved = np.where(
            quick, created + rng.uniform(4, 40, m) * 60, np.where(escalate, t_res_esc, t_res_normal)
        )
        t_verified = np.where(quick, nan, t_resolved + rng.uniform(2, 48, m) * HOUR)
        t_closed = np.where(quick, t_resolved + 60, t_verified + rng.uniform(0.2, 24, m) * HOUR)
        for arr in (t_resolved, t_verified, t_closed):  # stuck cases stay open
            arr[stuck] = np.nan
        # (action, status reached, time)
        steps = [
            ("intake", "submitted", created),
            ("assign", np.where(window_spot, "accepted", "assigned"), t_assign),
            ("accept", "accepted", t_accept),
            ("start", "in_progress", t_start),
            ("escalate", "escalated", t_esc),
            ("department_accept", "department_accepted", t_dacc),
            ("resolve", "resolved", t_resolved),
            ("verify", "verified", t_verified),
            ("close", "closed", t_closed),
        ]
        ref = self.ref_s
        happened = [np.isfinite(t) & (t <= ref) for *_x, t in steps]
        status = np.full(m, "submitted", dtype=object)
        for (_a, to, _t), h in zip(steps, happened, strict=True):
            status[h] = to[h] if isinstance(to, np.ndarray) else to

        def at(t: np.ndarray, h: np.ndarray) -> np.ndarray:
            return np.where(h, t, np.nan)

        ids = np.arange(1, m + 1)
        g_worker = self.grid_worker[grid]
        win = self.window_workers[comm, rng.integers(0, 2, m)]
        assignee_idx = np.where(chan == "window", win, g_worker)
        assignee = np.where(happened[1], self.p_ids[assignee_idx], -1)
        dept_col = np.where(happened[4], dept, None)
        # on the spot (the app's rule): an immediate item resolved the Beijing day it came in
        same_day = np.floor((t_resolved + BEIJING) / DAY) == np.floor((created + BEIJING) / DAY)
        on_the_spot = spot[item] & happened[6] & same_day
        t_accepted = np.where(window_spot, created, t_accept)
        accepted_ok = np.where(window_spot, happened[1], happened[2])
        loc = to_wgs84(shapely.points(xy))
        reporter = person_names(rng, m)
        rphone = phones(rng, m)
        patrol = chan == "patrol"
        reporter = [self.p_names[g] if p else r for g, p, r in zip(g_worker, patrol, reporter, strict=True)]
        rphone = [self.p_phones[g] if p else r for g, p, r in zip(g_worker, patrol, rphone, strict=True)]
        # numpy's stubs do not accept None as an (object) fill value, which numpy does
        input_crs = np.select([chan == "mini_program", chan == "patrol"], ["gcj02", "wgs84"], None)  # type: ignore[call-overload]
        desc_items = items["description"].to_numpy()
        names_items = items["name"].to_numpy()
        description = [
            f"{names_items[i]}：{desc_items[i]}（{self.b_name[b]}附近）"
            if mk
            else f"{names_items[i]}：{desc_items[i]}（{self.b_name[b]}）"
            for i, b, mk in zip(item, b_sel, market, strict=True)
        ]
        none_int = pd.array([None] * m, dtype="Int64")
        self.t["incidents"] = _gdf(
            {
                "id": ids,
                "city_code": CITY_CODE,
                "item_code": codes[item],
                "description": description,
                "channel": chan,
                "reporter_name": reporter,
                "reporter_phone": rphone,
                "reporter_token_id": none_int,
                "location": loc,
                "input_crs": input_crs,
                "address": [
                    self.b_address[b] + ("附近" if mk else "") for b, mk in zip(b_sel, market, strict=True)
                ],
                "located": np.ones(m, bool),
                "grid_id": self.grid_ids[grid],
                "community_code": [self.comm_codes[c] for c in comm],
                "assignee_id": _nullable(assignee),
                "department_code": dept_col,
                "status": status.astype(str),
                "idempotency_key": [
                    f"mp-{self.seed}-{i:07d}" if c == "mini_program" else None
                    for i, c in zip(ids, chan, strict=True)
                ],
                "duplicate_of": none_int.copy(),
                "created_at": _ts(created),
                "due_at": _ts(due),
                "accepted_at": _ts(at(t_accepted, accepted_ok)),
                "resolved_at": _ts(at(t_resolved, happened[6])),
                "escalated_at": _ts(at(t_esc, happened[4])),
                "department_due_at": _ts(at(d_due, happened[4])),
                "closed_at": _ts(at(t_closed, happened[8])),
                "on_the_spot": on_the_spot,
                "request_hash": [None] * m,
                "likely_duplicate_of": none_int.copy(),
                "public": [None] * m,  # no staff decision: the item's publication rule
            },
            "location",
        )
        self.t["incident_reporters"] = pd.DataFrame(
            {
                "incident_id": ids,
                "source_incident_id": ids,
                "city_code": self.t["incidents"]["city_code"].to_numpy(),
                "reporter_name": reporter,
                "reporter_phone": rphone,
                "reporter_token_id": none_int.copy(),
                "added_at": _ts(created),
            }
        )
        # --- ratings: ~70% of resolved cases, ~98% good
        rate = happened[6] & (rng.random(m) < 0.7)
        r_at = np.where(quick, t_resolved + 90, t_resolved + rng.uniform(1, 72, m) * HOUR)
        rate &= r_at <= ref
        ri = np.where(rate)[0]
        good = rng.random(len(ri)) < 0.98
        score = np.where(good, np.where(rng.random(len(ri)) < 0.82, 5, 4), rng.integers(1, 3, len(ri)))
        good_c = ["办事效率高，态度好", "一次就办好了", "网格员很负责", "上门服务很贴心", None, None, None]
        bad_c = ["处理太慢", "跑了两趟", "问题没有彻底解决"]
        comments = [
            good_c[int(rng.integers(len(good_c)))] if g else bad_c[int(rng.integers(len(bad_c)))]
            for g in good
        ]
        self.t["ratings"] = pd.DataFrame(
            {
                "incident_id": ids[ri],
                "city_code": CITY_CODE,
                "good": good,
                "score": score,
                "comment": comments,
                "at": _ts(r_at[ri]),
            }
        )
        # --- events: one per step taken (and one 'rated' per rating), in time order
        ev_inc: list[np.ndarray] = []
        ev_at: list[np.ndarray] = []
        ev_step: list[np.ndarray] = []
        ev_from: list[np.ndarray] = []
        ev_to: list[np.ndarray] = []
        prev = np.full(m, None, dtype=object)
        status_at_rating = np.full(m, None, dtype=object)
        for k, ((_a, to, t), h) in enumerate(zip(steps, happened, strict=True)):
            idx = np.where(h)[0]
            to_arr = to if isinstance(to, np.ndarray) else np.full(m, to, dtype=object)
            ev_inc.append(idx)
            ev_at.append(t[idx])
            ev_step.append(np.full(len(idx), k))
            ev_from.append(prev[idx].copy())
            ev_to.append(to_arr[idx].astype(object))
            prev[idx] = to_arr[idx]
            before = h & rate & (t <= r_at)
            status_at_rating[before] = to_arr[before]
        ev_inc.append(ri)
        ev_at.append(r_at[ri])
        ev_step.append(np.full(len(ri), len(steps)))
        ev_from.append(status_at_rating[ri])
        ev_to.append(status_at_rating[ri])
        inc = np.concatenate(ev_inc)
        ev_t = np.concatenate(ev_at)
        step = np.concatenate(ev_step)
        frm = np.concatenate(ev_from)
        to_s = np.concatenate(ev_to)
        o = np.lexsort((step, ev_t, inc))
        inc, ev_t, step, frm, to_s = inc[o], ev_t[o], step[o], frm[o], to_s[o]
        actions = np.array([s[0] for s in steps] + ["rated"])
        act = actions[step]
        ch = chan[inc]
        actor = np.array([f"person:{self.p_ids[a]}" for a in assignee_idx[inc]], dtype=object)
        actor[(step == 0) & np.isin(ch, ["mini_program", "phone"])] = "resident"
        actor[(act == "assign") & ~window_spot[inc]] = "system"
        dmask = act == "department_accept"
        actor[dmask] = [f"department:{d}" for d in dept[inc[dmask]]]
        actor[act == "verify"] = [f"person:{self.p_ids[w]}" for w in win[inc[act == "verify"]]]
        actor[act == "close"] = "system"
        actor[act == "rated"] = "resident"
        score_of = dict(zip(ri.tolist(), zip(good.tolist(), score.tolist(), strict=True), strict=True))
        detail: list[dict] = []
        for a, i_, c_ in zip(act, inc, ch, strict=True):
            if a == "intake":
                detail.append({"channel": str(c_), "item": str(codes[item[i_]])})
            elif a == "assign":
                detail.append(
                    {
                        "grid": self.grid_codes[grid[i_]],
                        "community": self.comm_codes[comm[i_]],
                        "assignee": int(self.p_ids[assignee_idx[i_]]),
                    }
                )
            elif a == "escalate":
                detail.append({"department": str(dept[i_]), "time_limit_hours": int(dlim[i_] // HOUR)})
            elif a == "rated":
                g_, s_ = score_of[int(i_)]
                detail.append({"good": bool(g_), "score": int(s_)})
            else:
                detail.append({})
        field = np.isin(act, ["accept", "start", "resolve"]) & (ch != "window")
        field |= (act == "intake") & (ch == "patrol")
        geoms = np.where(field, np.asarray(loc, dtype=object)[inc], None)
        self.t["incident_events"] = _gdf(
            {
                "id": np.arange(1, len(inc) + 1),
                "incident_id": ids[inc],
                "city_code": CITY_CODE,
                "at": _ts(ev_t),
                "actor": actor,
                "action": act,
                "from_status": frm,
                "to_status": to_s,
                "detail": detail,
                "geom": geoms,
            },
            "geom",
        )

    # ------------------------------------------------------------------ visits
    def _visits(self) -> None:
        rng = self.rng(70)
        start_year = self.ref_s - 365 * DAY
        checklist = catalogue.VISIT_CHECKLIST
        # residents
        nr = len(self.r_ids)
        every = self.r_every.astype(float) * DAY
        first = start_year + rng.uniform(0, 1, nr) * every
        overdue = rng.random(nr) < 0.07
        end = np.where(overdue, self.ref_s - every - rng.uniform(3, 40, nr) * DAY, self.ref_s)
        count = np.maximum(0, np.floor((end - first) / every).astype(int) + 1)
        ri = np.repeat(np.arange(nr), count)
        k = np.arange(len(ri)) - np.repeat(np.cumsum(count) - count, count)
        t = first[ri] + k * every[ri] + rng.uniform(-0.15, 0.15, len(ri)) * every[ri]
        # buildings, every 45–120 days; 5% not visited for the last ~4 months
        nb = len(self.b_ids)  # homes only: public buildings are not on the visit round
        bevery = rng.uniform(45, 120, nb) * DAY
        bfirst = start_year + rng.uniform(0, 1, nb) * bevery
        bend = np.where(rng.random(nb) < 0.05, self.ref_s - 125 * DAY, self.ref_s)
        bcount = np.maximum(0, np.floor((bend - bfirst) / bevery).astype(int) + 1)
        bcount = np.where(self.b_home, bcount, 0)
        bi = np.repeat(np.arange(nb), bcount)
        bk = np.arange(len(bi)) - np.repeat(np.cumsum(bcount) - bcount, bcount)
        bt = bfirst[bi] + bk * bevery[bi]
        building = np.concatenate([self.r_building[ri], bi])
        resident = np.concatenate([ri, np.full(len(bi), -1)])
        when = np.maximum(np.concatenate([t, bt]), start_year + DAY)
        # daytime, Beijing time
        when = when - (when + BEIJING) % DAY + rng.uniform(8.5, 17.5, len(when)) * HOUR
        when = np.minimum(when, self.ref_s - 600)
        o = np.lexsort((building, when))
        building, resident, when = building[o], resident[o], when[o]
        v = len(when)
        worker = self.p_ids[self.grid_worker[self.b_grid[building]]]
        xy = self.b_xy[building] + rng.normal(0, 6, (v, 2))
        n_items = rng.integers(3, 7, v)
        picks = rng.integers(0, len(checklist), (v, 6))
        names = list(checklist)
        lists = [
            [names[j] for j in sorted(set(row[:q]))]
            for row, q in zip(picks.tolist(), n_items.tolist(), strict=True)
        ]
        notes_pool = np.array(
            [
                "情况稳定",
                "已提醒用气安全",
                "送去药品",
                "需关注身体状况",
                "协助申请补贴",
                "家中无人，电话联系",
                "反映楼道堆物",
                "",
            ],
            dtype=object,
        )
        notes = notes_pool[rng.integers(0, len(notes_pool), v)]
        # numpy's stubs do not accept None as an (object) fill value, which numpy does
        notes = np.where(notes == "", None, notes)  # type: ignore[call-overload]
        self.t["visits"] = _gdf(
            {
                "id": np.arange(1, v + 1),
                "city_code": CITY_CODE,
                "building_id": self.b_ids[building],
                "resident_id": _nullable(np.where(resident >= 0, self.r_ids[np.maximum(resident, 0)], -1)),
                "worker_id": worker,
                "at": _ts(when),
                "checklist": lists,
                "notes": notes,
                "position": to_wgs84(shapely.points(xy)),
            },
            "position",
        )

    # ------------------------------------------------------------------ tasks
    def _tasks(self) -> None:
        inc = self.t["incidents"]
        loc = shapely.get_coordinates(to_metric(inc.geometry.to_numpy()))
        grid_index = {int(g): i for i, g in enumerate(self.grid_ids)}
        people = tasks.People(
            ids=self.p_ids,
            role=self.p_role,
            comm=self.p_comm,
            skills=list(self.t["people"]["skills"]),
            capacity=self.p_capacity,
            on_now=self.p_on,
            station_now=self.p_station,
            xy=self.p_xy,
            roster=self.roster,
        )
        cases = tasks.Cases(
            ids=inc["id"].to_numpy(),
            item=inc["item_code"].to_numpy(),
            created=_epoch(inc["created_at"]),
            xy=loc,
            grid=np.array([grid_index[int(g)] for g in inc["grid_id"]]),
            comm=np.array([self.comm_index[c] for c in inc["community_code"]]),
        )
        homes_xy = [self.b_xy[(self.b_comm == c) & self.b_home] for c in range(self.n_comm)]
        homes_grid = [self.b_grid[(self.b_comm == c) & self.b_home] for c in range(self.n_comm)]
        made = tasks.make_tasks(self.ref_s, people, cases, homes_xy, homes_grid, self.hrng(75))
        rows = made.tasks
        self.task_rows = rows
        n = len(rows)
        done_xy = [shapely.Point(p) if p is not None else None for p in rows["done_xy"]]
        self.t["tasks"] = _gdf(
            {
                "id": rows["id"].to_numpy(),
                "city_code": CITY_CODE,
                "community_code": [self.comm_codes[c] for c in rows["comm"]],
                "grid_id": self.grid_ids[rows["grid"].to_numpy(dtype=int)],
                "title": rows["title"],
                "description": rows["description"],
                "location": to_wgs84(shapely.points(np.stack(list(rows["xy"])))),
                "input_crs": "wgs84",
                "role": rows["role"],
                "skill": rows["skill"],
                "points": rows["points"].astype(int),
                "deadline": _ts(rows["deadline"].to_numpy(dtype=float)),
                "incident_id": _nullable(rows["incident"].to_numpy()),
                "status": rows["status"],
                "offered_to": _nullable(
                    np.where(rows["offered_to"] >= 0, self.p_ids[np.maximum(rows["offered_to"], 0)], -1)
                ),
                "offer_expires_at": _ts(rows["offer_expires_at"].to_numpy(dtype=float)),
                "assignee_id": _nullable(
                    np.where(rows["assignee"] >= 0, self.p_ids[np.maximum(rows["assignee"], 0)], -1)
                ),
                "idempotency_key": [None] * n,
                "created_by": "demo",
                "created_at": _ts(rows["created_at"].to_numpy(dtype=float)),
                "accepted_at": _ts(rows["accepted_at"].to_numpy(dtype=float)),
                "completed_at": _ts(rows["completed_at"].to_numpy(dtype=float)),
                "cancelled_at": _ts(rows["cancelled_at"].to_numpy(dtype=float)),
                "completion_position": _points_or_none(done_xy),
                "completion_distance_m": rows["done_d"].to_numpy(dtype=float),
            },
            "location",
        )
        off = made.offers
        self.t["task_offers"] = pd.DataFrame(
            {
                "id": np.arange(1, len(off) + 1),
                "task_id": off["task_id"].to_numpy(dtype=int),
                "person_id": self.p_ids[off["person"].to_numpy(dtype=int)],
                "offered_at": _ts(off["offered_at"].to_numpy(dtype=float)),
                "expires_at": _ts(off["expires_at"].to_numpy(dtype=float)),
                "distance_m": np.round(off["distance_m"].to_numpy(dtype=float), 1),
                "outcome": off["outcome"],
                "responded_at": _ts(off["responded_at"].to_numpy(dtype=float)),
                "reason": off["reason"],
            }
        )

    def _nearest_building(self, xy: np.ndarray) -> int:
        if not hasattr(self, "_b_tree"):
            self._b_tree = shapely.STRtree(self.b_point_metric)
        return int(self._b_tree.query_nearest(shapely.Point(xy))[0])

    # ------------------------------------------------------------------ points
    def _points(self) -> None:
        rng = self.rng(80)
        people = np.where(np.isin(self.p_role, ["volunteer", "rider"]))[0]
        rider = self.p_role[people] == "rider"
        k = rng.poisson(np.where(rider, 4.6, 6.0))
        pi = np.repeat(people, k)
        n_act = 2_300
        act = rng.integers(1, n_act + 1, len(pi))
        act_day = self.rng(81).uniform(1, 365, n_act + 1)
        when = self.ref_s - act_day[act] * DAY
        when = when - (when + BEIJING) % DAY + rng.uniform(8, 20, len(pi)) * HOUR
        when = np.minimum(when, self.ref_s - 3_600)
        delta = rng.choice([5, 10, 10, 15, 20], len(pi))
        kinds = [
            "助老服务",
            "环境整治",
            "文明劝导",
            "反诈宣传",
            "垃圾分类宣传",
            "平安巡逻",
            "隐患上报",
            "关爱留守儿童",
        ]
        reason = [f"参加社区志愿活动：{kinds[a % len(kinds)]}" for a in act]
        refs = [f"ACT-{a:05d}" for a in act]
        # completed tasks earn their points (as the dispatch service credits them)
        done = self.task_rows[(self.task_rows["status"] == "completed") & (self.task_rows["points"] > 0)]
        pi = np.concatenate([pi, done["assignee"].to_numpy(dtype=int)])
        when = np.concatenate([when, done["completed_at"].to_numpy(dtype=float)])
        delta = np.concatenate([delta, done["points"].to_numpy(dtype=int)])
        reason = reason + ["task_completed"] * len(done)
        refs = refs + [f"task:{i}" for i in done["id"]]
        # redemptions of the rewards catalogue: after a person's last credit, within the balance
        frame = pd.DataFrame({"p": pi, "at": when, "delta": delta})
        agg = frame.groupby("p").agg(bal=("delta", "sum"), last=("at", "max"))
        cheapest = min(r[3] for r in catalogue.REWARDS)
        agg = agg[agg["bal"] >= cheapest]
        redeem = agg[rng.random(len(agg)) < 0.3]
        r_code: list[str] = []
        r_points: list[int] = []
        r_name: list[str] = []
        for bal in redeem["bal"].to_numpy():
            affordable = [r for r in catalogue.REWARDS if r[3] <= bal]
            choice = affordable[int(rng.integers(len(affordable)))]
            r_code.append(choice[0])
            r_points.append(choice[3])
            r_name.append(choice[1])
        last = redeem["last"].to_numpy()
        r_at = np.maximum(np.minimum(last + rng.uniform(1, 30, len(redeem)) * DAY, self.ref_s - 60), last + 1)
        ro = np.lexsort((redeem.index.to_numpy(), r_at))
        red_p = redeem.index.to_numpy()[ro]
        red_at = r_at[ro]
        red_pts = np.array(r_points, dtype=int)[ro]
        red_ids = np.arange(1, len(ro) + 1)
        self.t["redemptions"] = pd.DataFrame(
            {
                "id": red_ids,
                "city_code": CITY_CODE,
                "person_id": self.p_ids[red_p],
                "reward_code": [r_code[i] for i in ro],
                "quantity": np.ones(len(ro), dtype=int),
                "points": red_pts,
                "idempotency_key": [None] * len(ro),
                "created_by": "demo",
                "at": _ts(red_at),
            }
        )
        all_p = np.concatenate([pi, red_p])
        all_at = np.concatenate([when, red_at])
        all_d = np.concatenate([delta, -red_pts])
        all_reason = reason + [f"积分兑换：{r_name[i]}" for i in ro]
        all_ref = refs + [f"redemption:{i}" for i in red_ids]
        o = np.lexsort((all_p, all_at))
        self.t["points_ledger"] = pd.DataFrame(
            {
                "id": np.arange(1, len(o) + 1),
                "city_code": CITY_CODE,
                "person_id": self.p_ids[all_p[o]],
                "at": _ts(all_at[o]),
                "delta": all_d[o],
                "reason": [all_reason[i] for i in o],
                "ref": [all_ref[i] for i in o],
            }
        )


__all__ = ["DemoCity", "N_COMMUNITIES", "TABLES", "generate_city", "reference_time"]
