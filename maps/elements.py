"""Folium elements of the Wangge pages.

Every data layer embeds its data once, as JSON in a
``<script type="application/json" id="wg-<key>">`` block, and builds its
Leaflet layer from it with ``maps/static/wangge/wangge-maps.js``. The data
blocks are what tests (and anyone) can read back out of a page; the layers are
ordinary Folium ``Layer`` objects, so ``folium.LayerControl`` lists them.
"""

from __future__ import annotations

import html
import json
from typing import Any

from branca.element import CssLink, Element, Figure, JavascriptLink, MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer
from jinja2 import Template

from maps import assets

try:  # orjson (a dependency of tipg) is several times faster on a megabyte of data
    import orjson

    def _json(data: Any) -> str:
        return orjson.dumps(data).decode()
except ImportError:  # pragma: no cover - the standard library does the same, slower

    def _json(data: Any) -> str:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(data: Any) -> str:
    """Compact JSON that is safe inside a ``<script>`` block."""
    return _json(data).replace("</", "<\\/").replace("<!--", "<\\!--")


class _Raw(Element):
    """Text put into the page as it is (branca's ``Element`` would compile it as a template)."""

    def __init__(self, text: str):
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        """Return the text as it is."""
        return self._text


class RawMacroElement(MacroElement):
    """A ``MacroElement`` whose rendered macros are not compiled again as Jinja templates.

    Branca wraps each macro's output in ``Element(text)``, which parses it as a
    template: slow for a megabyte of data, and a data value containing ``{{``
    would be evaluated. Here the output goes in verbatim.
    """

    # branca's own MacroElement.render returns None too (its base Element.render says str)
    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        """Add the links and the rendered macros to the figure, verbatim."""
        figure = self.get_root()
        assert isinstance(figure, Figure), "render inside a Figure"
        for name, url in getattr(self, "default_js", []):
            figure.header.add_child(JavascriptLink(url), name=name)
        for name, url in getattr(self, "default_css", []):
            figure.header.add_child(CssLink(url), name=name)
        module = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = module.get(part)
            if macro is not None:
                getattr(figure, part).add_child(_Raw(macro(self, kwargs)), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)


class DataBlock(RawMacroElement):
    """A ``<script type="application/json" id="wg-<key>">`` block holding one layer's data."""

    _template = Template(
        """{% macro html(this, kwargs) %}<script type="application/json" id="wg-{{ this.key }}">"""
        """{{ this.payload }}</script>{% endmacro %}"""
    )

    def __init__(self, key: str, data: Any):
        super().__init__()
        self._name = "DataBlock"
        self.key = key
        self.payload = dumps(data)


class WanggeLayer(RawMacroElement, JSCSSMixin, Layer):
    """A layer built in the browser by ``wangge.<kind>("wg-<key>", options)``."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}<script type="application/json" id="wg-{{ this.key }}">"""
        """{{ this.payload }}</script>{% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = wangge.{{ this.kind }}("wg-{{ this.key }}",
            {{ this.options_json }}, {{ this._parent.get_name() }});
        {% if this.show %}{{ this.get_name() }}.addTo({{ this._parent.get_name() }});{% endif %}
        {% endmacro %}
        """
    )
    default_js = assets.links([assets.WANGGE_JS])
    default_css = assets.links([assets.WANGGE_CSS])

    def __init__(
        self,
        kind: str,
        key: str,
        data: Any,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        overlay: bool = True,
        show: bool = True,
        control: bool = True,
    ):
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self._name = "WanggeLayer"
        self.kind = kind
        self.key = key
        self.payload = dumps(data)
        self.options_json = dumps(options or {})


class HeatLayer(WanggeLayer):
    """A heat layer (Leaflet.heat) built from a ``wg-<key>`` block."""

    default_js = assets.links([assets.WANGGE_JS, assets.HEAT_JS])


class ClusterLayer(WanggeLayer):
    """A layer of points clustered by Leaflet.markercluster."""

    default_js = assets.links([assets.WANGGE_JS, assets.CLUSTER_JS])
    default_css = assets.links([assets.WANGGE_CSS, *assets.CLUSTER_CSS])


class Panel(RawMacroElement):
    """A boxed HTML panel (title, notes, legend) at a corner of the map; text is escaped."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
          var c = L.control({position: {{ this.position|tojson }}});
          c.onAdd = function () {
            var d = L.DomUtil.create("div", {{ this.css_class|tojson }});
            d.innerHTML = {{ this.inner|tojson }};
            return d;
          };
          c.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, inner_html: str, position: str = "topright", css_class: str = "wg-box"):
        super().__init__()
        self._name = "Panel"
        self.inner = inner_html
        self.position = position
        self.css_class = css_class


def title_panel(title: str, notes: list[str], empty_message: str | None) -> Panel:
    """Build the title panel: the page title, its filters and, for an empty area, a message saying so."""
    parts = [f"<h4>{html.escape(title)}</h4>"]
    parts += [f"<div>{html.escape(n)}</div>" for n in notes]
    if empty_message:
        parts.append(f"<div class='wg-empty' id='wg-empty'>{html.escape(empty_message)}</div>")
    return Panel("".join(parts), position="topleft", css_class="wg-box wg-title")


def legend_panel(title: str, entries: list[tuple[str, str]]) -> Panel:
    """Build a legend panel: ``entries`` are (CSS colour, label)."""
    rows = "".join(
        f"<div><i style='background:{html.escape(c)}'></i>{html.escape(label)}</div>" for c, label in entries
    )
    return Panel(f"<h4>{html.escape(title)}</h4>{rows}", position="bottomright", css_class="wg-box wg-legend")


class FitBounds(RawMacroElement):
    """Fit the view to [minx, miny, maxx, maxy] (WGS84) and mark the page ready."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        wangge.fit({{ this._parent.get_name() }}, {{ this.bounds|tojson }});
        window.wanggeReady = true;
        {% endmacro %}
        """
    )

    def __init__(self, bounds: list[float] | None):
        super().__init__()
        self._name = "FitBounds"
        self.bounds = bounds
