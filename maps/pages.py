"""Page builders: one function per page, from data only (the API and CLI gather the data).

Every page has the same frame (``_frame``): no tile server — the city, district
and community outlines are the base layer, drawn from the data — a title panel
with the filters (and "no data in this area" when so), a ``wg-meta`` data block
(filters, definitions, totals), a layer control, and labels in Chinese and
English. ``render`` returns the HTML, linking the vendored assets on the server
or inlining them for a file that opens with no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import folium
from branca.element import Element, Figure

from maps import assets, codec
from maps.colours import BLUES, ORANGES, REDS, Classes, count_classes, share_classes
from maps.elements import (
    ClusterLayer,
    DataBlock,
    FitBounds,
    HeatLayer,
    WanggeLayer,
    legend_panel,
    title_panel,
)

#: Measures a coverage page can colour grids by: (label zh, label en, kind, palette). Kinds:
#: ``count``; ``trouble`` (a count of something wrong: zero is drawn calm, never in an alarm
#: colour); ``share`` (0–1, red low → green high).
MEASURES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "households": ("户数", "households", "count", BLUES),
    "open": ("未办结事项", "open cases", "trouble", ORANGES),
    "overdue": ("超期事项", "overdue cases", "trouble", REDS),
    "visit_coverage": ("走访覆盖率", "visit coverage", "share", ()),
    "satisfaction": ("满意率", "satisfaction", "share", ()),
}

ROLES: dict[str, tuple[str, str, str]] = {
    "grid_worker": ("网格员", "grid worker", "#1f78b4"),
    "window_worker": ("窗口社工", "window worker", "#6a3d9a"),
    "volunteer": ("志愿者", "volunteer", "#33a02c"),
    "rider": ("骑手微网格员", "rider", "#ff7f00"),
    "police": ("社区民警", "police", "#0b1f5c"),
    "department_staff": ("部门人员", "department staff", "#8c510a"),
}

GRID_TIP = [
    ["网格", "grid", "code"],
    ["社区", "community", "community_name"],
    ["网格员", "worker", "worker"],
    ["党支部", "party branch", "branch"],
    ["户数", "households", "households"],
    ["未办结", "open", "open"],
    ["超期", "overdue", "overdue"],
    ["走访覆盖", "visited", "visit_coverage", "pct"],
    ["满意率", "satisfaction", "satisfaction", "pct"],
]
EMPTY = "此范围无数据 No data in this area"


def _frame(data: Mapping[str, Any], title: str, notes: list[str], empty: bool) -> folium.Map:
    bounds = data.get("bounds")
    centre = [31.7, 118.5] if not bounds else [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2]
    m = folium.Map(
        location=centre,
        zoom_start=12,
        tiles=None,
        prefer_canvas=True,
        attribution_control=False,
        control_scale=True,
        min_zoom=3,
        max_zoom=19,
    )
    # no tile layer carries the zoom range: the clusters need the map's own
    m.options["max_zoom"] = 19
    m.options["min_zoom"] = 3
    root = cast(Figure, m.get_root())  # a folium.Map always sits in a Figure
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="favicon")
    m.default_js = assets.links([assets.LEAFLET_JS])
    m.default_css = assets.links([assets.LEAFLET_CSS])
    root.title = title
    WanggeLayer(
        "outlines", "boundaries", codec.table(**data["boundaries"]), "行政区界 Boundaries", overlay=False
    ).add_to(m)
    meta = dict(data.get("meta", {}))
    meta["empty"] = empty
    DataBlock("meta", meta).add_to(m)
    title_panel(title, notes, EMPTY if empty else None).add_to(m)
    return m


def _finish(m: folium.Map, bounds: list[float] | None) -> folium.Map:
    folium.LayerControl(collapsed=False).add_to(m)
    FitBounds(bounds).add_to(m)
    return m


def _notes(data: Mapping[str, Any]) -> list[str]:
    return [str(n) for n in data.get("notes", [])]


def _column(table: Mapping[str, Any], name: str) -> list[Any]:
    i = table["columns"].index(name)
    return [r[i] for r in table["rows"]]


def measure_classes(measure: str, values: list[Any]) -> Classes:
    """Return the colour classes of a measure over these values (see :data:`MEASURES`)."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; one of {', '.join(MEASURES)}")
    _, _, kind, palette = MEASURES[measure]
    if kind == "share":
        return share_classes()
    return count_classes(values, palette, calm_zero=kind == "trouble")


