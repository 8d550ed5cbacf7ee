"""Community boundaries that disagree: found, reported, and resolved only as the planner chooses.

Boundaries drawn by different offices rarely agree: neighbouring communities
overlap by a few metres or leave slivers between them, and buildings sit
across the line. :func:`check_boundaries` finds

* **overlaps** — area claimed by two communities (more than ``min_area_m2``);
* **gaps** — area claimed by none: slivers narrower than ``gap_width_m``
  between neighbours (``kind="sliver"``), and holes enclosed by the
  communities (``kind="enclosed"``, any size — a park outside every
  community is one, and may be meant);
* **straddling buildings** — footprints with more than ``straddle_share`` of
  their area outside the community holding most of it (and footprints in no
  community).

Nothing is changed by the check. The resolutions are separate functions the
planner picks: :func:`clip_overlaps` (each overlap goes to one community, by
priority), :func:`fill_gaps` (each sliver goes to the neighbour sharing most
of its edge), :func:`assign_by_centroid` (a building belongs wholly to the
community holding its representative point), :func:`clip_buildings` (a
footprint is cut at the line, households shared by area) and
:func:`refuse` (an error listing every problem). Each returns what it
changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping

from gis.io.errors import ReadError
from gis.planning.projection import metric_crs_for

Resolution = Literal["clip", "centroid", "refuse"]


@dataclass
class BoundaryReport:
    """What :func:`check_boundaries` found (geometries in WGS84).

    Attributes
    ----------
    overlaps : list of dict
        ``{"communities": [a, b], "area_m2", "geometry"}``.
    gaps : list of dict
        ``{"kind": "sliver"|"enclosed", "neighbours": [codes], "area_m2", "geometry"}``.
    straddling : list of dict
        ``{"building", "main", "shares": {code: share}, "outside_share"}``
        (``main`` None and ``shares`` empty for a building in no community).
    """

    overlaps: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    straddling: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the boundaries agree (nothing found)."""
        return not (self.overlaps or self.gaps or self.straddling)

    def messages(self) -> list[str]:
        """One line per problem, for a planner."""
        out = [
            f"communities {a} and {b} overlap by {o['area_m2']:,.1f} m²"
            for o in self.overlaps
            for a, b in [o["communities"]]
        ]
        for g in self.gaps:
            where = " and ".join(g["neighbours"]) or "no community"
            what = "a sliver" if g["kind"] == "sliver" else "an enclosed area"
            out.append(f"{what} of {g['area_m2']:,.1f} m² between {where} belongs to no community")
        for s in self.straddling:
            if s["main"] is None:
                out.append(f"building {s['building']} lies in no community")
            else:
                others = ", ".join(f"{c} {v:.0%}" for c, v in s["shares"].items() if c != s["main"])
                out.append(
                    f"building {s['building']} straddles a community line: {s['main']} "
                    f"{s['shares'][s['main']]:.0%}, {others}"
                )
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON form (geometries as GeoJSON dicts)."""

        def geo(d: dict[str, Any]) -> dict[str, Any]:
            return {k: (mapping(v) if k == "geometry" else v) for k, v in d.items()}

        return {
            "overlaps": [geo(o) for o in self.overlaps],
            "gaps": [geo(g) for g in self.gaps],
            "straddling": list(self.straddling),
            "messages": self.messages(),
        }


def _metric(communities: gpd.GeoDataFrame) -> tuple[Any, np.ndarray]:
    crs = metric_crs_for(shapely.union_all(np.asarray(communities.geometry.values)))
    return crs, np.asarray(communities.to_crs(crs).geometry.values, dtype=object)


def _back(geom: shapely.Geometry, crs: Any) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0]


def check_boundaries(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    *,
    code_column: str = "code",
    building_id: str = "source_id",
    gap_width_m: float = 5.0,
    min_area_m2: float = 1.0,
    straddle_share: float = 0.05,
) -> BoundaryReport:
    """Find overlaps, gaps and straddling buildings (see module docstring).

    Parameters
    ----------
    communities : GeoDataFrame
        WGS84 polygons with a code column.
    buildings : GeoDataFrame, optional
        WGS84 footprints with an id column.
    code_column, building_id : str
        Columns naming communities and buildings.
    gap_width_m : float
        Slivers narrower than this between neighbours are gaps.
    min_area_m2 : float
        Overlaps and gaps smaller than this are ignored.
    straddle_share : float
        A building with more than this share of its area outside its main
        community straddles the line.

    Returns
    -------
    BoundaryReport
    """
    rep = BoundaryReport()
    if not len(communities):
        return rep
    crs, geoms = _metric(communities)
    geoms = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
    codes = communities[code_column].astype(str).tolist()
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    for i, j in zip(a[keep].tolist(), b[keep].tolist(), strict=True):
        inter = shapely.intersection(geoms[i], geoms[j])
        area = float(shapely.area(inter))
        if area > min_area_m2:
            rep.overlaps.append(
                {
                    "communities": [codes[i], codes[j]],
                    "area_m2": round(area, 1),
                    "geometry": _back(inter, crs),
                }
            )
    union = shapely.union_all(geoms)
    half = gap_width_m / 2
    closed = shapely.buffer(shapely.buffer(union, half, join_style="mitre"), -half, join_style="mitre")
    polys = [p for p in shapely.get_parts(union) if p.geom_type == "Polygon"]
    candidates = [(shapely.Polygon(r), "enclosed") for poly in polys for r in poly.interiors]
    candidates += [(p, "sliver") for p in shapely.get_parts(shapely.difference(closed, union))]
    seen: list[shapely.Geometry] = []
    for piece, kind in candidates:
        if piece.geom_type != "Polygon" or piece.area <= min_area_m2:
            continue
        if kind == "sliver" and any(shapely.covers(s, piece.representative_point()) for s in seen):
            continue
        near = tree.query(piece, predicate="dwithin", distance=0.01)
        neighbours = sorted({codes[k] for k in near.tolist()})
        if kind == "sliver" and len(neighbours) < 2:
            continue  # a notch in the outer edge, not a gap between neighbours
        if kind == "enclosed":
            seen.append(piece)
        rep.gaps.append(
            {
                "kind": kind,
                "neighbours": neighbours,
                "area_m2": round(float(piece.area), 1),
                "geometry": _back(piece, crs),
            }
        )
    if buildings is not None and len(buildings):
        rep.straddling = _straddling(buildings, geoms, codes, crs, building_id, straddle_share)
    return rep


def _straddling(
    buildings: gpd.GeoDataFrame,
    geoms: np.ndarray,
    codes: list[str],
    crs: Any,
    building_id: str,
    straddle_share: float,
) -> list[dict[str, Any]]:
    fps = np.asarray(buildings.to_crs(crs).geometry.values, dtype=object)
    ids = buildings[building_id].astype(str).tolist()
    tree = shapely.STRtree(geoms)
    f, c = tree.query(fps, predicate="intersects")
    area = shapely.area(fps)
    inter = shapely.area(shapely.intersection(fps[f], geoms[c]))
    shares: dict[int, dict[str, float]] = {}
    for i, j, ar in zip(f.tolist(), c.tolist(), inter.tolist(), strict=True):
        if area[i] > 0 and ar > 0:
            shares.setdefault(i, {})[codes[j]] = round(ar / area[i], 3)
    out = []
    for i in range(len(fps)):
        s = shares.get(i, {})
        if not s:
            out.append({"building": ids[i], "main": None, "shares": {}, "outside_share": 1.0})
            continue
        main = max(sorted(s), key=lambda k: s[k])
        outside = round(1.0 - s[main], 3)
        if outside > straddle_share:
            out.append({"building": ids[i], "main": main, "shares": s, "outside_share": outside})
    return out


def refuse(report: BoundaryReport) -> None:
    """Raise :class:`ReadError` listing every problem (nothing when the boundaries agree).

    Raises
    ------
    ReadError
        With ``items`` = one ``{"kind", "message"}`` per problem.
    """
    if report.ok:
        return
    msgs = report.messages()
    shown = "; ".join(msgs[:10]) + (f" (and {len(msgs) - 10} more)" if len(msgs) > 10 else "")
    raise ReadError(
        f"the community boundaries disagree: {shown}. Nothing was changed; choose a resolution "
        "(clip overlaps, fill gaps, assign buildings by centroid, or clip buildings)",
        [{"kind": "boundary", "message": m} for m in msgs],
    )


def clip_overlaps(
    communities: gpd.GeoDataFrame,
    report: BoundaryReport,
    *,
    priority: Sequence[str] | None = None,
    code_column: str = "code",
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Give each overlap to one community and cut it from the other.

    Parameters
    ----------
    communities : GeoDataFrame
        WGS84 polygons.
    report : BoundaryReport
        From :func:`check_boundaries` on the same communities.
    priority : sequence of str, optional
        Codes in order of precedence (default: the order of the file).
    code_column : str
        Code column.

    Returns
    -------
    (GeoDataFrame, list of dict)
        The communities and one ``{"overlap": [a, b], "kept_by", "cut_from",
        "area_m2"}`` per change.
    """
    order = list(priority) if priority is not None else communities[code_column].astype(str).tolist()
    rank = {c: k for k, c in enumerate(order)}
    out = communities.copy()
    pos = {c: k for k, c in enumerate(out[code_column].astype(str))}
    geoms = np.asarray(out.geometry.values, dtype=object).copy()
    changes = []
    for o in report.overlaps:
        a, b = o["communities"]
        keep, cut = sorted((a, b), key=lambda c: rank.get(c, len(rank)))
        k = pos[cut]
        geoms[k] = shapely.difference(geoms[k], geoms[pos[keep]])
        changes.append({"overlap": [a, b], "kept_by": keep, "cut_from": cut, "area_m2": o["area_m2"]})
    out[out.geometry.name] = gpd.GeoSeries(_polygonal(geoms), index=out.index, crs=out.crs)
    return out, changes


