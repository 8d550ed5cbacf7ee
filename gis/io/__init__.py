"""Pure readers for planners' data files: no database, no HTTP.

* :mod:`gis.io.vector` — GeoJSON, GeoPackage, Shapefile (pyogrio), any CRS,
  including GCJ-02/BD-09 stated by the caller;
* :mod:`gis.io.osm` — OpenStreetMap extracts (PBF/XML) via pyosmium:
  buildings (with ``building:levels``) and streets (``highway`` ways);
* :mod:`gis.io.checks` — invalid geometries reported, repaired only on request;
* :mod:`gis.io.households` — households estimated from footprint × floors.

Every reader returns WGS84 (EPSG:4326) GeoDataFrames plus a report of what it
found; nothing is fixed silently.
"""

from gis.io.errors import ReadError

__all__ = ["ReadError"]