def colour_grids(grids: Mapping[str, Any], measure: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Colour the grids: a page table with a ``fill`` column (index into the legend's colours).

    Returns the table (with ``palette``) and the legend entries.
    """
    values = _column(grids, measure)
    classes = measure_classes(measure, values)
    legend = classes.legend()
    colours = [c for c, _ in legend]
    rows = [[*r, colours.index(classes.colour(v))] for r, v in zip(grids["rows"], values, strict=True)]
    table = codec.table([*grids["columns"], "fill"], rows, palette=colours, measure=measure)
    return table, legend


def _grid_layer(m: folium.Map, grids: Mapping[str, Any], measure: str, name: str) -> None:
    table, legend = colour_grids(grids, measure)
    zh, en, _, _ = MEASURES[measure]
    WanggeLayer(
        "polygons",
        "grids",
        table,
        name,
        {"tip": GRID_TIP, "title": "name", "fillOpacity": 0.65, "color": "#444", "palette": table["palette"]},
    ).add_to(m)
    legend_panel(f"{zh} {en}", legend).add_to(m)


def _heat_layer(m: folium.Map, heat: dict[str, Any], slider: bool, show: bool = True) -> None:
    HeatLayer("heat", "heat", heat, "事项热力 Incident heat", {"slider": slider}, show=show).add_to(m)


GAP_TIP = [
    ["楼栋", "building", "code"],
    ["网格", "grid", "grid"],
    ["户数", "households", "households"],
    ["必访户", "must-visit households", "must_visit"],
    ["未走访天数", "days since visit", "days"],
]


def _gap_layers(m: folium.Map, gaps: dict[str, Any], show: bool = True) -> None:
    cols = gaps["columns"]
    mv = cols.index("must_visit")
    must = codec.table(cols, [r for r in gaps["rows"] if r[mv] > 0])
    other = codec.table(cols, [r for r in gaps["rows"] if r[mv] == 0])
    WanggeLayer(
        "points",
        "gaps",
        other,
        "未走访楼栋 Buildings not visited",
        {"color": "#ff8c00", "radius": 4, "tip": GAP_TIP, "title": "未走访 Not visited"},
        show=show,
    ).add_to(m)
    WanggeLayer(
        "points",
        "gaps-must",
        must,
        "必访户未走访 Must-visit not visited",
        {
            "color": "#d00000",
            "radiusBy": "must_visit",
            "tip": GAP_TIP,
            "title": "必访户未走访 Must-visit not visited",
        },
        show=show,
    ).add_to(m)


PEOPLE_TIP = [
    ["编号", "id", "id"],
    ["在岗", "on duty", "on_duty", "bool"],
    ["位置时间", "position at", "at"],
]


def _people_layers(m: folium.Map, people: dict[str, Any], show: bool = True) -> list[tuple[str, str]]:
    role_i = people["columns"].index("role")
    cols = [c for i, c in enumerate(people["columns"]) if i != role_i]
    legend = []
    by_role: dict[str, list[list[Any]]] = {}
    for r in people["rows"]:
        by_role.setdefault(r[role_i], []).append(r[:role_i] + r[role_i + 1 :])
    for role, (zh, en, colour) in ROLES.items():
        rows = by_role.get(role, [])
        if not rows:
            continue
        ClusterLayer(
            "points",
            f"people-{role}",
            codec.table(cols, rows),
            f"{zh} {en} ({len(rows)})",
            {
                "cluster": True,
                "color": colour,
                "hollowBy": "on_duty",
                "tip": PEOPLE_TIP,
                "title": f"{zh} {en}",
            },
            show=show,
        ).add_to(m)
        legend.append((colour, f"{zh} {en}"))
    legend.append(("#ffffff", "空心 = 不在岗 hollow = off duty"))
    return legend


def coverage_page(data: Mapping[str, Any], measure: str = "households") -> folium.Map:
    """Grids coloured by ``measure`` with incident heat, visit gaps and people on top."""
    empty = not data["grids"]["rows"]
    m = _frame(data, "网格覆盖 Grid coverage", _notes(data), empty)
    zh, en, _, _ = MEASURES[measure]
    _grid_layer(m, data["grids"], measure, f"网格：{zh} Grids: {en}")
    if "heat" in data:
        _heat_layer(m, data["heat"], slider=False)
    if "gaps" in data:
        _gap_layers(m, data["gaps"])
    if "people" in data:
        _people_layers(m, data["people"], show=True)
    return _finish(m, data.get("bounds"))


def heatmap_page(data: Mapping[str, Any]) -> folium.Map:
    """Incident heat for a time window (monthly frames with a slider) over grid outlines."""
    empty = not data["heat"]["frames"]
    m = _frame(data, "事项热力图 Incident heatmap", _notes(data), empty)
    WanggeLayer(
        "polygons",
        "grids",
        codec.table(**data["grids"]),
        "网格 Grids",
        {"fillOpacity": 0.05, "color": "#555", "tip": GRID_TIP[:4]},
    ).add_to(m)
    _heat_layer(m, data["heat"], slider=True)
    return _finish(m, data.get("bounds"))


def visits_page(data: Mapping[str, Any]) -> folium.Map:
    """Draw the buildings not visited within N days (must-visit first) over grid visit coverage."""
    empty = not data["grids"]["rows"]
    m = _frame(data, "走访覆盖 Visit coverage", _notes(data), empty)
    _grid_layer(m, data["grids"], "visit_coverage", "网格走访覆盖率 Grid visit coverage")
    _gap_layers(m, data["gaps"])
    return _finish(m, data.get("bounds"))


def people_page(data: Mapping[str, Any]) -> folium.Map:
    """Workers, volunteers and riders at their last position, clustered by role."""
    empty = not data["people"]["rows"]
    m = _frame(data, "人员分布 People", _notes(data), empty)
    WanggeLayer(
        "polygons",
        "grids",
        codec.table(**data["grids"]),
        "网格 Grids",
        {"fillOpacity": 0.05, "color": "#777", "tip": GRID_TIP[:4]},
    ).add_to(m)
    legend = _people_layers(m, data["people"])
    legend_panel("角色 Role", legend).add_to(m)
    return _finish(m, data.get("bounds"))


PARTY_TIP = [
    ["网格", "grid", "code"],
    ["党支部", "party branch", "branch"],
    ["党员", "members", "members"],
    ["党小组", "groups", "groups"],
    ["楼栋覆盖", "buildings covered", "group_coverage", "pct"],
]
GROUP_TIP = [
    ["党小组", "group", "code"],
    ["楼栋", "buildings", "buildings"],
    ["党员", "members", "members"],
]


def party_page(data: Mapping[str, Any]) -> folium.Map:
    """Committee → branch → group coverage: grids by the share of buildings a group covers."""
    grids = data["grids"]
    empty = not grids["rows"]
    m = _frame(data, "党建三级覆盖 Party tiers", _notes(data), empty)
    WanggeLayer(
        "polygons",
        "committees",
        codec.table(**data["committees"]),
        "社区党委 Committees",
        {
            "fillOpacity": 0,
            "color": "#b30000",
            "weight": 3,
            "tip": [["党委", "committee", "committee"], ["党员", "members", "members"]],
        },
    ).add_to(m)
    classes = share_classes()
    legend = [("#7f7f7f", "无党支部 no branch"), *classes.legend()]
    colours = [c for c, _ in legend]
    branch_i = grids["columns"].index("branch")
    rows = [
        [*r, 0 if not r[branch_i] else colours.index(classes.colour(v))]
        for r, v in zip(grids["rows"], _column(grids, "group_coverage"), strict=True)
    ]
    table = codec.table([*grids["columns"], "fill"], rows, palette=colours)
    WanggeLayer(
        "polygons",
        "grids",
        table,
        "网格党支部 Grid branches",
        {"tip": PARTY_TIP, "title": "name", "fillOpacity": 0.55, "palette": colours, "dashBy": "branch"},
    ).add_to(m)
    WanggeLayer(
        "points",
        "groups",
        codec.table(**data["groups"]),
        "楼栋党小组 Building groups",
        {"color": "#b30000", "radiusBy": "buildings", "tip": GROUP_TIP, "title": "楼栋党小组 Building group"},
    ).add_to(m)
    legend_panel("党小组楼栋覆盖 Buildings covered by groups", legend).add_to(m)
    return _finish(m, data.get("bounds"))


MOVED_TIP = [
    ["楼栋", "building", "code"],
    ["户数", "households", "households"],
    ["原网格", "from grid", "from_grid"],
    ["新网格", "to grid", "to_grid"],
]


def plan_page(data: Mapping[str, Any]) -> folium.Map:
    """Draw a draft plan over the active one, the buildings that change grid highlighted."""
    empty = not data["draft"]["rows"]
    m = _frame(data, "规划对比 Plan comparison", _notes(data), empty)
    WanggeLayer(
        "polygons",
        "active",
        codec.table(**data["active"]),
        "现行网格 Active grids",
        {
            "fillOpacity": 0.08,
            "fillColor": "#1f78b4",
            "color": "#1f78b4",
            "weight": 2,
            "tip": [["现行网格", "active grid", "code"], ["户数", "households", "households"]],
        },
    ).add_to(m)
    WanggeLayer(
        "polygons",
        "draft",
        codec.table(**data["draft"]),
        "草案网格 Draft grids",
        {
            "fillOpacity": 0.0,
            "color": "#e31a1c",
            "weight": 2,
            "dashArray": "6 4",
            "tip": [
                ["草案网格", "draft grid", "code"],
                ["户数", "households", "households"],
                ["迁入楼栋", "buildings moved in", "moved_in"],
                ["估算户数", "households estimated", "households_estimated"],
                ["超上限", "over maximum", "over_maximum"],
            ],
        },
    ).add_to(m)
    WanggeLayer(
        "points",
        "moved",
        codec.table(**data["moved"]),
        "调整楼栋 Moved buildings",
        {"color": "#ff00aa", "radius": 6, "tip": MOVED_TIP, "title": "调整楼栋 Moved building"},
    ).add_to(m)
    legend_panel(
        "图例 Legend",
        [
            ("#1f78b4", "现行网格 active grid"),
            ("#e31a1c", "草案网格 draft grid (dashed)"),
            ("#ff00aa", "调整楼栋 moved building"),
        ],
    ).add_to(m)
    return _finish(m, data.get("bounds"))


def render(m: folium.Map, inline: bool = False) -> str:
    """Render the page's HTML; ``inline`` puts the vendored assets into it (for a file)."""
    html = m.get_root().render()
    return assets.inline(html) if inline else html
