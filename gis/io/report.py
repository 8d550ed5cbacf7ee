"""The import report: what a reader read, imported, repaired and skipped, and why.

Every reader of :mod:`gis.io` returns its data together with an
:class:`ImportReport`. Nothing is changed or left out without an entry here:
a repaired geometry has a ``repaired`` item saying what changed, a feature
left out has a ``skipped`` item saying why, and facts about the whole file
(encoding detected, coordinate system detected, Z dropped) are ``notes``.
Warnings are things the planner should look at (overlapping footprints, an
encoding stated by the file that looks wrong, GCJ-02 that cannot be told
from WGS84).

The JSON form (:meth:`ImportReport.as_dict`) keeps the keys the importer and
the CLI already use (``features``, ``invalid``, ``repaired``, ``dropped``)
and adds the counts (``read``, ``imported``, ``skipped_by_reason`` ...).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Longest list kept per key in :meth:`ImportReport.as_dict` (the counts stay exact).
LIST_LIMIT = 1000


@dataclass(frozen=True)
class Item:
    """One feature named in a report.

    Attributes
    ----------
    feature : str
        The feature's id in the file (``w123`` / ``r45`` for OSM, the ``id``
        column or the feature number otherwise).
    code : str
        Machine-readable reason (``outside_extract``, ``invalid``,
        ``duplicate``, ``wrong_type``, ``no_geometry``, ``clipped`` ...).
    reason : str
        The same, phrased for a planner, with the numbers.
    detail : dict
        Extra facts (areas before/after a repair, the feature duplicated...).
    """

    feature: str
    code: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``feature``, ``code``, ``reason`` and the detail keys."""
        return {"feature": self.feature, "code": self.code, "reason": self.reason, **self.detail}


@dataclass
class ImportReport:
    """What one read of one file did.

    Attributes
    ----------
    kind : str
        ``buildings``, ``streets``, ``areas``, ``points`` or ``households``.
    source : str
        File name.
    read : int
        Features (rows) found in the file that could be this kind of thing
        (for OSM: closed ``building=*`` ways and building multipolygons, or
        ``highway`` ways of the street kinds).
    imported : int
        Features returned.
    repaired : list of Item
        Returned, but changed (geometry repaired, way clipped to the extract,
        parts of a collection dropped); each says what changed.
    skipped : list of Item
        Left out, with why.
    invalid : list of Item
        Invalid input geometries (repaired, skipped or refused).
    duplicates : list of dict
        ``{"feature", "duplicate_of"}``: same footprint twice.
    overlaps : list of dict
        ``{"features": [a, b], "area_m2", "share"}``: footprints that
        overlap (kept; ``share`` is of the smaller footprint).
    notes : list of str
        Facts about the whole file (encoding, coordinate system, Z dropped).
    warnings : list of str
        Things a planner should check.
    crs : str or None
        The coordinate system the coordinates were read in, and how it was
        known (``EPSG:4527 (detected: ...)``).
    encoding : str or None
        The text encoding used for attributes, where it matters.
    extra : dict
        Reader-specific figures (households estimated, floors assumed...).
    """

    kind: str
    source: str
    read: int = 0
    imported: int = 0
    repaired: list[Item] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    invalid: list[Item] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    crs: str | None = None
    encoding: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def repair(self, feature: Any, code: str, reason: str, **detail: Any) -> None:
        """Record that ``feature`` was kept but changed."""
        self.repaired.append(Item(str(feature), code, reason, detail))

    def skip(self, feature: Any, code: str, reason: str, **detail: Any) -> None:
        """Record that ``feature`` was left out."""
        self.skipped.append(Item(str(feature), code, reason, detail))

    def merge(self, other: ImportReport) -> None:
        """Add the items, notes and warnings of ``other`` (a later stage of the same read)."""
        self.repaired += other.repaired
        self.skipped += other.skipped
        self.invalid += other.invalid
        self.duplicates += other.duplicates
        self.overlaps += other.overlaps
        self.notes += [n for n in other.notes if n not in self.notes]
        self.warnings += [w for w in other.warnings if w not in self.warnings]
        self.extra.update(other.extra)

    def skipped_by_reason(self) -> dict[str, int]:
        """Count skipped features per reason code."""
        return dict(sorted(Counter(i.code for i in self.skipped).items()))

    def repaired_by_reason(self) -> dict[str, int]:
        """Count repaired features per reason code."""
        return dict(sorted(Counter(i.code for i in self.repaired).items()))

    def summary(self) -> str:
        """One line for a planner: ``446 read, 440 imported, 2 repaired, 6 skipped (...)``."""
        parts = [f"{self.read} read", f"{self.imported} imported"]
        if self.repaired:
            parts.append(f"{len(self.repaired)} repaired")
        if self.skipped:
            why = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in self.skipped_by_reason().items())
            parts.append(f"{len(self.skipped)} skipped ({why})")
        return f"{self.kind} from {self.source}: " + ", ".join(parts)

    def as_dict(self, limit: int = LIST_LIMIT) -> dict[str, Any]:
        """JSON form (lists cut to ``limit`` entries; ``*_total`` keys keep the counts).

        The keys ``features`` (= ``read``), ``invalid``, ``repaired`` and
        ``dropped`` (= ``skipped``) keep the form the importer and the CLI
        used before the report existed: lists of ``{"feature", "reason"}``.
        """
        out: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "summary": self.summary(),
            "read": self.read,
            "features": self.read,
            "imported": self.imported,
            "repaired_total": len(self.repaired),
            "skipped_total": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason(),
            "repaired_by_reason": self.repaired_by_reason(),
            "repaired": [i.as_dict() for i in self.repaired[:limit]],
            "dropped": [i.as_dict() for i in self.skipped[:limit]],
            "skipped": [i.as_dict() for i in self.skipped[:limit]],
            "invalid": [i.as_dict() for i in self.invalid[:limit]],
            "duplicates": self.duplicates[:limit],
            "duplicates_total": len(self.duplicates),
            "overlaps": self.overlaps[:limit],
            "overlaps_total": len(self.overlaps),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "crs": self.crs,
            "encoding": self.encoding,
        }
        out.update(self.extra)
        return out
