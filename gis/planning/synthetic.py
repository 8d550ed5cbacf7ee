"""Deterministic synthetic communities for tests and benchmarks.

A community is an irregular polygon crossed by a jittered street lattice
(some streets stop short, leaving dead ends) with residential slabs, villas
and small non-residential buildings inside the blocks. Coordinates are in
UTM 50N (EPSG:32650) around Ma'anshan so the data looks like the real thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

CRS = "EPSG:32650"
ORIGIN = (668_000.0, 3_505_000.0)


@dataclass(frozen=True)
class SyntheticCommunity:
    """Inputs of one synthetic community (all in :data:`CRS`)."""

    community: shapely.Polygon
    buildings: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    code: str


def synthetic_community(
    seed: int = 0,
    *,
    n_buildings: int = 2000,
    households: int = 6000,
    size: tuple[float, float] = (1400.0, 1100.0),
    street_spacing: float = 180.0,
    origin: tuple[float, float] = ORIGIN,
    code: str | None = None,
) -> SyntheticCommunity:
    """Generate one community with streets and buildings.

    Parameters
    ----------
    seed : int
        Random seed; the same seed always yields the same community.
    n_buildings : int
        Number of buildings (about a third residential slabs).
    households : int
        Approximate total households (exact up to rounding).
    size : tuple of float
        Width and height of the bounding box in metres.
    street_spacing : float
        Mean distance between parallel streets in metres.
    origin : tuple of float
        South-west corner in EPSG:32650 metres.
    code : str, optional
        12-digit community code; derived from the seed by default.

    Returns
    -------
    SyntheticCommunity
    """
    rng = np.random.default_rng(seed)
    w, h = size
    x0, y0 = origin
    # Irregular outline: a jittered octagon-ish polygon inside the box.
    angles = np.sort(rng.uniform(0, 2 * np.pi, 14))
    rx = w / 2 * rng.uniform(0.85, 1.0, angles.size)
    ry = h / 2 * rng.uniform(0.85, 1.0, angles.size)
    cx, cy = x0 + w / 2, y0 + h / 2
    ring = np.column_stack(
        [
            cx + np.clip(np.cos(angles) * rx * 1.25, -w / 2, w / 2),
            cy + np.clip(np.sin(angles) * ry * 1.25, -h / 2, h / 2),
        ]
    )
    community = shapely.make_valid(shapely.Polygon(ring))
    if community.geom_type != "Polygon":
        community = max(shapely.get_parts(community), key=lambda g: g.area)

    lines = []
    xs = np.arange(x0 + street_spacing * 0.6, x0 + w, street_spacing)
    xs = xs + rng.normal(0, street_spacing * 0.12, xs.size)
    ys = np.arange(y0 + street_spacing * 0.6, y0 + h, street_spacing)
    ys = ys + rng.normal(0, street_spacing * 0.12, ys.size)
    for x in xs:
        a, b = y0 - 50, y0 + h + 50
        if rng.random() < 0.25:  # dead-end street
            b = y0 + h * rng.uniform(0.4, 0.8)
        tilt = rng.normal(0, 15)
        lines.append(shapely.LineString([(x - tilt, a), (x + tilt, b)]))
    for y in ys:
        a, b = x0 - 50, x0 + w + 50
        if rng.random() < 0.25:
            a = x0 + w * rng.uniform(0.2, 0.6)
        tilt = rng.normal(0, 15)
        lines.append(shapely.LineString([(a, y - tilt), (b, y + tilt)]))
    streets = gpd.GeoDataFrame({"street_id": np.arange(len(lines)), "geometry": lines}, crs=CRS)

    # Buildings: jittered points inside the community, away from streets.
    street_zone = shapely.buffer(shapely.union_all(lines), 9.0)
    usable = community.buffer(-6.0).difference(street_zone)
    minx, miny, maxx, maxy = usable.bounds
    pts: list[np.ndarray] = []
    need = n_buildings
    while need > 0:
        cand = rng.uniform((minx, miny), (maxx, maxy), size=(need * 3, 2))
        ok = shapely.contains_xy(usable, cand[:, 0], cand[:, 1])
        pts.append(cand[ok][:need])
        need -= int(min(ok.sum(), need))
    xy = np.concatenate(pts)[:n_buildings]
    kind = rng.choice(3, size=n_buildings, p=[0.3, 0.3, 0.4])  # slab, villa, shed/shop
    lw = np.where(
        kind[:, None] == 0,
        np.column_stack([rng.uniform(30, 50, n_buildings), rng.uniform(10, 14, n_buildings)]),
        np.where(
            kind[:, None] == 1,
            np.column_stack([rng.uniform(10, 16, n_buildings), rng.uniform(8, 12, n_buildings)]),
            np.column_stack([rng.uniform(5, 9, n_buildings), rng.uniform(4, 7, n_buildings)]),
        ),
    )
    boxes = shapely.box(
        xy[:, 0] - lw[:, 0] / 2, xy[:, 1] - lw[:, 1] / 2, xy[:, 0] + lw[:, 0] / 2, xy[:, 1] + lw[:, 1] / 2
    )
    # Households: slabs carry most, villas 1, sheds/shops none.
    raw = np.where(kind == 0, rng.uniform(0.5, 1.5, n_buildings), 0.0)
    villas = int((kind == 1).sum())
    rest = max(households - villas, 0)
    hh_slab = np.floor(raw / max(raw.sum(), 1e-9) * rest).astype(int)
    short = rest - int(hh_slab.sum())
    slab_idx = np.flatnonzero(kind == 0)
    if slab_idx.size and short > 0:
        hh_slab[rng.choice(slab_idx, short, replace=short > slab_idx.size)] += 1
    hh = np.where(kind == 1, 1, hh_slab).astype(int)
    if code is None:
        code = f"340503{(seed % 1000):03d}{(seed // 1000 % 1000) + 1:03d}"
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{seed}-{i:05d}" for i in range(n_buildings)],
            "households": hh,
            "geometry": boxes,
        },
        crs=CRS,
    )
    return SyntheticCommunity(community=community, buildings=buildings, streets=streets, code=code)
