"""Tables (CSV, Excel .xlsx) as planners get them: address lists, registries, points with coordinates.

* CSV text is decoded as stated (``encoding``), else by its bytes: a UTF-8
  byte-order mark, valid UTF-8, or — not UTF-8 but valid GB18030 — GB18030
  (what Excel on Chinese Windows saves); anything else is refused, asking
  for ``--encoding``. The delimiter (``,`` ``;`` tab ``|``) is sniffed.
* ``.xlsx``/``.xlsm`` are read with openpyxl; a workbook with several
  sheets needs ``sheet``. Old ``.xls`` files are refused (save as .xlsx).
* Cells are kept as text (codes such as ``0012`` keep their zeros); whole
  numbers Excel stores as floats lose the ``.0``.
* Coordinates (:func:`read_points`) come from columns named lon/lng/经度/x…
  and lat/纬度/y…; a table never says its coordinate system, so ``crs``
  is required (GCJ-02/BD-09 exports cannot be told from WGS84 by the
  numbers). Rows without usable coordinates are skipped and listed.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.crs import CRS_NAMES, UnknownCRS, normalize_crs, to_wgs84
from gis.io.crs_detect import hint_for, looks_lonlat
from gis.io.encoding import codec_name
from gis.io.errors import ReadError
from gis.io.report import ImportReport

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
LON_COLUMNS = (
    "lon",
    "lng",
    "long",
    "longitude",
    "经度",
    "东经",
    "x",
    "x坐标",
    "point_x",
    "横坐标",
    "gcj_lng",
    "bd_lng",
)
LAT_COLUMNS = ("lat", "latitude", "纬度", "北纬", "y", "y坐标", "point_y", "纵坐标", "gcj_lat", "bd_lat")
ID_COLUMNS = ("id", "编号", "序号", "objectid", "fid")
_DMS = re.compile(
    r"^\s*(-?\d+(?:\.\d+)?)\s*[°度]\s*(?:(\d+(?:\.\d+)?)\s*['′分])?\s*(?:(\d+(?:\.\d+)?)\s*[\"″秒])?\s*([NSEW东西南北]?)\s*$"
)


def is_table(path: str | Path) -> bool:
    """Whether the file is a CSV or Excel table (read here rather than with GDAL)."""
    return str(path).lower().endswith(CSV_SUFFIXES + EXCEL_SUFFIXES + (".xls",))


def _csv_text(data: bytes, path: Path, encoding: str | None, report: ImportReport) -> str:
    if encoding is not None:
        codec = codec_name(encoding)
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            raise ReadError(
                f"{path.name} is not valid {codec} at byte {exc.start} (--encoding {encoding}); "
                "nothing was imported"
            ) from exc
        report.encoding = codec
        return text.removeprefix("\ufeff")
    if data.startswith(b"\xef\xbb\xbf"):
        report.encoding = "utf-8"
        report.notes.append("text read as UTF-8 (byte-order mark)")
        return data[3:].decode("utf-8", errors="strict")
    try:
        text = data.decode("utf-8")
        report.encoding = "utf-8"
        if not data.isascii():
            report.notes.append("text read as UTF-8 (the bytes are valid UTF-8)")
        return text
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ReadError(
            f"{path.name} is neither UTF-8 nor GB18030 (byte {exc.start}); state the encoding with "
            "--encoding (e.g. big5, cp1252); nothing was imported"
        ) from exc
    report.encoding = "gb18030"
    sample = next((ln for ln in text.splitlines() if not ln.isascii()), "")[:40]
    report.notes.append(
        f"text read as GB18030: the bytes are not UTF-8 but valid GB18030 (e.g. {sample!r}; "
        "GBK files read the same)"
    )
    return text


def _cell(v: object) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v).strip()
    return s or None


def read_table(
    path: str | Path, *, encoding: str | None = None, sheet: str | None = None, kind: str = "rows"
) -> tuple[pd.DataFrame, ImportReport]:
    """Read a CSV or Excel table as text cells with lower-cased column names, and a report.

    Parameters
    ----------
    path : str or Path
        ``.csv``, ``.tsv``, ``.txt`` or ``.xlsx``/``.xlsm``.
    encoding : str, optional
        Encoding of a CSV (default: detected, see module docstring).
    sheet : str, optional
        Sheet of a workbook (required when it has several).
    kind : str
        What the rows are (for the report).

    Returns
    -------
    (DataFrame, ImportReport)
        Object columns of ``str``/None; the index is the row number in
        the file (1 = the first row under the header).

    Raises
    ------
    ReadError
        Missing/unreadable file, old ``.xls``, several sheets and none
        chosen, undecodable text, no header.
    """
    p = Path(path)
    if not p.exists():
        raise ReadError(f"no such file: {p}")
    report = ImportReport(kind=kind, source=p.name)
    suffix = p.suffix.lower()
    if suffix == ".xls":
        raise ReadError(f"{p.name}: old Excel .xls files are not read; save it as .xlsx or CSV")
    if suffix in EXCEL_SUFFIXES:
        df = _read_excel(p, sheet)
        report.encoding = "utf-8"
    elif suffix in CSV_SUFFIXES:
        text = _csv_text(p.read_bytes(), p, encoding, report)
        if not text.strip():
            raise ReadError(f"{p.name} is empty")
        try:
            dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
            sep = dialect.delimiter
        except csv.Error:
            sep = "\t" if suffix == ".tsv" else ","
        try:
            df = pd.read_csv(
                io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True
            )
        except Exception as exc:
            raise ReadError(f"cannot read {p.name} as a table: {exc}") from exc
    else:
        raise ReadError(f"{p.name}: tables are read from .csv, .tsv, .txt or .xlsx files")
    df = df.dropna(how="all")
    df.columns = [str(c).strip().lower() for c in df.columns]
    if any(c.startswith("unnamed:") for c in df.columns) and all(
        c.startswith("unnamed:") for c in df.columns
    ):
        raise ReadError(f"{p.name} has no header row (the first row must name the columns)")
    df = pd.DataFrame(
        {c: pd.Series([_cell(v) for v in df[c].tolist()], index=df.index, dtype=object) for c in df.columns}
    )
    df.index = pd.RangeIndex(1, len(df) + 1)
    report.read = len(df)
    if not len(df):
        report.warnings.append(f"{p.name} holds no rows")
    return df, report


def _read_excel(p: Path, sheet: str | None) -> pd.DataFrame:
    try:
        book = pd.ExcelFile(p, engine="openpyxl")
    except Exception as exc:
        raise ReadError(f"cannot read {p.name} as an Excel workbook: {exc}") from exc
    with book:
        names = [str(n) for n in book.sheet_names]
        if sheet is None and len(names) > 1:
            raise ReadError(f"{p.name} has {len(names)} sheets ({', '.join(names)}); choose one with --sheet")
        if sheet is not None and sheet not in names:
            raise ReadError(f"{p.name} has no sheet {sheet!r} (sheets: {', '.join(names)})")
        try:
            return pd.read_excel(book, sheet_name=sheet or names[0], dtype=object, header=0)
        except Exception as exc:
            raise ReadError(f"cannot read sheet {sheet or names[0]!r} of {p.name}: {exc}") from exc


def _number(v: object) -> float:
    if not isinstance(v, str):
        return float(v) if isinstance(v, int | float) else float("nan")
    s = v.replace("，", ",").strip()
    try:
        if s.count(",") == 1 and "." not in s:
            whole, frac = s.split(",")
            # a decimal comma (118,5072); "512,345" could be thousands: not guessed
            return float(f"{whole}.{frac}") if len(frac) != 3 else float("nan")
        return float(s)
    except ValueError:
        pass
    m = _DMS.match(s)
    if not m:
        return float("nan")
    deg, mi, se, hemi = m.groups()
    val = abs(float(deg)) + float(mi or 0) / 60 + float(se or 0) / 3600
    neg = deg.startswith("-") or hemi in ("S", "W", "南", "西")
    return -val if neg else val


def pick_column(
    cols: list[str],
    aliases: tuple[str, ...],
    given: str | None,
    what: str,
    *,
    option: str | None = None,
    source: str | None = None,
) -> str | None:
    """Pick the column holding ``what``: the one the user named, else the first known alias present.

    Parameters
    ----------
    cols : list of str
        The table's columns (lower case, as :func:`read_table` gives them).
    aliases : tuple of str
        Known names of the column, in order of preference.
    given : str or None
        The column the user named (any case); it must exist.
    what : str
        What the column holds, for the error (``"the unit"``).
    option : str, optional
        The command-line option naming the column (``"--unit"``), for the error.
    source : str, optional
        The file's name, for the error.

    Returns
    -------
    str or None
        The column, or None when none was named and no alias is present.

    Raises
    ------
    ReadError
        ``given`` is not a column: ``[source: ]no column 'x' for what[ (option)]; the columns are …``.
    """
    if given is not None:
        if given.lower() not in cols:
            where = f"{source}: " if source else ""
            how = f" ({option})" if option else ""
            raise ReadError(f"{where}no column {given!r} for {what}{how}; the columns are {cols}")
        return given.lower()
    return next((c for c in aliases if c in cols), None)


def coordinate_columns(df: pd.DataFrame, x: str | None = None, y: str | None = None) -> tuple[str, str]:
    """Find the longitude/x and latitude/y columns of a table.

    Raises
    ------
    ReadError
        A named column is missing, or none is recognised (the message lists
        the columns and names ``--x``/``--y``).
    """
    cols = list(df.columns)
    for name, given in (("x", x), ("y", y)):
        if given is not None and given.lower() not in cols:
            raise ReadError(f"no column {given!r} for {name}; the columns are {cols}")
    xc = x.lower() if x else next((c for c in LON_COLUMNS if c in cols), None)
    yc = y.lower() if y else next((c for c in LAT_COLUMNS if c in cols), None)
    if xc is None or yc is None:
        raise ReadError(
            f"no coordinate columns found (looked for {', '.join(LON_COLUMNS[:6])}… and "
            f"{', '.join(LAT_COLUMNS[:5])}…); the columns are {cols}: name them with --x and --y"
        )
    return xc, yc


def read_points(
    path: str | Path,
    *,
    crs: str | None,
    encoding: str | None = None,
    sheet: str | None = None,
    x: str | None = None,
    y: str | None = None,
    kind: str = "points",
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read the rows of a CSV/Excel table with coordinates as WGS84 points.

    Parameters
    ----------
    path : str or Path
        The table.
    crs : str or None
        Coordinate system of the numbers (``wgs84``, ``cgcs2000``,
        ``gcj02``, ``bd09`` or an EPSG code). Required: ``None`` is refused.
    encoding, sheet : str, optional
        See :func:`read_table`.
    x, y : str, optional
        Coordinate columns (default: recognised by name).
    kind : str
        What the rows are (for the report).

    Returns
    -------
    (GeoDataFrame, ImportReport)
        Every column of the table plus ``source_id`` (the id column or
        ``row N``, N counting data rows from 1) and point geometry, EPSG:4326.

    Raises
    ------
    ReadError
        No ``crs``, no coordinate columns, or no row with coordinates that
        are longitude/latitude after conversion.
    """
    df, report = read_table(path, encoding=encoding, sheet=sheet, kind=kind)
    name = Path(path).name
    if crs is None:
        raise ReadError(
            f"{name}: a table does not say which coordinate system its numbers are in; pass --crs "
            "(wgs84, cgcs2000, gcj02 for Amap/Tencent/WeChat exports, bd09 for Baidu, or an EPSG code "
            "such as EPSG:4549) — GCJ-02 and BD-09 cannot be told from WGS84 by the numbers"
        )
    xc, yc = coordinate_columns(df, x, y)
    idc = next(
        (c for c in ID_COLUMNS if c in df.columns and df[c].notna().all() and not df[c].duplicated().any()),
        None,
    )
    sid = df[idc].astype(str).tolist() if idc else [f"row {i}" for i in df.index]
    xs = np.array([_number(v) for v in df[xc]], dtype=float)
    ys = np.array([_number(v) for v in df[yc]], dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    for i in np.flatnonzero(~ok).tolist():
        report.skip(
            sid[i],
            "no_coordinates",
            f"no usable coordinates ({xc}={df[xc].iloc[i]!r}, {yc}={df[yc].iloc[i]!r})",
        )
    try:
        name_crs = normalize_crs(crs)
    except UnknownCRS:
        name_crs = None
    lon = np.full(xs.shape, np.nan)
    lat = np.full(ys.shape, np.nan)
    if ok.any():
        if name_crs in CRS_NAMES:
            lon[ok], lat[ok] = to_wgs84(xs[ok], ys[ok], name_crs)
            report.crs = f"{name_crs} (--crs {crs})"
        else:
            import pyproj

            try:
                tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(crs), 4326, always_xy=True)
            except pyproj.exceptions.CRSError as exc:
                raise ReadError(
                    f"unknown --crs {crs!r}: use wgs84, cgcs2000, gcj02, bd09 or an EPSG code"
                ) from exc
            lon[ok], lat[ok] = tr.transform(xs[ok], ys[ok])
            report.crs = f"{crs} (--crs {crs})"
    inside = ok & np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    if ok.any() and not inside.any():
        b = (float(xs[ok].min()), float(ys[ok].min()), float(xs[ok].max()), float(ys[ok].max()))
        hint = "" if looks_lonlat(b) else hint_for(b)
        raise ReadError(
            f"{name}: no row has coordinates that are longitude/latitude after conversion from {crs} "
            f"(columns {xc}, {yc}; bounds {[round(v, 3) for v in b]}){hint}"
        )
    for i in np.flatnonzero(ok & ~inside).tolist():
        report.skip(
            sid[i], "bad_coordinates", f"({xs[i]}, {ys[i]}) is not a place after conversion from {crs}"
        )
    out = df.loc[inside].copy()
    out["source_id"] = [s for s, k in zip(sid, inside, strict=True) if k]
    gdf = gpd.GeoDataFrame(out, geometry=shapely.points(lon[inside], lat[inside]), crs=4326)
    report.imported = len(gdf)
    return gdf.reset_index(names="row"), report