def fill_gaps(
    communities: gpd.GeoDataFrame,
    report: BoundaryReport,
    *,
    code_column: str = "code",
    enclosed: bool = False,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Give each sliver gap (and, with ``enclosed``, each enclosed hole) to the neighbour sharing most edge.

    Returns
    -------
    (GeoDataFrame, list of dict)
        The communities and one ``{"gap_area_m2", "given_to", "kind"}`` per change.
    """
    out = communities.copy()
    codes = out[code_column].astype(str).tolist()
    geoms = np.asarray(out.geometry.values, dtype=object).copy()
    changes = []
    for g in report.gaps:
        if g["kind"] == "enclosed" and not enclosed:
            continue
        piece = g["geometry"]
        edge = piece.boundary.buffer(1e-6)
        best = max(
            (k for k, c in enumerate(codes) if c in g["neighbours"]),
            key=lambda k: float(shapely.length(shapely.intersection(edge, shapely.boundary(geoms[k])))),
            default=None,
        )
        if best is None:
            continue
        geoms[best] = shapely.union_all([geoms[best], piece])
        changes.append({"gap_area_m2": g["area_m2"], "given_to": codes[best], "kind": g["kind"]})
    out[out.geometry.name] = gpd.GeoSeries(_polygonal(geoms), index=out.index, crs=out.crs)
    return out, changes


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    out = geoms.copy()
    for i, g in enumerate(geoms):
        polys = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]
        out[i] = shapely.MultiPolygon(polys) if polys else shapely.MultiPolygon()
    return out


def assign_by_centroid(
    buildings: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, code_column: str = "code"
) -> pd.Series:
    """Community code of each building: the one holding its representative point (None if none).

    Returns
    -------
    Series
        Index of ``buildings`` → community code.
    """
    pts = shapely.point_on_surface(np.asarray(buildings.geometry.values, dtype=object))
    tree = shapely.STRtree(np.asarray(communities.geometry.values, dtype=object))
    p, c = tree.query(pts, predicate="intersects")
    codes = communities[code_column].astype(str).to_numpy()
    out = pd.Series([None] * len(buildings), index=buildings.index, dtype=object)
    order = np.lexsort((c, p))
    p, c = p[order], c[order]
    first = np.unique(p, return_index=True)[1]
    out.iloc[p[first]] = codes[c[first]]
    return out


def clip_buildings(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    report: BoundaryReport,
    *,
    code_column: str = "code",
    building_id: str = "source_id",
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Cut straddling footprints at the community line; households shared by area.

    Parameters
    ----------
    buildings : GeoDataFrame
        WGS84 footprints with ``households``.
    communities : GeoDataFrame
        WGS84 polygons.
    report : BoundaryReport
        From :func:`check_boundaries` with these buildings.
    code_column, building_id : str
        Columns naming communities and buildings.

    Returns
    -------
    (GeoDataFrame, list of dict)
        Buildings with a ``community`` column (each straddling one replaced
        by one row per community, id ``<id>@<code>``, ``parent_building_id``
        set) and one ``{"building", "pieces": {code: households}}`` per cut.
    """
    straddle = {s["building"]: s for s in report.straddling if s["main"] is not None}
    by_code = dict(zip(communities[code_column].astype(str), communities.geometry.values, strict=True))
    centroid = assign_by_centroid(buildings, communities, code_column=code_column)
    rows, changes = [], []
    geom_col = buildings.geometry.name
    for (idx, row), home in zip(buildings.iterrows(), centroid.tolist(), strict=True):
        bid = str(row[building_id])
        if bid not in straddle:
            rows.append({**row.to_dict(), "community": home, "parent_building_id": bid})
            continue
        shares = straddle[bid]["shares"]
        total = int(row.get("households", 0) or 0)
        split = _shares_to_int(total, shares)
        pieces = {}
        for code, hh in split.items():
            piece = shapely.intersection(row[geom_col], by_code[code])
            rows.append(
                {
                    **row.to_dict(),
                    building_id: f"{bid}@{code}",
                    geom_col: piece,
                    "households": hh,
                    "community": code,
                    "parent_building_id": bid,
                }
            )
            pieces[code] = hh
        changes.append({"building": bid, "pieces": pieces})
        del idx
    return gpd.GeoDataFrame(rows, geometry=geom_col, crs=buildings.crs), changes


def _shares_to_int(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Whole households in proportion to ``shares`` (largest remainders), summing to ``total``."""
    keys = sorted(shares)
    raw = np.array([shares[k] for k in keys], dtype=float)
    raw = raw / raw.sum() * total if raw.sum() > 0 else np.zeros(len(keys))
    base = np.floor(raw).astype(int)
    for k in np.argsort(-(raw - base))[: total - int(base.sum())]:
        base[k] += 1
    return dict(zip(keys, base.tolist(), strict=True))
