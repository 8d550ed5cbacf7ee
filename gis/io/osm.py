"""Reading OpenStreetMap extracts (PBF or XML) with pyosmium: buildings and streets, with a report.

The file is streamed (pyosmium reads it block by block; only node locations
and the rows kept stay in memory), so city extracts of hundreds of MB are
read without loading them whole.

Buildings
    Closed ways and multipolygon relations tagged ``building=*``, assembled
    by osmium's area assembler, so relations keep their inner rings
    (courtyards are holes). Levels come from ``building:levels``, households
    from ``building:flats`` (OSM's tag for dwellings), ``addr:households`` or
    ``households`` where mapped. What cannot become a footprint is skipped
    and listed: ways whose nodes lie outside the extract (every extract cut
    from the planet has them), relations whose members are missing, open
    ways, buildings mapped as a point. A closed way the assembler refuses
    although all its nodes are present has an invalid ring; it is built
    here and handed to :mod:`gis.io.checks` (refused, repaired or skipped as
    the caller asks). A way that is also the outer ring of a building
    relation is skipped (the relation, with its holes, is the building).
    Nodes tagged ``entrance=*`` are returned too (for splitting buildings by
    entrance/单元).
Streets
    ``highway=*`` ways of the kinds in :data:`STREET_KINDS` (footways and
    tracks are left out unless asked, and counted by kind). A way with
    nodes outside the extract is **clipped** to its runs of located nodes
    (each run of two or more nodes is kept) and listed; a way with fewer
    than two located nodes is skipped and listed.

OSM is WGS84 by definition. A truncated or corrupt file is refused (nothing
is returned); note that a PBF cut exactly at a block boundary cannot be told
from a complete file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import osmium
import shapely

from gis.io.errors import ReadError
from gis.io.report import ImportReport

#: ``highway`` values imported as streets by default (what bounds a block in a city).
STREET_KINDS = frozenset(
    {
        "motorway",
        "trunk",
        "primary",
        "secondary",
        "tertiary",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "pedestrian",
        "road",
        "motorway_link",
        "trunk_link",
        "primary_link",
        "secondary_link",
        "tertiary_link",
    }
)

BUILDING_COLUMNS = ["source_id", "name", "address", "building", "floors", "households"]
STREET_COLUMNS = ["source_id", "name", "kind"]
ENTRANCE_COLUMNS = ["source_id", "ref", "unit"]


@dataclass
class OsmBuildings:
    """Result of :func:`load_osm_buildings`.

    Attributes
    ----------
    frame : GeoDataFrame
        EPSG:4326: ``source_id`` (``w123``/``r45``), ``name``, ``address``,
        ``building`` (type), ``floors`` (NaN if absent), ``households`` (NaN
        unless mapped), geometry (MultiPolygon; may be invalid only for ways
        the assembler refused, see the module docstring).
    entrances : GeoDataFrame
        EPSG:4326 points tagged ``entrance=*``: ``source_id`` (``n1``),
        ``ref`` (``ref``/``addr:unit``), ``unit``.
    report : ImportReport
    """

    frame: gpd.GeoDataFrame
    entrances: gpd.GeoDataFrame
    report: ImportReport


def _check(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise ReadError(f"no such file: {p}")
    if p.stat().st_size == 0:
        raise ReadError(f"{p.name} is empty (0 bytes)")
    return p


def _bbox(within: shapely.Geometry | None) -> tuple[float, float, float, float] | None:
    if within is None or within.is_empty:
        return None
    x0, y0, x1, y1 = within.bounds
    return (float(x0), float(y0), float(x1), float(y1))


def _outside(
    bounds: tuple[float, float, float, float], box: tuple[float, float, float, float] | None
) -> bool:
    if box is None:
        return False
    return bounds[2] < box[0] or bounds[0] > box[2] or bounds[3] < box[1] or bounds[1] > box[3]


def _corrupt(p: Path, exc: BaseException, seen: int) -> ReadError:
    return ReadError(
        f"cannot read {p.name} as OpenStreetMap data after {seen} objects: {exc}. The file is "
        "truncated or corrupt; nothing was imported (download the extract again)"
    )


def load_osm_buildings(path: str | Path, *, within: shapely.Geometry | None = None) -> OsmBuildings:
    """Read the buildings (and entrances) of an OSM extract, reporting what could not be used.

    Parameters
    ----------
    path : str or Path
        ``.osm.pbf``, ``.osm``, ``.osm.bz2`` ... extract.
    within : shapely geometry, optional
        WGS84 area of interest: buildings whose bounding box misses its
        bounding box are passed over (counted in ``extra['outside_area']``,
        not listed).

    Returns
    -------
    OsmBuildings

    Raises
    ------
    ReadError
        Missing, empty, truncated or corrupt file.
    """
    p = _check(path)
    report = ImportReport(kind="buildings", source=p.name, crs="EPSG:4326 (OpenStreetMap)")
    box = _bbox(within)
    near = None if box is None else (box[0] - 0.01, box[1] - 0.01, box[2] + 0.01, box[3] + 0.01)
    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    entrances: list[dict[str, Any]] = []
    pending: dict[int, tuple[list[tuple[float, float]] | None, int, int, dict[str, str]]] = {}
    relations: dict[int, list[int]] = {}
    assembled_rel: set[int] = set()
    outside = 0
    seen = 0
    try:
        fp = (
            osmium.FileProcessor(str(p))
            .with_locations()
            .with_areas(osmium.filter.KeyFilter("building"))
            .with_filter(osmium.filter.KeyFilter("building", "entrance"))
        )
        for obj in fp:
            seen += 1
            if isinstance(obj, osmium.osm.Area):
                tags = obj.tags
                if "building" not in tags:
                    continue
                oid = obj.orig_id()
                if obj.from_way() and oid not in pending:
                    continue  # its way was passed over (outside the area asked)
                try:
                    geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(obj)))
                except RuntimeError:
                    continue  # stays pending: reported below
                if obj.from_way():
                    del pending[oid]
                else:
                    assembled_rel.add(oid)
                if _outside(geom.bounds, box):
                    outside += 1
                    continue
                rows.append(
                    _building_row(("w" if obj.from_way() else "r") + str(oid), _used_tags(tags), geom)
                )
            elif isinstance(obj, osmium.osm.Way):
                if "building" not in obj.tags:
                    continue
                nodes = obj.nodes
                if near is not None and len(nodes):  # cheap test on the first node (footprints are small)
                    n0 = nodes[0]
                    if n0.location.valid() and _outside((n0.lon, n0.lat, n0.lon, n0.lat), near):
                        outside += 1
                        continue
                located = [(n.lon, n.lat) for n in nodes if n.location.valid()]
                missing = len(nodes) - len(located)
                if box is not None and (not located or _outside(_pts_bounds(located), box)):
                    outside += 1
                    continue
                if len(nodes) < 4 or not obj.is_closed():
                    report.read += 1
                    report.skip(
                        f"w{obj.id}", "open_way", f"building way with {len(nodes)} nodes is not closed"
                    )
                    continue
                pending[obj.id] = (
                    located if not missing else None,
                    missing,
                    len(nodes),
                    _used_tags(obj.tags),
                )
            elif isinstance(obj, osmium.osm.Relation):
                tags = obj.tags
                if "building" not in tags:
                    continue
                if tags.get("type") != "multipolygon":
                    continue  # type=building groups parts; the footprint is mapped separately
                relations[obj.id] = [m.ref for m in obj.members if m.type == "w" and m.role != "inner"]
            elif isinstance(obj, osmium.osm.Node):
                tags = obj.tags
                if "entrance" in tags and obj.location.valid():
                    if box is None or not _outside((obj.lon, obj.lat, obj.lon, obj.lat), box):
                        entrances.append(
                            {
                                "source_id": f"n{obj.id}",
                                "ref": tags.get("ref") or tags.get("addr:unit"),
                                "unit": tags.get("addr:unit") or tags.get("addr:flats"),
                                "geometry": shapely.Point(obj.lon, obj.lat),
                            }
                        )
                elif "building" in tags:
                    if box is not None and _outside((obj.lon, obj.lat, obj.lon, obj.lat), box):
                        outside += 1
                        continue
                    report.read += 1
                    report.skip(f"n{obj.id}", "point", "building mapped as a point (no footprint)")
    except RuntimeError as exc:
        raise _corrupt(p, exc, seen) from exc

    # closed ways the assembler did not turn into an area
    for wid, (coords, missing, n, wtags) in pending.items():
        if coords is None:
            report.read += 1
            report.skip(
                f"w{wid}",
                "outside_extract",
                f"{missing} of {n} nodes lie outside the extract (the footprint cannot be closed)",
                nodes_missing=missing,
            )
            continue
        ring = shapely.Polygon(coords) if len(set(coords)) >= 3 else None
        if ring is None:
            report.read += 1
            report.skip(f"w{wid}", "degenerate", "ring with no area")
            continue
        if _outside(ring.bounds, box):
            outside += 1
            continue
        rows.append(_building_row(f"w{wid}", wtags, shapely.MultiPolygon([ring])))
    failed = sorted(set(relations) - assembled_rel)
    if box is not None and failed:  # where they lie is unknown: counted, not listed
        report.extra["relations_not_assembled"] = len(failed)
        report.notes.append(
            f"{len(failed)} building multipolygon(s) of the extract could not be assembled (member ways "
            "outside the extract); where they lie is unknown"
        )
        failed = []
    for rid in failed:
        report.read += 1
        report.skip(
            f"r{rid}",
            "outside_extract",
            "multipolygon relation not assembled: member ways lie outside the extract "
            "(or its rings do not close)",
        )
    # a way that is also an outer ring of an assembled building relation is that building
    outer_of = {w: r for r in sorted(assembled_rel) for w in relations.get(r, [])}
    kept = []
    rows.sort(
        key=lambda r: (r["source_id"][0] != "w", int(r["source_id"][1:]))
    )  # file order: ways, relations
    for row in rows:
        sid = row["source_id"]
        if sid[0] == "w" and int(sid[1:]) in outer_of:
            report.read += 1
            r = outer_of[int(sid[1:])]
            report.skip(
                sid,
                "relation_outer",
                f"outer ring of building relation r{r}, imported as r{r} (with its inner rings)",
                relation=f"r{r}",
            )
            continue
        kept.append(row)
    report.read += len(kept)
    if outside:
        report.extra["outside_area"] = outside
    parts, owner = shapely.get_parts(
        np.asarray([r["geometry"] for r in kept], dtype=object), return_index=True
    )
    holes = int(np.unique(owner[shapely.get_num_interior_rings(parts) > 0]).size) if len(kept) else 0
    if holes:
        report.notes.append(f"{holes} footprint(s) have inner rings (courtyards), kept as holes")
    frame = gpd.GeoDataFrame(kept, geometry="geometry", crs=4326) if kept else _empty(BUILDING_COLUMNS)
    ent = (
        gpd.GeoDataFrame(entrances, geometry="geometry", crs=4326) if entrances else _empty(ENTRANCE_COLUMNS)
    )
    return OsmBuildings(frame=frame, entrances=ent, report=report)


_USED_TAGS = (
    "building",
    "name",
    "addr:street",
    "addr:housenumber",
    "building:levels",
    "building:flats",
    "addr:households",
    "households",
)


_USED_SET = frozenset(_USED_TAGS)


def _used_tags(tags: Any) -> dict[str, str]:
    return {t.k: t.v for t in tags if t.k in _USED_SET}


def _building_row(sid: str, tags: dict[str, str], geom: shapely.Geometry) -> dict[str, Any]:
    street = tags.get("addr:street")
    number = tags.get("addr:housenumber")
    return {
        "source_id": sid,
        "name": tags.get("name"),
        "address": " ".join(x for x in (street, number) if x) or None,
        "building": tags.get("building"),
        "floors": _num(tags.get("building:levels")),
        "households": _num(
            tags.get("building:flats") or tags.get("addr:households") or tags.get("households")
        ),
        "geometry": geom,
    }


def read_osm_buildings(path: str | Path) -> gpd.GeoDataFrame:
    """Read the buildings of an OSM extract (the frame of :func:`load_osm_buildings`).

    Returns
    -------
    GeoDataFrame
        EPSG:4326: ``source_id`` (``w123``/``r45``), ``name``, ``address``,
        ``building`` (type), ``floors`` (from ``building:levels``, NaN if
        absent), ``households`` (NaN unless mapped), geometry (MultiPolygon).
    """
    return load_osm_buildings(path).frame


def load_osm_streets(
    path: str | Path, kinds: frozenset[str] = STREET_KINDS, *, within: shapely.Geometry | None = None
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read street centre lines (``highway`` ways of ``kinds``), clipped to the extract.

    Parameters
    ----------
    path : str or Path
        OSM extract.
    kinds : frozenset of str
        ``highway`` values read as streets.
    within : shapely geometry, optional
        WGS84 area of interest (ways whose bounding box misses it are passed
        over and counted in ``extra['outside_area']``).

    Returns
    -------
    (GeoDataFrame, ImportReport)
        EPSG:4326: ``source_id`` (``w123``), ``name``, ``kind`` (the
        ``highway`` value), geometry (LineString, or MultiLineString for a
        way clipped into several pieces). ``extra['not_streets']`` counts
        the other ``highway`` values by kind.

    Raises
    ------
    ReadError
        Missing, empty, truncated or corrupt file.
    """
    p = _check(path)
    report = ImportReport(kind="streets", source=p.name, crs="EPSG:4326 (OpenStreetMap)")
    box = _bbox(within)
    rows = []
    other: dict[str, int] = {}
    outside = 0
    seen = 0
    try:
        fp = (
            osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for obj in fp:
            seen += 1
            if not isinstance(obj, osmium.osm.Way):
                continue
            kind = obj.tags.get("highway")
            if kind not in kinds or obj.tags.get("area") == "yes":
                key = f"{kind} (area)" if obj.tags.get("area") == "yes" else str(kind)
                other[key] = other.get(key, 0) + 1
                continue
            sid = f"w{obj.id}"
            pts = [(n.lon, n.lat) if n.location.valid() else None for n in obj.nodes]
            runs = _runs(pts)
            missing = sum(1 for q in pts if q is None)
            if not runs:
                if box is not None:  # cannot tell where it is; count it as outside the area
                    located = [q for q in pts if q is not None]
                    if not located or _outside(_pts_bounds(located), box):
                        outside += 1
                        continue
                report.read += 1
                why = (
                    f"{missing} of {len(pts)} nodes lie outside the extract"
                    if missing
                    else f"fewer than two distinct nodes ({len(pts)})"
                )
                report.skip(sid, "outside_extract" if missing else "degenerate", why, nodes_missing=missing)
                continue
            geom = shapely.LineString(runs[0]) if len(runs) == 1 else shapely.MultiLineString(runs)
            if _outside(geom.bounds, box):
                outside += 1
                continue
            report.read += 1
            if missing:
                kept_nodes = sum(len(r) for r in runs)
                report.repair(
                    sid,
                    "clipped",
                    f"{missing} of {len(pts)} nodes lie outside the extract; kept {len(runs)} "
                    f"piece{'s' if len(runs) > 1 else ''} ({kept_nodes} nodes)",
                    nodes_missing=missing,
                    pieces=len(runs),
                )
            rows.append({"source_id": sid, "name": obj.tags.get("name"), "kind": kind, "geometry": geom})
    except RuntimeError as exc:
        raise _corrupt(p, exc, seen) from exc
    if other:
        report.extra["not_streets"] = dict(sorted(other.items()))
    if outside:
        report.extra["outside_area"] = outside
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326) if rows else _empty(STREET_COLUMNS)
    return frame, report


def read_osm_streets(path: str | Path, kinds: frozenset[str] = STREET_KINDS) -> gpd.GeoDataFrame:
    """Read the street centre lines of an OSM extract (the frame of :func:`load_osm_streets`).

    Returns
    -------
    GeoDataFrame
        EPSG:4326: ``source_id`` (``w123``), ``name``, ``kind`` (the
        ``highway`` value), geometry (LineString or MultiLineString).
    """
    return load_osm_streets(path, kinds)[0]


def _runs(pts: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Maximal runs of located nodes with at least two distinct points."""
    out: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    for q in [*pts, None]:
        if q is None:
            if len(set(cur)) >= 2:
                out.append(cur)
            cur = []
        elif not cur or cur[-1] != q:
            cur.append(q)
    return out


def _pts_bounds(pts: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    a = np.asarray(pts)
    return (float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max()))


def _num(value: str | None) -> float:
    if value is None:
        return float("nan")
    try:
        return float(value.replace(",", ".").split(";")[0])
    except ValueError:
        return float("nan")


def _empty(columns: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs=4326))
