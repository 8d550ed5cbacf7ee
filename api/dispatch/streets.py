"""Loading a street network for walking distances: noded segments with vertex ids.

The demo city brings its own synthetic network; a real one comes from an
OpenStreetMap extract (``gis.io.osm.read_osm_streets``), is split at its
junctions (``gis.routing.node_network``) and replaces the city's streets in
one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import psycopg

from api.db.bulk import copy_frame
from api.db.engine import psycopg_dsn
from gis.routing import node_network

ProgressFn = Callable[[str, int, int], None]


def streets_frame(lines: gpd.GeoDataFrame, city_code: str, vertex_offset: int = 0) -> pd.DataFrame:
    """Rows for the ``streets`` table from street lines (WGS84; ``name``/``kind`` columns optional)."""
    if lines.crs is not None and lines.crs.to_epsg() != 4326:
        raise ValueError(f"street lines must be WGS84 (EPSG:4326), got {lines.crs}")
    idx, segs, src, dst, length = node_network(list(lines.geometry.values))
    names = lines["name"].tolist() if "name" in lines else [None] * len(lines)
    kinds = lines["kind"].tolist() if "kind" in lines else ["street"] * len(lines)
    return pd.DataFrame({
        "city_code": city_code,
        "name": [names[i] for i in idx],
        "kind": [str(kinds[i] or "street")[:16] for i in idx],
        "source": src + vertex_offset,
        "target": dst + vertex_offset,
        "length_m": length,
        "geom": segs,
    })


def import_streets(
    url: str,
    lines: gpd.GeoDataFrame,
    city_code: str,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Replace the city's street network with ``lines``, noded; all or nothing."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        conn.execute("LOCK TABLE streets IN SHARE ROW EXCLUSIVE MODE")
        deleted = conn.execute("DELETE FROM streets WHERE city_code = %s", (city_code,)).rowcount
        row = conn.execute("SELECT coalesce(max(greatest(source, target)), 0) FROM streets").fetchone()
        frame = streets_frame(lines, city_code, int(row[0]) if row else 0)
        n = copy_frame(conn, "streets", frame, progress)
        conn.commit()
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE streets")
    vertices = len(set(frame["source"]) | set(frame["target"]))
    return {"lines": len(lines), "segments": n, "vertices": vertices, "replaced": deleted}


def import_osm_streets(
    url: str, path: str | Path, city_code: str, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Streets of an OpenStreetMap extract (PBF or XML) into the store, noded for routing."""
    from gis.io.osm import read_osm_streets

    return import_streets(url, read_osm_streets(path), city_code, progress)
