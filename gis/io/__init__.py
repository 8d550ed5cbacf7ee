"""Pure readers for planners' data files: no database, no HTTP.

Every reader returns WGS84 (EPSG:4326) data plus an
:class:`~gis.io.report.ImportReport` — rows read, imported, repaired and
skipped, each with its id and reason — and never changes or drops anything
without saying so.

* :mod:`gis.io.readers` — buildings, streets, areas from any supported file
  (``load_*`` → frame + report; ``read_*`` → frame + dict, the older form);
* :mod:`gis.io.vector` — GeoJSON, GeoPackage, Shapefile (pyogrio): CRS from
  the caller, the file, or the numbers when they can mean one thing
  (:mod:`gis.io.crs_detect`); text encodings stated, detected or asked for
  (:mod:`gis.io.encoding`); ``within`` reads only an area of interest;
* :mod:`gis.io.osm` — OpenStreetMap extracts (PBF/XML) via pyosmium,
  streamed: footprints with courtyards, ways clipped to the extract;
* :mod:`gis.io.checks` — Z dropped, collections unpacked, invalid
  geometries refused, repaired (what changed is listed) or skipped;
* :mod:`gis.io.footprints` — duplicate and overlapping footprints;
* :mod:`gis.io.households` — households estimated from footprint × floors;
* :mod:`gis.io.tables` — CSV/Excel tables and points with coordinates;
* :mod:`gis.io.registry` — households from the resident registry;
* :mod:`gis.io.boundaries` — community boundaries that overlap, leave gaps
  or cut buildings, and the planner's resolutions.
"""

from gis.io.errors import ReadError
from gis.io.report import ImportReport, Item

__all__ = ["ImportReport", "Item", "ReadError"]
