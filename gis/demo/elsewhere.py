"""A further demo city: the Ma'anshan template moved elsewhere and given another city's codes.

``wangge demo --city CODE`` loads more cities into one store (issue 16). Each is the
generated demo city (its own seed: its own people, cases, visits, tasks), with

* its **geometry translated** by whole offsets of the template's extent (so cities
  never overlap: :func:`slot_offset` lists the places, the loader picks the first
  whose box is free in the store);
* its **codes** moved to the city's prefix: a national code's first four digits are
  its prefecture city's (GB/T 2260), so ``340503001001`` (a community of Ma'anshan,
  340500) becomes ``340103001001`` in city 340100; building, grid and party codes,
  which start with their community's code, follow;
* its city's **name** on the city row and in addresses;
* its **idempotency keys** prefixed with the city (they are unique store-wide).

Ids are left as generated: the loader moves them past the store's (it knows them).
The catalogue (departments, service items) is shared by every city and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gis.demo.geometry import CITY_CODE

#: Columns holding area codes (national codes, or codes starting with one).
CODE_COLUMNS = ("code", "parent_code", "city_code", "community_code", "district_code", "street_code")
#: Tables whose rows are the shared catalogue, never moved.
SHARED = ("departments", "service_items")
#: Columns holding free text naming the city.
ADDRESS_COLUMNS = ("address",)
#: Size of a slot (degrees): the template's extent (about 1.0° × 0.77°) and a margin.
SLOT_DX = 1.1
SLOT_DY = 0.85
#: Cities of Anhui (code → Chinese name, English name): names for the demo's further cities.
ANHUI = {
    "340100": ("合肥市", "Hefei"),
    "340200": ("芜湖市", "Wuhu"),
    "340300": ("蚌埠市", "Bengbu"),
    "340400": ("淮南市", "Huainan"),
    "340500": ("马鞍山市", "Ma'anshan"),
    "340600": ("淮北市", "Huaibei"),
    "340700": ("铜陵市", "Tongling"),
    "340800": ("安庆市", "Anqing"),
    "341000": ("黄山市", "Huangshan"),
    "341100": ("滁州市", "Chuzhou"),
    "341200": ("阜阳市", "Fuyang"),
    "341300": ("宿州市", "Suzhou"),
    "341500": ("六安市", "Lu'an"),
    "341600": ("亳州市", "Bozhou"),
    "341700": ("池州市", "Chizhou"),
    "341800": ("宣城市", "Xuancheng"),
}
TEMPLATE_NAME = "马鞍山市"


@dataclass(frozen=True)
class CityName:
    """What a further city is called."""

    code: str
    name: str
    name_en: str


def city_name(code: str) -> CityName:
    """Return the name of a city code (an Anhui city's own, else a made-up one).

    Raises
    ------
    ValueError
        The code is not a 6-digit prefecture code (``dd dd 00``).
    """
    if len(code) != 6 or not code.isdigit() or not code.endswith("00") or code[2:4] == "00":
        raise ValueError(f"a city code has six digits ending in 00 (e.g. 340100), got {code!r}")
    name, name_en = ANHUI.get(code, (f"示范{code}市", f"Demo city {code}"))
    return CityName(code, name, name_en)


def slot_offset(slot: int) -> tuple[float, float]:
    """Return the (dx, dy) in degrees of place number ``slot`` (0: where the template lies).

    Places go round the template in rings (west first: Anhui lies west of Ma'anshan).
    """
    if slot == 0:
        return 0.0, 0.0
    ring, seen = 1, 1
    while True:
        cells = [
            (i, j)
            for i in range(-ring, ring + 1)
            for j in range(-ring, ring + 1)
            if max(abs(i), abs(j)) == ring
        ]
        cells.sort(key=lambda c: (c[0] > 0, abs(c[1]), -c[1], c[0]))
        if slot < seen + len(cells):
            i, j = cells[slot - seen]
            return i * SLOT_DX, j * SLOT_DY
        seen += len(cells)
        ring += 1


def _recode(values: pd.Series, old: str, new: str) -> pd.Series:
    def one(v: object) -> object:
        if not isinstance(v, str):
            return v
        if v.startswith(old):
            return new + v[len(old) :]
        if v.startswith("P" + old):  # party organisations: P + community code ...
            return "P" + new + v[len(old) + 1 :]
        return v

    return values.map(one)


def _is_geometry(series: pd.Series) -> bool:
    if str(series.dtype) == "geometry":
        return True
    probe = series.dropna()
    return series.dtype == object and len(probe) > 0 and isinstance(probe.iloc[0], shapely.Geometry)


def move_city(
    tables: dict[str, pd.DataFrame], city: CityName, dx: float, dy: float
) -> dict[str, pd.DataFrame]:
    """Return the template's tables as city ``city``, moved by ``(dx, dy)`` degrees.

    Parameters
    ----------
    tables
        The generated demo city (:attr:`gis.demo.DemoCity.tables`), left unchanged.
    city
        The city's code and names.
    dx, dy
        Translation in degrees of longitude and latitude.
    """
    old, new = CITY_CODE[:4], city.code[:4]
    out: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        if name in SHARED:
            out[name] = frame
            continue
        f = frame.copy()
        for col in CODE_COLUMNS:
            if col in f.columns:
                f[col] = _recode(f[col], old, new)
        for col in ADDRESS_COLUMNS:
            if col in f.columns:
                f[col] = f[col].map(
                    lambda v: v.replace(TEMPLATE_NAME, city.name) if isinstance(v, str) else v
                )
        if "idempotency_key" in f.columns:
            f["idempotency_key"] = f["idempotency_key"].map(
                lambda v: f"{city.code}:{v}" if isinstance(v, str) else v
            )
        for col in f.columns:
            if _is_geometry(f[col]):
                geoms = np.asarray(f[col].values, dtype=object)
                mask = np.array([isinstance(g, shapely.Geometry) for g in geoms], dtype=bool)
                moved = geoms.copy()
                if mask.any():
                    moved[mask] = shapely.transform(geoms[mask], lambda c: c + (dx, dy))
                f[col] = (
                    pd.Series(moved, index=f.index, dtype=object)
                    if str(f[col].dtype) != "geometry"
                    else (type(f[col])(moved, index=f.index, crs=getattr(f[col], "crs", None)))
                )
        if name == "admin_areas":
            is_city = f["level"] == "city"
            f.loc[is_city, "name"] = city.name
            f.loc[is_city, "name_en"] = f"{city.name_en} (city)"
        out[name] = f
    return out
