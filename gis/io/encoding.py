"""Text encodings of attribute tables: stated, detected, or asked for — never silently wrong.

Chinese shapefiles usually come in GBK/GB18030 without a ``.cpg`` file; GDAL
then reads their ``.dbf`` as ISO-8859-1 and ``南山路`` becomes ``ÄÏÉ½Â·``,
which looks like text and is corrupt data. So the readers take the raw bytes
of every text value (read as ISO-8859-1, which maps bytes 1:1) and decide:

1. an ``encoding`` given by the caller is used, strictly (a byte sequence
   it cannot decode is an error naming the column and row);
2. else a ``.cpg`` beside a shapefile, or the ``.dbf``'s code-page mark for
   936 (GBK), or the format's own rule (GeoJSON and GeoPackage are UTF-8);
   bytes that do not decode with it are an error, and a single-byte
   Western code page whose bytes are also valid UTF-8 or GB18030 gets a
   warning with an example of both readings;
3. else the bytes decide: all ASCII; valid UTF-8 → UTF-8; not UTF-8 but
   valid GB18030 → GB18030 (the report says so); neither → an error asking
   for ``--encoding``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gis.io.errors import ReadError

#: The encoding the readers ask GDAL for: bytes map 1:1 to code points U+0000–U+00FF.
RAW = "ISO-8859-1"
#: ``.dbf`` language-driver ids meaning code page 936 (GBK).
LDID_GBK = frozenset({0x4D, 0x7A})
#: Single-byte Western code pages (text in them may be mojibake of UTF-8/GB18030).
WESTERN = frozenset({"cp1252", "latin_1", "iso8859_15", "cp437", "cp850"})

_CPG_ALIASES = {
    "65001": "utf-8",
    "utf8": "utf-8",
    "936": "gbk",
    "cp936": "gbk",
    "gb2312": "gbk",
    "54936": "gb18030",
    "88591": "latin-1",
    "iso88591": "latin-1",
    "ansi1252": "cp1252",
    "1252": "cp1252",
    "950": "big5",
}


@dataclass(frozen=True)
class EncodingChoice:
    """The encoding used for a file's text and how it was chosen.

    Attributes
    ----------
    codec : str
        Python codec name (``utf-8``, ``gb18030`` ...).
    how : str
        ``given`` (by the caller), ``stated`` (by the file) or ``detected``.
    note : str
        One sentence for the report.
    """

    codec: str
    how: str
    note: str


def codec_name(name: str) -> str:
    """Python codec for an encoding name as found in ``.cpg`` files or given by a planner.

    Raises
    ------
    ReadError
        Unknown encoding.
    """
    key = name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    key = _CPG_ALIASES.get(key, key)
    try:
        return codecs.lookup(key).name
    except LookupError as exc:
        raise ReadError(f"unknown encoding {name!r}: use utf-8, gb18030, gbk, big5, cp1252 ...") from exc


def stated_encoding(path: Path) -> tuple[str | None, str]:
    """Tell what a file says about its text: (codec or None, where it says so).

    A ``.cpg`` beside a shapefile, or the ``.dbf`` code-page mark for GBK;
    GeoJSON and GeoPackage are UTF-8 by specification.
    """
    suffix = path.suffix.lower()
    if suffix in (".shp", ".dbf"):
        cpg = path.with_suffix(".cpg")
        if not cpg.exists():
            cpg = path.with_suffix(".CPG")
        if cpg.exists():
            text = cpg.read_text(encoding="ascii", errors="replace").strip()
            if text:
                return codec_name(text), f"the .cpg file says {text}"
        dbf = path.with_suffix(".dbf")
        if dbf.exists():
            with open(dbf, "rb") as f:
                head = f.read(32)
            if len(head) > 29 and head[29] in LDID_GBK:
                return "gbk", "the .dbf marks code page 936 (GBK)"
        return None, "no .cpg file"
    if suffix in (".geojson", ".json", ".gpkg", ".geojsonl", ".geojsons"):
        return "utf-8", "the format is UTF-8 by specification"
    return None, "the format does not say"


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or isinstance(col.dtype, pd.StringDtype)


def _decodes(raw: list[bytes], codec: str) -> int | None:
    """Index of the first value ``codec`` cannot decode, or None."""
    for i, b in enumerate(raw):
        try:
            b.decode(codec)
        except UnicodeDecodeError:
            return i
    return None


def detect_encoding(raw: Iterable[bytes]) -> str | None:
    """``ascii``, ``utf-8`` or ``gb18030`` from the bytes alone; None if neither decodes them all."""
    values = [b for b in raw if b]
    if all(b.isascii() for b in values):
        return "ascii"
    if _decodes(values, "utf-8") is None:
        return "utf-8"
    if _decodes(values, "gb18030") is None:
        return "gb18030"
    return None


def _raw_values(df: pd.DataFrame) -> tuple[list[str], list[bytes], list[tuple[str, int]]]:
    """Text columns, raw bytes of their values and of the column names, and where each came from."""
    cols = [c for c in df.columns if _is_text(df[c]) and c != getattr(df, "_geometry_column_name", None)]
    raw: list[bytes] = []
    where: list[tuple[str, int]] = []
    for c in df.columns:
        if isinstance(c, str) and not c.isascii():
            raw.append(c.encode("latin-1", errors="replace"))
            where.append((c, -1))
    for c in cols:
        for i, v in enumerate(df[c].tolist()):
            if isinstance(v, str) and not v.isascii():
                raw.append(v.encode("latin-1", errors="replace"))
                where.append((c, i))
    return cols, raw, where


def choose_encoding(
    df: pd.DataFrame, path: Path, given: str | None = None
) -> tuple[EncodingChoice, list[str]]:
    """Decide the encoding of a frame read with :data:`RAW` (see module docstring).

    Parameters
    ----------
    df : DataFrame
        Text read as ISO-8859-1 (each character one byte).
    path : Path
        The file (for ``.cpg`` and messages).
    given : str, optional
        Encoding stated by the caller.

    Returns
    -------
    (EncodingChoice, list of str)
        The choice and warnings for the report.

    Raises
    ------
    ReadError
        The bytes do not decode with the given/stated encoding, or with
        UTF-8 nor GB18030 when nothing is stated (the message names the
        column, the row and ``--encoding``).
    """
    _, raw, where = _raw_values(df)
    warnings: list[str] = []
    if given is not None:
        codec = codec_name(given)
        bad = _decodes(raw, codec)
        if bad is not None:
            raise ReadError(_undecodable(path, where[bad], raw[bad], f"--encoding {given}"))
        return EncodingChoice(codec, "given", f"text read as {codec} (--encoding {given})"), warnings
    stated, why = stated_encoding(path)
    if stated is not None:
        bad = _decodes(raw, stated)
        if bad is not None:
            guess = detect_encoding(raw)
            hint = f"; the bytes are valid {guess.upper()}: rerun with --encoding {guess}" if guess else ""
            raise ReadError(_undecodable(path, where[bad], raw[bad], f"{why} ({stated})") + hint)
        if stated in WESTERN and raw:
            for alt in ("utf-8", "gb18030"):
                if _decodes(raw, alt) is None:
                    sample = _sample(raw, where)
                    warnings.append(
                        f"{path.name}: {why}, but its text is also valid {alt.upper()}: "
                        f"{sample.decode(stated)!r} would read {sample.decode(alt)!r}. If that is right, "
                        f"import again with --encoding {alt}"
                    )
                    break
        return EncodingChoice(stated, "stated", f"text read as {stated} ({why})"), warnings
    found = detect_encoding(raw)
    if found is None:
        first = next(i for i, b in enumerate(raw) if _decodes([b], "utf-8") is not None)
        raise ReadError(
            f"{path.name}: {why}, and its text is neither UTF-8 nor GB18030 "
            f"(column {where[first][0]!r}{_row(where[first])}: {raw[first][:40]!r}); "
            "state the encoding with --encoding (e.g. big5, cp1252)"
        )
    if found == "ascii":
        return EncodingChoice("utf-8", "detected", "text is plain ASCII"), warnings
    if found == "gb18030":
        return (
            EncodingChoice(
                "gb18030",
                "detected",
                f"text read as GB18030: {why}, and the bytes are not UTF-8 but valid GB18030 "
                f"(e.g. {_sample(raw, where).decode('gb18030')!r}; GBK files read the same)",
            ),
            warnings,
        )
    return EncodingChoice(
        "utf-8", "detected", f"text read as UTF-8 ({why}; the bytes are valid UTF-8)"
    ), warnings


def _sample(raw: list[bytes], where: list[tuple[str, int]]) -> bytes:
    """Pick a value (rather than a column name) to show."""
    return next((b for b, w in zip(raw, where, strict=True) if w[1] >= 0), raw[0])


def _row(where: tuple[str, int]) -> str:
    return " (its name)" if where[1] < 0 else f", row {where[1] + 1}"


def _undecodable(path: Path, where: tuple[str, int], raw: bytes, what: str) -> str:
    return (
        f"{path.name}: column {where[0]!r}{_row(where)} is not valid text for {what}: {raw[:40]!r}; "
        "nothing was imported"
    )


def decode_frame(df: pd.DataFrame, codec: str) -> pd.DataFrame:
    """Re-decode text (and column names) read as :data:`RAW` with ``codec``."""

    def fix(v: object) -> object:
        return v.encode("latin-1").decode(codec) if isinstance(v, str) and not v.isascii() else v

    out = df.copy()
    for c in out.columns:
        if _is_text(out[c]) and c != getattr(out, "_geometry_column_name", None):
            out[c] = out[c].map(fix)
    names = {c: fix(c) for c in out.columns if isinstance(c, str) and not c.isascii()}
    return out.rename(columns=names) if names else out
