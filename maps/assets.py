"""The vendored JavaScript/CSS the map pages use, and how a page links or inlines them.

No page loads anything from outside the server: Leaflet, Leaflet.heat and
Leaflet.markercluster are vendored (from the npm registry, MIT/BSD, licence
files beside them) under ``maps/static/``. The API serves that folder at
``/maps/static/``; a page written to a file by the CLI gets them inlined
(images as ``data:`` URIs) so that it opens with no network at all.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: URL prefix under which the API serves ``STATIC_DIR``.
STATIC_URL = "/maps/static"

LEAFLET_JS = ("leaflet", "leaflet/leaflet.js")
LEAFLET_CSS = ("leaflet_css", "leaflet/leaflet.css")
WANGGE_JS = ("wangge_maps", "wangge/wangge-maps.js")
WANGGE_CSS = ("wangge_maps_css", "wangge/wangge-maps.css")
HEAT_JS = ("leaflet_heat", "leaflet.heat/leaflet-heat.js")
CLUSTER_JS = ("markercluster", "leaflet.markercluster/leaflet.markercluster.js")
CLUSTER_CSS = (
    ("markercluster_css", "leaflet.markercluster/MarkerCluster.css"),
    ("markercluster_default_css", "leaflet.markercluster/MarkerCluster.Default.css"),
)


def url(rel: str) -> str:
    """Return the server URL of a vendored file."""
    return f"{STATIC_URL}/{rel}"


def links(items: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Folium ``default_js``/``default_css`` entries pointing at the server's own copies."""
    return [(name, url(rel)) for name, rel in items]


_SCRIPT = re.compile(r'<script src="' + re.escape(STATIC_URL) + r'/([^"]+)"></script>')
_CSS = re.compile(r'<link rel="stylesheet" href="' + re.escape(STATIC_URL) + r'/([^"]+)"\s*/>')
_CSS_URL = re.compile(r"url\((['\"]?)([^)'\"]+)\1\)")
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}


def _static_file(rel: str) -> Path:
    path = (STATIC_DIR / rel).resolve()
    if STATIC_DIR not in path.parents or not path.is_file():
        raise FileNotFoundError(f"no vendored asset {rel}")
    return path


def _inline_css(rel: str) -> str:
    css = _static_file(rel).read_text(encoding="utf-8")
    base = (STATIC_DIR / rel).parent

    def data_uri(m: re.Match[str]) -> str:
        target = m.group(2)
        if target.startswith(("data:", "#")):
            return m.group(0)
        path = (base / target).resolve()
        if not path.is_file():
            return m.group(0)
        mime = _MIME.get(path.suffix, "application/octet-stream")
        return f"url(data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()})"

    return _CSS_URL.sub(data_uri, css)


def inline(html: str) -> str:
    """Replace links to the server's assets by their content: a page that needs no server."""
    html = _SCRIPT.sub(
        lambda m: (
            "<script>"
            + _static_file(m.group(1)).read_text(encoding="utf-8").replace("</script", "<\\/script")
            + "</script>"
        ),
        html,
    )
    return _CSS.sub(lambda m: "<style>" + _inline_css(m.group(1)) + "</style>", html)
