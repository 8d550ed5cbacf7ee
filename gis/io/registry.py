"""Households from the resident registry (CSV/Excel), overriding the estimate.

A registry table has one row per building, per unit (单元) of a building, or
per household, keyed by a building code/id, an address, or coordinates:

=============  ==========================================================
key            ``building_code``/``code``/``楼栋编号``/``楼号``… matched to
               the buildings' ``code`` or ``source_id``; else
               ``address``/``地址``… matched to ``address`` (spaces and
               full-width forms ignored); else a point in the footprint
               (``lon``/``lat``… with ``crs``)
households     ``households``/``户数``/``住户数``…; without such a column
               every row counts as one household
unit           ``unit``/``单元``… (optional): households per unit are kept
               for splitting a building by units
=============  ==========================================================

:func:`apply_registry` sets ``households`` of every matched building to the
registry's total, ``households_estimated`` to False and
``households_source`` to ``registry``; rows matching no building (or several)
are skipped and listed; buildings missing from the registry keep their
count and are counted in the report.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.io.errors import ReadError
from gis.io.report import ImportReport
from gis.io.tables import LAT_COLUMNS, LON_COLUMNS, pick_column, read_points, read_table

KEY_COLUMNS = (
    "building_code",
    "building_id",
    "bldg_code",
    "code",
    "楼栋编号",
    "楼栋代码",
    "楼栋号",
    "建筑编号",
    "楼号",
    "source_id",
    "building",
)
ADDRESS_COLUMNS = ("address", "addr", "地址", "楼栋地址", "门牌地址", "住址", "门牌")
HOUSEHOLD_COLUMNS = ("households", "hh", "户数", "住户数", "总户数", "户")
UNIT_COLUMNS = ("unit", "单元", "单元号", "entrance", "staircase")

MatchOn = Literal["code", "source_id", "address", "location"]


@dataclass
class Registry:
    """A resident registry read by :func:`read_registry`.

    Attributes
    ----------
    rows : DataFrame
        ``row`` (source row id), ``key`` (building code/id or normalised
        address, None when matched by location), ``key_kind`` (``code``,
        ``address`` or ``location``), ``households`` (int), ``unit`` (str or
        None); plus ``geometry`` (WGS84 points) when keyed by location.
    report : ImportReport
    """

    rows: pd.DataFrame
    report: ImportReport


def normalise_address(text: str | None) -> str | None:
    """Address for matching: NFKC (full-width → half-width), lower case, no spaces or punctuation."""
    if text is None:
        return None
    s = unicodedata.normalize("NFKC", str(text)).lower()
    s = re.sub(r"[\s,，.。\-—_/#()（）]+", "", s)
    return s or None


def read_registry(
    path: str | Path,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    key: str | None = None,
    address: str | None = None,
    households: str | None = None,
    unit: str | None = None,
    crs: str | None = None,
) -> Registry:
    """Read a resident registry (see module docstring for the columns).

    Parameters
    ----------
    path : str or Path
        CSV or Excel table.
    encoding, sheet : str, optional
        See :func:`gis.io.tables.read_table`.
    key, address, households, unit : str, optional
        Column names, when they are not recognised.
    crs : str, optional
        Coordinate system of the coordinates, for a registry keyed by
        location only (required then).

    Returns
    -------
    Registry

    Raises
    ------
    ReadError
        No key column (code, address or coordinates), a named column
        missing, or coordinates without ``crs``.
    """
    df, report = read_table(path, encoding=encoding, sheet=sheet, kind="households")
    cols = list(df.columns)
    kc = pick_column(cols, KEY_COLUMNS, key, "the building key")
    ac = pick_column(cols, ADDRESS_COLUMNS, address, "the address")
    hc = pick_column(cols, HOUSEHOLD_COLUMNS, households, "households")
    uc = pick_column(cols, UNIT_COLUMNS, unit, "the unit")
    has_xy = any(c in cols for c in LON_COLUMNS) and any(c in cols for c in LAT_COLUMNS)
    rowid = [f"row {i}" for i in df.index]
    points = None
    if kc is not None:
        kind, keys = "code", [None if v is None else str(v).strip() for v in df[kc]]
    elif ac is not None:
        kind, keys = "address", [normalise_address(v) for v in df[ac]]
    elif has_xy:
        if crs is None:
            raise ReadError(
                f"{Path(path).name} is keyed by coordinates only; pass --crs (wgs84, cgcs2000, gcj02, bd09 "
                "or an EPSG code) — the numbers cannot say which system they are in"
            )
        points, prep = read_points(path, crs=crs, encoding=encoding, sheet=sheet, kind="households")
        report.skipped += prep.skipped
        report.crs = prep.crs
        kind, keys = "location", [None] * len(df)
    else:
        raise ReadError(
            f"{Path(path).name}: no column names the building (looked for {', '.join(KEY_COLUMNS[:7])}…, "
            f"{', '.join(ADDRESS_COLUMNS[:4])}… or coordinates); the columns are {cols}: name it with --key"
        )
    if hc is None:
        hh = np.ones(len(df), dtype=np.int64)
        report.notes.append(f"no households column: each of the {len(df)} rows counts as one household")
    else:
        raw = pd.to_numeric(df[hc], errors="coerce").to_numpy(dtype=float)
        hh = np.zeros(len(df), dtype=np.int64)
        for i, v in enumerate(raw):
            if not np.isfinite(v) or v < 0 or v != int(v):
                report.skip(
                    rowid[i], "bad_households", f"households {df[hc].iloc[i]!r} is not a whole number ≥ 0"
                )
                keys[i] = None
            else:
                hh[i] = int(v)
    rows = pd.DataFrame(
        {
            "row": rowid,
            "key": keys,
            "key_kind": kind,
            "households": hh,
            "unit": [None if uc is None else df[uc].iloc[i] for i in range(len(df))],
        }
    )
    if kind != "location":
        for i in np.flatnonzero(rows["key"].isna().to_numpy()).tolist():
            if not any(it.feature == rowid[i] for it in report.skipped):
                report.skip(rowid[i], "no_key", f"row names no building ({kc or ac} is empty)")
        rows = rows.loc[rows["key"].notna()]
    else:
        assert points is not None
        pos = {r: i for i, r in enumerate(rowid)}
        take = [pos[f"row {r}"] for r in points["row"]]
        rows = gpd.GeoDataFrame(
            rows.iloc[take].reset_index(drop=True), geometry=points.geometry.values, crs=4326
        )
        bad = {it.feature for it in report.skipped if it.code == "bad_households"}
        rows = rows.loc[~rows["row"].isin(bad)]
    report.extra["registry_key"] = {"code": kc, "address": ac, "location": "coordinates"}[kind]
    return Registry(rows=rows.reset_index(drop=True), report=report)


def apply_registry(
    buildings: gpd.GeoDataFrame, registry: Registry, *, on: MatchOn | None = None
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Replace buildings' households by the registry's (see module docstring).

    Parameters
    ----------
    buildings : GeoDataFrame
        From :func:`gis.io.readers.load_buildings`: ``source_id``, ``code``,
        ``address``, ``households``, ``households_estimated``, footprints
        (WGS84).
    registry : Registry
        From :func:`read_registry`.
    on : {"code", "source_id", "address", "location"}, optional
        What the registry key is matched to (default: ``code`` or
        ``source_id``, whichever matches more rows, for a code key; the key
        kind otherwise).

    Returns
    -------
    (GeoDataFrame, ImportReport)
        A copy with ``households``, ``households_estimated``,
        ``households_source`` updated and ``unit_households`` (list of
        ``[unit, households]`` for buildings whose rows name units, else
        None). The report (``kind="households"``) counts rows read, matched
        (``imported``) and skipped, buildings matched and left as they were.
    """
    rep = ImportReport(kind="households", source=registry.report.source)
    rep.merge(registry.report)
    rep.read = registry.report.read
    rep.encoding = registry.report.encoding
    rows = registry.rows
    out = buildings.copy()
    if "households_source" not in out.columns:
        out["households_source"] = np.where(out.get("households_estimated", False), "estimate", "attribute")
    n = len(out)
    kind = rows["key_kind"].iloc[0] if len(rows) else "code"
    target = np.full(len(rows), -1, dtype=np.int64)
    if kind == "location" or on == "location":
        if not isinstance(rows, gpd.GeoDataFrame):
            raise ReadError("the registry has no coordinates to match buildings by location")
        tree = shapely.STRtree(np.asarray(out.geometry.values, dtype=object))
        r, b = tree.query(np.asarray(rows.geometry.values, dtype=object), predicate="within")
        hits: dict[int, list[int]] = {}
        for i, j in zip(r.tolist(), b.tolist(), strict=True):
            hits.setdefault(i, []).append(j)
        for i in range(len(rows)):
            h = hits.get(i, [])
            if len(h) == 1:
                target[i] = h[0]
            elif len(h) > 1:
                rep.skip(rows["row"].iloc[i], "ambiguous", f"point lies in {len(h)} footprints")
            else:
                rep.skip(rows["row"].iloc[i], "no_building", "point lies in no building footprint")
    else:
        if on is None:
            if kind == "address":
                on = "address"
            else:
                keys = set(rows["key"])
                by_code = len(keys & set(out["code"].dropna().astype(str))) if "code" in out.columns else 0
                by_sid = len(keys & set(out["source_id"].astype(str)))
                on = "code" if by_code >= by_sid and by_code > 0 else "source_id"
        values = out[on] if on in out.columns else pd.Series([None] * n)
        norm = [normalise_address(v) if on == "address" else (None if v is None else str(v)) for v in values]
        index: dict[str, list[int]] = {}
        for j, v in enumerate(norm):
            if v is not None:
                index.setdefault(v, []).append(j)
        for i, k in enumerate(rows["key"].tolist()):
            h = index.get(k, [])
            if len(h) == 1:
                target[i] = h[0]
            elif len(h) > 1:
                names = ", ".join(str(out["source_id"].iloc[j]) for j in h[:5])
                rep.skip(rows["row"].iloc[i], "ambiguous", f"{on} {k!r} matches {len(h)} buildings ({names})")
            else:
                rep.skip(rows["row"].iloc[i], "no_building", f"no building with {on} {k!r}")
        rep.extra["matched_on"] = on
    matched = target >= 0
    hh = rows["households"].to_numpy(dtype=np.int64)
    total = np.bincount(target[matched], weights=hh[matched], minlength=n).astype(np.int64)
    hit = np.bincount(target[matched], minlength=n) > 0
    before = out["households"].to_numpy(dtype=np.int64)
    was_est = (
        out["households_estimated"].to_numpy(dtype=bool)
        if "households_estimated" in out
        else np.ones(n, bool)
    )
    units: list[list[list[object]] | None] = [None] * n
    if rows["unit"].notna().any():
        per: dict[int, dict[str, int]] = {}
        for j, u, h in zip(
            target[matched].tolist(), rows["unit"][matched].tolist(), hh[matched].tolist(), strict=True
        ):
            if isinstance(u, str) and u:
                per.setdefault(j, {})
                per[j][str(u)] = per[j].get(str(u), 0) + int(h)
        for j, d in per.items():
            units[j] = [[u, d[u]] for u in sorted(d, key=_natural)]
    out["households"] = np.where(hit, total, before)
    out["households_estimated"] = np.where(hit, False, was_est)
    out["households_source"] = np.where(hit, "registry", out["households_source"].to_numpy(dtype=object))
    out["unit_households"] = units
    rep.imported = int(matched.sum())
    rep.extra.update(
        {
            "buildings_matched": int(hit.sum()),
            "buildings_not_in_registry": int(n - hit.sum()),
            "estimates_replaced": int((hit & was_est).sum()),
            "households_before": int(before[hit].sum()),
            "households_after": int(total[hit].sum()),
        }
    )
    left = int((~hit & was_est).sum())
    if left:
        rep.warnings.append(f"{left} building(s) are not in the registry and keep an estimated count")
    return out, rep


def _natural(s: str) -> tuple[object, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))
