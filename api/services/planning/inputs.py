"""A community's planning inputs, read from PostGIS and projected to a metric CRS."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from sqlalchemy.engine import Connection

from api.errors import InvalidInput, NotFound
from api.store.sql.plans import community as qc
from gis.planning.projection import metric_crs_for

WGS84 = "EPSG:4326"
#: Long straight edges in longitude/latitude are curves in a metric projection: boundaries
#: are densified (≈ 10 m) before projecting, so that grids sharing a vertex-poor edge with
#: the community still coincide with it to well under a square metre.
DENSIFY_DEG = 1e-4
UNIT_COLUMNS = ["unit_id", "building_id", "unit", "households", "entrance"]


@dataclass
class CommunityInputs:
    """Everything the algorithm needs for one community (metric CRS).

    Attributes
    ----------
    code, name, city_code : str
    crs : pyproj.CRS
        The UTM zone of the community (chosen from its location).
    community : shapely geometry
        Boundary in ``crs``.
    buildings : GeoDataFrame
        ``building_id`` (database id), ``code``, ``households``, ``households_estimated``,
        footprint.
    streets : GeoDataFrame or None
    existing : pandas.Series
        Active grid code per ``building_id`` (buildings in no active grid left out).
    active_plan_id : int or None
    units : DataFrame
        The units (单元) known for the buildings (``wangge import units``): ``unit_id``
        (``building_units.id``), ``building_id``, ``unit`` (label), ``households``, ``entrance``
        (Point in ``crs`` or None), in order along each building.
    """

    code: str
    name: str
    city_code: str
    crs: pyproj.CRS
    community: shapely.Geometry
    buildings: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame | None
    existing: pd.Series
    active_plan_id: int | None
    units: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=UNIT_COLUMNS))


def load_inputs(conn: Connection, community: str) -> CommunityInputs:
    """Read a community's polygon, buildings, streets and active plan.

    Raises
    ------
    NotFound
        Unknown community.
    InvalidInput
        A community without buildings (nothing to plan).
    """
    row = qc.community_row(conn, community)
    if row is None:
        raise NotFound(f"no community with code {community}", loc=["body", "community"])
    geom = shapely.from_wkb(row.wkb)
    crs = metric_crs_for(geom)
    rows = qc.buildings_of(conn, community)
    if not rows:
        raise InvalidInput(
            f"community {community} has no buildings to plan; import them first "
            "(wangge import buildings FILE --community CODE)",
            loc=["body", "community"],
        )
    b = gpd.GeoDataFrame(
        {
            "building_id": np.array([r.id for r in rows], dtype=np.int64),
            "code": [r.code for r in rows],
            "households": np.array([r.households for r in rows], dtype=np.int64),
            "households_estimated": np.array([r.households_estimated for r in rows], dtype=bool),
        },
        geometry=shapely.from_wkb([r.wkb for r in rows]),
        crs=WGS84,
    ).to_crs(crs)
    existing = pd.Series({r.id: r.grid_code for r in rows if r.grid_code is not None}, dtype=object)
    existing.index.name = "building_id"
    srows = qc.streets_in(conn, community)
    streets = None
    if srows:
        streets = gpd.GeoDataFrame(
            {"street_id": [r.id for r in srows]},
            geometry=shapely.from_wkb([r.wkb for r in srows]),
            crs=WGS84,
        ).to_crs(crs)
    comm = gpd.GeoSeries([shapely.segmentize(geom, DENSIFY_DEG)], crs=WGS84).to_crs(crs).iloc[0]
    return CommunityInputs(
        code=row.code,
        name=row.name,
        city_code=row.city_code,
        crs=crs,
        community=comm,
        buildings=b,
        streets=streets,
        existing=existing,
        active_plan_id=qc.active_plan_id(conn, community),
        units=_units(conn, community, crs),
    )


def _units(conn: Connection, community: str, crs: pyproj.CRS) -> pd.DataFrame:
    """Return the units of the community's buildings, entrances projected to ``crs``."""
    rows = qc.units_of(conn, community)
    if not rows:
        return pd.DataFrame(columns=UNIT_COLUMNS)
    ents = [shapely.from_wkb(r.entrance) if r.entrance is not None else None for r in rows]
    projected = gpd.GeoSeries(ents, crs=WGS84).to_crs(crs)
    return pd.DataFrame(
        {
            "unit_id": [r.id for r in rows],
            "building_id": [r.building_id for r in rows],
            "unit": [r.label for r in rows],
            "households": [r.households for r in rows],
            "entrance": [None if e is None else g for e, g in zip(ents, projected, strict=True)],
        }
    )


def to_wgs84_wkb(geoms: gpd.GeoSeries) -> list[bytes]:
    """Return the WKB of geometries reprojected to WGS84 (polygons as MultiPolygons)."""
    out = geoms.to_crs(WGS84)
    vals = np.asarray(out.values, dtype=object)
    multi = [shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in vals]
    return [shapely.to_wkb(g) for g in multi]
