"""Vector tiles of grids, buildings and incidents, limited to the caller's area.

A tile is addressed by :class:`TileKey`: the layer, ``z/x/y`` (XYZ, Web
Mercator), **the area** it is cut for and, for incidents, the case filter
(item, category, period: a heatmap of one kind or one month at any zoom), so that anything that keeps tiles
(a cache, a proxy keyed by this) never hands one area's tile to another
caller. The server keeps none itself; HTTP responses are ``private``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import InvalidInput, NotFound
from api.services.areas.scope import visible_area
from api.store.sql import tiles as q
from api.store.sql.tiles import CaseFilter

_Y = re.compile(r"^(\d{1,8})(?:\.(?:mvt|pbf))?$")


@dataclass(frozen=True)
class TileLayer:
    """One tile layer as QGIS and MapLibre take it (a TileJSON-like entry)."""

    id: str
    tiles: list[str]
    minzoom: int
    maxzoom: int
    format: str = "mvt"
    crs: str = "EPSG:3857"
    scheme: str = "xyz"


@dataclass(frozen=True)
class TileKey:
    """What a tile's bytes depend on: layer, position, the area it is cut for and the case filter."""

    layer: str
    z: int
    x: int
    y: int
    community: str | None
    district: str | None
    cases: CaseFilter = CaseFilter()
    #: the caller's city (None: every city)
    city: str | None = None


def case_filter(
    item: str | None = None,
    category: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> CaseFilter:
    """Check the case filter of incident tiles (times carry their offset; ``since`` before ``until``).

    Raises
    ------
    InvalidInput
        A time without an offset, or an empty window (the error names the field).
    """
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("give a time zone (e.g. 2024-01-01T00:00:00+08:00)", loc=["query", name])
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            f"empty time window: since ({since.isoformat()}) must be before until ({until.isoformat()})",
            loc=["query", "since"],
        )
    return CaseFilter(item, category, since, until)


def layers(base_url: str) -> list[TileLayer]:
    """List the tile layers with their URL templates under ``base_url``."""
    base = base_url.rstrip("/")
    return [
        TileLayer(name, [f"{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt"], q.MIN_ZOOM[name], q.MAX_ZOOM)
        for name in q.LAYERS
    ]


def tile_key(
    principal: Principal, layer: str, z: int, x: int, y: str, cases: CaseFilter = CaseFilter()
) -> TileKey:
    """Check a tile address and key it to the caller's area.

    Parameters
    ----------
    principal
        The caller: a scoped token's tiles hold only its area's features.
    layer
        ``grids``, ``buildings`` or ``incidents``.
    z, x
        Zoom and column.
    y
        The row, optionally with ``.mvt`` or ``.pbf``.
    cases
        Which cases an incident tile holds (:func:`case_filter`; other layers ignore it).

    Raises
    ------
    NotFound
        No such layer.
    InvalidInput
        ``z``, ``x`` or ``y`` out of range or malformed (the error names it).
    """
    if layer not in q.LAYERS:
        raise NotFound(f"no tile layer {layer!r}; layers: {', '.join(q.LAYERS)}", loc=["path", "layer"])
    if not 0 <= z <= q.MAX_ZOOM:
        raise InvalidInput(f"z must be between 0 and {q.MAX_ZOOM}, got {z}", loc=["path", "z"])
    m = _Y.match(y)
    if m is None:
        raise InvalidInput("y must be a tile row number, optionally with .mvt or .pbf", loc=["path", "y"])
    row = int(m.group(1))
    n = 1 << z
    for name, v in (("x", x), ("y", row)):
        if not 0 <= v < n:
            raise InvalidInput(
                f"{name} must be between 0 and {n - 1} at zoom {z}, got {v}", loc=["path", name]
            )
    area = visible_area(principal)
    return TileKey(
        layer,
        z,
        x,
        row,
        area.community,
        area.district,
        cases if layer == "incidents" else CaseFilter(),
        area.city,
    )


async def tile(
    conn: AsyncConnection,
    principal: Principal,
    layer: str,
    z: int,
    x: int,
    y: str,
    cases: CaseFilter = CaseFilter(),
) -> bytes:
    """Cut one tile for the caller's area: its MVT bytes (empty when it has no features there).

    Raises
    ------
    NotFound, InvalidInput
        As :func:`tile_key`.
    """
    key = tile_key(principal, layer, z, x, y, cases)
    return await q.tile(
        conn, key.layer, key.z, key.x, key.y, key.community, key.district, key.cases, key.city
    )
