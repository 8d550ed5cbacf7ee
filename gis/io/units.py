"""Units (单元) of buildings from the resident registry (CSV/Excel): ``wangge import units``.

A Chinese resident registry (实有人口/房屋台账) lists households by building (楼栋), unit (单元)
and room; the unit is the entrance and staircase its households use, and the natural piece to
split a tower that holds more households than a grid may. One row per unit, or per household
(rows of one unit add up):

===========  ===========================================================
building     ``building_code``/``楼栋编号``/``楼号``… (as :mod:`gis.io.registry`), or ``--key``
unit         ``unit``/``单元``/``单元号``… (required), or ``--unit``
households   ``households``/``户数``… (without it every row is one household)
entrance     optional ``lon``/``lat`` (经度/纬度, x/y) of the unit's door, with ``--crs``
===========  ===========================================================

Nothing here is guessed: a value that is not a whole number ≥ 0, a row without a unit label,
coordinates without ``--crs`` or one unit with two different entrances stop the import with a
:class:`gis.io.ReadError` naming the file, the row and the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gis.io.errors import ReadError
from gis.io.registry import HOUSEHOLD_COLUMNS, KEY_COLUMNS, UNIT_COLUMNS
from gis.io.report import ImportReport
from gis.io.tables import LAT_COLUMNS, LON_COLUMNS, pick_column, read_points, read_table


@dataclass
class UnitTable:
    """Units read by :func:`read_units`.

    Attributes
    ----------
    units : DataFrame
        One row per (building key, unit), in the file's order: ``key``, ``unit``,
        ``households`` (summed over the unit's rows), ``rows`` (the file's row numbers),
        ``entrance`` (WGS84 Point or None).
    report : ImportReport
    """

    units: pd.DataFrame
    report: ImportReport


def read_units(
    path: str | Path,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    key: str | None = None,
    unit: str | None = None,
    households: str | None = None,
    crs: str | None = None,
) -> UnitTable:
    """Read the units of buildings (see the module docstring for the columns).

    Parameters
    ----------
    path : str or Path
        CSV or Excel table.
    encoding, sheet : str, optional
        See :func:`gis.io.tables.read_table`.
    key, unit, households : str, optional
        Column names, when they are not recognised.
    crs : str, optional
        Coordinate system of the entrance coordinates (required when the table has them).

    Returns
    -------
    UnitTable

    Raises
    ------
    ReadError
        A column missing (naming the option), a bad households value, a row without a unit
        or building, entrance coordinates without ``crs`` or unusable, a unit with two
        entrances — each naming the file, the row and the column.
    """
    name = Path(path).name
    df, report = read_table(path, encoding=encoding, sheet=sheet, kind="units")
    cols = list(df.columns)
    kc = pick_column(cols, KEY_COLUMNS, key, "the building", option="--key", source=name)
    uc = pick_column(cols, UNIT_COLUMNS, unit, "the unit", option="--unit", source=name)
    hc = pick_column(
        cols, HOUSEHOLD_COLUMNS, households, "households", option="--households-column", source=name
    )
    if kc is None:
        raise ReadError(
            f"{name}: no column names the building (looked for {', '.join(KEY_COLUMNS[:7])}…); "
            f"the columns are {cols}: name it with --key"
        )
    if uc is None:
        raise ReadError(
            f"{name}: no column names the unit (单元; looked for {', '.join(UNIT_COLUMNS)}); "
            f"the columns are {cols}: name it with --unit"
        )
    entrances: dict[int, shapely.Point] = {}
    has_xy = any(c in cols for c in LON_COLUMNS) and any(c in cols for c in LAT_COLUMNS)
    if has_xy:
        if crs is None:
            raise ReadError(
                f"{name}: the units have entrance coordinates; pass --crs (wgs84, cgcs2000, gcj02, bd09 or "
                "an EPSG code) — the numbers cannot say which system they are in"
            )
        points, prep = read_points(path, crs=crs, encoding=encoding, sheet=sheet, kind="units")
        report.crs = prep.crs
        for item in prep.skipped:
            if item.code == "bad_coordinates" or (
                item.code == "no_coordinates" and "None" not in item.reason
            ):
                raise ReadError(f"{name} {item.feature} (entrance coordinates): {item.reason}")
        entrances = {int(r): g for r, g in zip(points["row"], points.geometry.values, strict=True)}
    order: list[tuple[str, str]] = []
    acc: dict[tuple[str, str], dict[str, object]] = {}
    for i in df.index.tolist():
        where = f"{name} row {i} (line {i + 1})"
        b = df.at[i, kc]
        u = df.at[i, uc]
        if b is None or not str(b).strip():
            raise ReadError(f"{where}, column {kc}: no building; every unit names its building")
        if u is None or not str(u).strip():
            raise ReadError(f"{where}, column {uc}: no unit; every row names its unit (单元)")
        hh = 1
        if hc is not None:
            v = df.at[i, hc]
            num = pd.to_numeric(v, errors="coerce")
            if v is None or not np.isfinite(num) or num < 0 or num != int(num):
                raise ReadError(f"{where}, column {hc}: households {v!r} is not a whole number ≥ 0")
            hh = int(num)
        k = (str(b).strip(), _label(str(u)))
        if k not in acc:
            order.append(k)
            acc[k] = {"households": 0, "rows": [], "entrance": None}
        d = acc[k]
        d["households"] = int(d["households"]) + hh  # type: ignore[call-overload]
        d["rows"].append(int(i))  # type: ignore[attr-defined]
        e = entrances.get(int(i))
        if e is not None:
            old = d["entrance"]
            if isinstance(old, shapely.Point) and old.distance(e) > 1e-6:
                raise ReadError(
                    f"{where}, entrance coordinates: unit {k[1]} of building {k[0]} already has an entrance "
                    f"at {old.x:.6f}, {old.y:.6f} (row {d['rows'][0]}); one entrance per unit"  # type: ignore[index]
                )
            d["entrance"] = e
    units = pd.DataFrame(
        {
            "key": [k for k, _ in order],
            "unit": [u for _, u in order],
            "households": [int(acc[k]["households"]) for k in order],  # type: ignore[call-overload]
            "rows": [acc[k]["rows"] for k in order],
            "entrance": [acc[k]["entrance"] for k in order],
        }
    )
    report.read = len(df)
    report.extra["units_read"] = len(units)
    report.extra["columns"] = {"building": kc, "unit": uc, "households": hc}
    if hc is None:
        report.notes.append(f"no households column: each of the {len(df)} rows counts as one household")
    return UnitTable(units=units, report=report)


def _label(text: str) -> str:
    """Return a unit label as written, without surrounding spaces (``1``, ``1单元``, ``A`` stay apart)."""
    return re.sub(r"\s+", " ", text.strip())


def natural_key(label: str) -> tuple[object, ...]:
    """Sort key of unit labels: ``2单元`` before ``10单元``."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", label) if t)
