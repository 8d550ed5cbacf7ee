"""Mapbox vector tiles made by PostGIS (``ST_AsMVT`` / ``ST_AsMVTGeom``).

One query per layer; each clips to the tile envelope (``ST_TileEnvelope``, Web
Mercator) with a 64-unit buffer on a 4096 extent. Geometries are stored in
WGS84: rows are found with the envelope transformed to 4326 (GiST index) and
only those rows are transformed to 3857. Incidents below zoom 15 are clustered
per 1/64 of the tile (``count`` / ``open`` per cluster), so a city-wide tile
stays small; from zoom 15 each case is its own feature. Personal fields
(reporter, description, address) are never in a tile.

Every query takes an area (``:community`` / ``:district``, either or none): rows
outside it are not in the tile. The incident queries also take the case filters
``:item``, ``:category`` and the window ``:since`` / ``:until`` (each None: any),
so a heatmap can be drawn for one item, category or period at any zoom.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.sql.incidents import SQL_OPEN, SQL_OVERDUE

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
#: Lowest zoom of each layer: below it a tile is empty (footprints are not drawn city-wide).
MIN_ZOOM = {"grids": 0, "buildings": 14, "incidents": 0}
#: Zoom from which incidents are single features (below: clusters).
INCIDENT_POINTS_ZOOM = 15
#: The layers, in the order ``GET /tiles`` lists them.
LAYERS = tuple(MIN_ZOOM)


def envelope() -> str:
    """Build the CTE ``env``: the tile in Web Mercator (``m``) and, buffered, in WGS84 (``w``)."""
    return f"""
    env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS m,
                   ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4326) AS w)
    """


def in_area(community_col: str) -> str:
    """Build the WHERE condition: a row of ``community_col`` lies in the area (community, district, city).

    A community code starts with its 6-digit district code; the row's ``city_code``
    (same alias) is its city.
    """
    city_col = community_col.rsplit(".", 1)[0] + ".city_code"
    return (
        f"(CAST(:community AS text) IS NULL OR {community_col} = :community) "
        f"AND (CAST(:district AS text) IS NULL OR left({community_col}, 6) = :district) "
        f"AND (CAST(:city AS text) IS NULL OR {city_col} = :city)"
    )


def incident_filter(alias: str = "i") -> str:
    """Build the WHERE condition of the case filters: item, category, ``since <= created_at < until``."""
    return (
        f"(CAST(:item AS text) IS NULL OR {alias}.item_code = :item) "
        f"AND (CAST(:category AS text) IS NULL OR {alias}.item_code IN "
        "(SELECT s.code FROM service_items s WHERE s.category = :category)) "
        f"AND (CAST(:since AS timestamptz) IS NULL OR {alias}.created_at >= :since) "
        f"AND (CAST(:until AS timestamptz) IS NULL OR {alias}.created_at < :until)"
    )


def mvt(layer: str, body: str) -> str:
    """Build the statement that encodes the rows of ``body`` (a ``geom`` column) as ``layer``."""
    return f"""
    WITH {envelope()}, f AS ({body})
    SELECT ST_AsMVT(f.*, '{layer}', {EXTENT}, 'geom') FROM f WHERE f.geom IS NOT NULL
    """


def mvt_geom(col: str) -> str:
    """Clip and encode a WGS84 geometry column for the tile (SQL)."""
    return f"ST_AsMVTGeom(ST_Transform({col}, 3857), env.m, {EXTENT}, {BUFFER}, true)"


#: Web Mercator of a WGS84 point by arithmetic (cheaper than ST_Transform for thousands of points).
_MX = "6378137.0 * radians(ST_X(i.location))"
_MY = "6378137.0 * ln(tan(pi() / 4 + radians(ST_Y(i.location)) / 2))"

_SQL: dict[str, str] = {
    "grids": mvt(
        "grids",
        f"""
        SELECT g.id, g.code, g.name, g.community_code AS community, g.households, g.buildings,
               g.worker_id, {mvt_geom("g.geom")} AS geom
        FROM grids g, env WHERE g.active AND g.geom && env.w AND {in_area("g.community_code")}""",
    ),
    "buildings": mvt(
        "buildings",
        f"""
        SELECT b.id, b.code, b.community_code AS community, b.grid_id, b.households, b.floors,
               {mvt_geom("b.geom")} AS geom
        FROM buildings b, env WHERE b.geom && env.w AND {in_area("b.community_code")}""",
    ),
    "incidents": mvt(
        "incidents",
        f"""
        SELECT i.id, i.item_code AS item, si.category, i.status, i.grid_id, ({SQL_OPEN}) AS open,
               ({SQL_OVERDUE}) AS overdue, extract(epoch FROM i.created_at)::bigint AS created,
               {mvt_geom("i.location")} AS geom
        FROM incidents i LEFT JOIN service_items si ON si.code = i.item_code, env
        WHERE i.location && env.w AND i.duplicate_of IS NULL AND {in_area("i.community_code")}
          AND {incident_filter("i")}""",
    ),
}

_INCIDENT_CLUSTERS = mvt(
    "incidents",
    f"""
    SELECT count(*) AS count, count(*) FILTER (WHERE c.open) AS open,
           ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(avg(c.mx), avg(c.my)), 3857),
                        env.m, {EXTENT}, {BUFFER}, true) AS geom
    FROM (SELECT {_MX} AS mx, {_MY} AS my, ({SQL_OPEN}) AS open
          FROM incidents i, env
          WHERE i.location && env.w AND ST_Intersects(i.location, env.w) AND i.duplicate_of IS NULL
            AND {in_area("i.community_code")} AND {incident_filter("i")}) c, env
    GROUP BY floor(c.mx / ((ST_XMax(env.m) - ST_XMin(env.m)) / 64)),
             floor(c.my / ((ST_XMax(env.m) - ST_XMin(env.m)) / 64)), env.m""",
)

_QUERIES: dict[str, TextClause] = {name: text(sql) for name, sql in _SQL.items()}
_CLUSTERS = text(_INCIDENT_CLUSTERS)


@dataclass(frozen=True)
class CaseFilter:
    """Which cases an incident tile holds (None: any)."""

    item: str | None = None
    category: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


async def tile(
    conn: AsyncConnection,
    layer: str,
    z: int,
    x: int,
    y: int,
    community: str | None = None,
    district: str | None = None,
    cases: CaseFilter = CaseFilter(),
    city: str | None = None,
) -> bytes:
    """Read the MVT bytes of one tile of ``layer`` in the area (empty when it has no features).

    ``cases`` filters the incidents layer (the other layers ignore it).
    """
    if z < MIN_ZOOM[layer]:
        return b""
    query = _CLUSTERS if layer == "incidents" and z < INCIDENT_POINTS_ZOOM else _QUERIES[layer]
    params = {"z": z, "x": x, "y": y, "community": community, "district": district, "city": city}
    if layer == "incidents":
        params.update(asdict(cases))
    data = (await conn.execute(query, params)).scalar_one()
    return bytes(data or b"")
