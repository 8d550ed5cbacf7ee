"""The in-process index of located people: nearest queries without a KNN in PostGIS.

PostGIS stays the store of record. Each server process keeps every located person
(position, role, community, skills, party membership flag, duty, shift end, capacity,
name, phone) in NumPy arrays and a hash of cells of :data:`CELL_DEG` degrees. Migration
``0034_people_index`` stamps every written person row with the writing transaction's id
(``people.change_xid``), whatever statement wrote it; the index remembers the snapshot
it last read at (``xmax`` and the transactions then in progress) and reads exactly the
rows written since with one indexed query, no notification per ping:

* a poller does so every :data:`POLL_S` seconds (every process sees a change within
  100 ms);
* **every nearest request does so too, in the one statement that reads its candidates'
  open load** (:func:`api.store.sql.dispatch.index_changes`): the answer reflects every
  commit before the request, the writer's own included (read-your-writes), and the
  same snapshot says which candidates still exist (a person deleted behind the index's
  back drops out; their rows are not read again: a row written since comes with the
  other changes).

Rows come back from concurrent statements in any order; a row is applied only when its
statement's snapshot is at least as recent as the one that wrote the slot (snapshots
taken one after the other have a non-decreasing ``xmax``, and at equal ``xmax`` fewer
transactions in progress).

Ranking stays exact. Candidates are gathered ring by ring of cells around the point and
ordered by their chord (the straight line through the earth between the points on the
WGS84 ellipsoid, never longer than the geodesic). The k best available by chord give an
upper bound ``U`` of the k-th geodesic distance; every candidate with a chord within
``U`` is ranked by its geodesic distance (``pyproj.Geod``, GeographicLib, the algorithm
PostGIS's ``ST_Distance(geography, geography, true)`` uses), ties by id; and the rings
grow until nothing outside them can be within ``U`` (a rigorous lower bound: the meridian
arc to the rectangle's parallels, the distance to the planes of its meridians).

Per request the work is kept to a few NumPy calls: the filters that do not depend on the
time (availability's duty and capacity, party, community, district, city, skill) are one
boolean array per filter, cached and brought up to date from the log of written slots;
after the catch-up a request gathers its candidates again only when a write touched one of
the cells it searched (a count of writes per cell); the geodesic is computed once, on the
candidates whose chord is within a hair of the k-th picked one (a second call covers the
rare rest); and the hot path gets its answer as JSON: each person's item is rendered once
(in three pieces around the distance and the open load, :meth:`_Table.body`) and kept until
the person is written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import orjson
from pyproj import Geod
from sqlalchemy.ext.asyncio import AsyncEngine

from api.store.engine import psycopg_dsn
from api.store.sql.dispatch import (
    IndexChanges,
    IndexedPerson,
    Moves,
    NearbyRow,
    PeopleFilter,
    Snapshot,
    index_changes,
    index_people,
)

log = logging.getLogger("wangge.people_index")

GEOD = Geod(ellps="WGS84")
#: WGS84 semi-major axis and first eccentricity squared
_A = 6_378_137.0
_E2 = 6.694_379_990_14e-3
#: the smallest meridional radius of curvature (at the equator): metres per radian of latitude ≥ this
_M0 = _A * (1.0 - _E2)
#: side of a cell, degrees (about 240 m × 280 m at 31° N)
CELL_DEG = 0.0025
#: rings of cells searched before the whole subset is scanned at once
MAX_RINGS = 8
#: seconds between two polls of the store
POLL_S = 0.05
#: candidates read per request beyond k (some may be busy)
EXTRA = 4
#: catch-ups of one request before it gives up the index for the SQL path
MAX_ROUNDS = 4
#: filter masks kept per table (the oldest goes first)
MAX_MASKS = 64
_EPS_M = 1e-6
#: the role code of a cell holding the people of every role (roles are numbered from 1)
ANY_ROLE = 0
#: how the answers' JSON is written (datetimes in UTC as ``Z``, as pydantic writes them)
JSON_OPTIONS = orjson.OPT_UTC_Z
#: placeholders of an item's distance and load while its pieces are rendered (a name, a phone or
#: a skill read from PostgreSQL never holds NUL, so neither can occur anywhere else in an item)
_DISTANCE, _LOAD = "\x00distance", "\x00load"


def _ecef(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Earth-centred coordinates (metres) of points on the WGS84 ellipsoid."""
    lam, phi = np.radians(lon), np.radians(lat)
    s, c = np.sin(phi), np.cos(phi)
    n = _A / np.sqrt(1.0 - _E2 * s * s)
    return np.stack([n * c * np.cos(lam), n * c * np.sin(lam), n * (1.0 - _E2) * s], axis=-1)


def _ecef_one(lon: float, lat: float) -> tuple[float, float, float]:
    """:func:`_ecef` of one point (the same operations, in plain floats)."""
    lam, phi = math.radians(lon), math.radians(lat)
    s, c = math.sin(phi), math.cos(phi)
    n = _A / math.sqrt(1.0 - _E2 * s * s)
    return n * c * math.cos(lam), n * c * math.sin(lam), n * (1.0 - _E2) * s


def _key(snap: Snapshot) -> int:
    """Order snapshots taken one after the other (see the module's docstring)."""
    return snap.xmax * 65_536 - min(len(snap.xip), 65_535)


def _ts(at: dt.datetime | None, missing: float) -> float:
    return missing if at is None else at.timestamp()


#: every field of a person but where and when they were last seen
_PLACE = IndexedPerson._fields.index("lon")
_AFTER_PLACE = IndexedPerson._fields.index("position_at") + 1


def _moved_only(a: IndexedPerson, b: IndexedPerson) -> bool:
    """Tell whether ``b`` differs from ``a`` in its position and its time at most (and is located)."""
    return (
        b.lon is not None
        and b.lat is not None
        and a[:_PLACE] == b[:_PLACE]
        and a[_AFTER_PLACE:] == b[_AFTER_PLACE:]
    )


def _community(code: str | None) -> int:
    return -1 if code is None else int(code) if code.isdigit() else -2


@dataclass(frozen=True, slots=True)
class Candidates:
    """People passing the filters known in memory, nearest chord first, and how far the search reached.

    ``bound`` is a lower bound of the geodesic distance of anyone outside the cells
    searched (infinity: everyone was looked at).
    """

    lon: float
    lat: float
    slots: np.ndarray
    chords: np.ndarray
    bound: float
    #: the cell of the point, the rings searched (-1: everyone) and the table's write count then
    cx: int = 0
    cy: int = 0
    reach: int = -1
    seen: int = -1


class _Table:
    """The arrays of one build of the index (mutated in place by catch-ups, in the event loop)."""

    def __init__(self, snapshot: Snapshot, capacity: int) -> None:
        self.snapshot = snapshot
        self.n = 0
        self.size = max(capacity, 1024)
        self.slot: dict[int, int] = {}
        self.ids = np.zeros(self.size, np.int64)
        self.xyz = np.zeros((self.size, 3))
        self.lon = np.zeros(self.size)
        self.lat = np.zeros(self.size)
        self.located = np.zeros(self.size, bool)
        self.role = np.zeros(self.size, np.int16)
        self.city = np.zeros(self.size, np.int64)
        self.community = np.zeros(self.size, np.int64)
        self.party = np.zeros(self.size, bool)
        self.on_duty = np.zeros(self.size, bool)
        self.ready = np.zeros(self.size, bool)
        self.capacity = np.zeros(self.size, np.int64)
        self.shift_end = np.zeros(self.size)
        self.at = np.zeros(self.size)
        self.key = np.zeros(self.size, np.int64)
        self.cell: list[tuple[int, int, int] | None] = []
        self.person: list[IndexedPerson | None] = []
        #: each slot's answer item but its distance and load (built on first use, reset on write)
        self.item: list[dict[str, Any] | None] = []
        #: the same item as JSON in three pieces, before its distance, between it and the load,
        #: after the load; with the person's id (built on first use, reset on write)
        self.pieces: list[tuple[int, bytes, bytes, bytes] | None] = []
        #: (role, cell x, cell y) → slots: a role's people are gathered without the others; and
        #: (:data:`ANY_ROLE`, cell x, cell y) → the slots of every role there (a query of no role)
        self.cells: dict[tuple[int, int, int], set[int]] = {}
        #: the same as arrays, made on first use and dropped when the cell changes
        self.arrays: dict[tuple[int, int, int], np.ndarray] = {}
        self.roles: dict[str, int] = {}
        #: how many writes changed what the index answers from (a request re-ranks only after one)
        self.changes = 0
        #: (cell x, cell y) → the number (``changes``) of the last write that touched someone in it:
        #: a request re-gathers only after one near it
        self.touched: dict[tuple[int, int], int] = {}
        #: slots written, in order: the cached filter masks catch up from it
        self.log: list[int] = []
        #: the in-memory filters that do not depend on time, per filter, over every slot
        self.masks: dict[tuple[Any, ...], tuple[np.ndarray, int]] = {}
        #: a catch-up named a mover this table never held whole: it cannot answer any more
        self.incomplete = False

    # ------------------------------------------------------------------ writes

    def _grow(self) -> None:
        self.size *= 2
        self.masks.clear()
        for name in ("ids", "xyz", "lon", "lat", "located", "role", "city", "community", "party"):
            setattr(self, name, _resized(getattr(self, name), self.size))
        for name in ("on_duty", "ready", "capacity", "shift_end", "at", "key"):
            setattr(self, name, _resized(getattr(self, name), self.size))

    def _role(self, role: str) -> int:
        code = self.roles.get(role)
        if code is None:
            code = self.roles[role] = len(self.roles) + 1
        return code

    def put(self, p: IndexedPerson, key: int) -> bool:
        """Store a person's row read at a snapshot of ``key`` (older than the slot's: ignored).

        Returns whether anything the index answers from changed.
        """
        i = self.slot.get(p.id)
        if i is None:
            if p.lon is None or p.lat is None:
                return False  # never located: nothing to find
            if self.n == self.size:
                self._grow()
            i = self.slot[p.id] = self.n
            self.n += 1
            self.cell.append(None)
            self.person.append(None)
            self.item.append(None)
            self.pieces.append(None)
            self.ids[i] = p.id
        elif key < self.key[i]:
            return False
        else:
            self.key[i] = key
            before = self.person[i]
            if before == p:
                return False
            if before is not None and before.lon is not None and _moved_only(before, p):
                self._move(i, p)
                return True
        self.key[i] = key
        self.changes += 1
        self.log.append(i)
        self._unplace(i)
        self.person[i] = p
        self._forget(i)
        self.role[i] = self._role(p.role)
        self.city[i] = int(p.city_code) if p.city_code.isdigit() else -2
        self.community[i] = _community(p.community_code)
        self.party[i] = p.party_member
        self.on_duty[i] = p.on_duty
        self.capacity[i] = p.capacity
        self.ready[i] = p.on_duty and p.capacity > 0
        self.shift_end[i] = _ts(p.shift_end, math.inf)
        self.at[i] = _ts(p.position_at, -math.inf)
        if p.lon is None or p.lat is None:
            self.located[i] = False
            return True
        self.located[i] = True
        self.lon[i], self.lat[i] = p.lon, p.lat
        self.xyz[i] = _ecef_one(p.lon, p.lat)
        cell = (int(self.role[i]), math.floor(p.lon / CELL_DEG), math.floor(p.lat / CELL_DEG))
        self._place(i, cell)
        self._touch(cell)
        return True

    def _forget(self, i: int) -> None:
        """Drop slot ``i``'s rendered answer (its person was written)."""
        self.item[i] = None
        self.pieces[i] = None

    def _move(self, i: int, p: IndexedPerson) -> None:
        """Store a new position of a located person whose other fields are unchanged (most writes).

        What the time-independent filters read stays as it was, so the slot is not logged
        for the cached masks; its cell's sets and arrays change only when it left its cell.
        """
        assert p.lon is not None and p.lat is not None
        self.changes += 1
        self.person[i] = p
        self._forget(i)
        self.at[i] = _ts(p.position_at, -math.inf)
        self.lon[i], self.lat[i] = p.lon, p.lat
        self.xyz[i] = _ecef_one(p.lon, p.lat)
        self._recell(i, (int(self.role[i]), math.floor(p.lon / CELL_DEG), math.floor(p.lat / CELL_DEG)))

    def _recell(self, i: int, cell: tuple[int, int, int]) -> None:
        """Put a slot that moved into ``cell`` (its sets and arrays change only when it left its cell)."""
        if cell != self.cell[i]:
            self._unplace(i)
            self._place(i, cell)
        self._touch(cell)

    def _move_all(self, moved: dict[int, IndexedPerson]) -> None:
        """:meth:`_move` for many slots at once (their rows already stored): arrays in bulk, cells one by one.

        A catch-up after a batch of positions holds hundreds of people who only moved; their
        times, coordinates and earth-centred points are written with one NumPy assignment
        each, and only a person who left their cell changes the cells' sets.
        """
        slots = np.fromiter(moved, np.int64, len(moved))
        people = list(moved.values())
        lon = np.fromiter((p.lon for p in people), np.float64, len(people))
        lat = np.fromiter((p.lat for p in people), np.float64, len(people))
        self.at[slots] = [_ts(p.position_at, -math.inf) for p in people]
        self.lon[slots] = lon
        self.lat[slots] = lat
        self.xyz[slots] = _ecef(lon, lat)
        self.changes += len(people)
        cx = np.floor(lon / CELL_DEG).astype(np.int64).tolist()
        cy = np.floor(lat / CELL_DEG).astype(np.int64).tolist()
        for i, role, x, y in zip(moved, self.role[slots].tolist(), cx, cy, strict=True):
            self._recell(i, (role, x, y))

    def drop(self, person_id: int, key: int) -> None:
        """Forget a person the store no longer holds (as of a snapshot of ``key``)."""
        i = self.slot.get(person_id)
        if i is None or key < self.key[i]:
            return
        self.key[i] = key
        self.changes += 1
        self.log.append(i)
        self._unplace(i)
        self.located[i] = False
        self.person[i] = None
        self._forget(i)

    def _touch(self, cell: tuple[int, int, int]) -> None:
        self.touched[(cell[1], cell[2])] = self.changes

    def last_write(self, cx: int, cy: int, r: int) -> int:
        """Return the number of the last write that touched a cell within ``r`` of (cx, cy) (0: none).

        Every write touches the cell its person leaves and the one it enters, after counting
        itself in ``changes``; so no write touched these cells since ``changes`` was ``n``
        exactly when this is at most ``n``.
        """
        get = self.touched.get
        last = 0
        ys = range(cy - r, cy + r + 1)
        for x in range(cx - r, cx + r + 1):
            for y in ys:
                t = get((x, y), 0)
                if t > last:
                    last = t
        return last

    def _place(self, i: int, cell: tuple[int, int, int]) -> None:
        """Put slot ``i`` into its role's ``cell`` and into every role's at that place."""
        self.cell[i] = cell
        for key in (cell, (ANY_ROLE, cell[1], cell[2])):
            self.cells.setdefault(key, set()).add(i)
            self.arrays.pop(key, None)

    def _unplace(self, i: int) -> None:
        cell = self.cell[i]
        if cell is not None:
            self._touch(cell)
            for key in (cell, (ANY_ROLE, cell[1], cell[2])):
                self.arrays.pop(key, None)
                members = self.cells.get(key)
                if members is not None:
                    members.discard(i)
                    if not members:
                        del self.cells[key]
            self.cell[i] = None

    def apply(self, changes: IndexChanges, asked: Iterable[int] = ()) -> list[IndexedPerson]:
        """Apply a catch-up: its rows, the candidates it no longer found, its snapshot.

        Returns the people whose row changed what the index holds (newer than what it had).
        """
        key = _key(changes.snapshot)
        written: list[IndexedPerson] = []
        moved: dict[int, IndexedPerson] = {}  # slot: its new row (only its position and time differ)
        for p in changes.people:
            i = self.slot.get(p.id)
            if i is not None and i in moved:  # the same person again: what came before goes first
                self._move_all(moved)
                moved = {}
            before = self.person[i] if i is not None and key >= self.key[i] else None
            if i is not None and before is not None and before.lon is not None:
                if before == p:
                    self.key[i] = key
                    continue
                if _moved_only(before, p):
                    self.key[i] = key
                    self.person[i] = p
                    self._forget(i)
                    moved[i] = p
                    written.append(p)
                    continue
            if self.put(p, key):
                written.append(p)
        if moved:
            self._move_all(moved)
        moves = changes.moves
        if moves.ids:
            written += self.apply(IndexChanges(changes.snapshot, self._moved(moves), {}, frozenset()))
        found = changes.present.union(p.id for p in changes.people).union(moves.ids)
        for pid in asked:
            if pid not in found:
                self.drop(pid, key)
        if key >= _key(self.snapshot):
            self.snapshot = changes.snapshot
        return written

    def _moved(self, moves: Moves) -> list[IndexedPerson]:
        """Return each mover's row as held with the new position and time (see :class:`Moves`).

        A mover the table does not hold (never read whole: only a write that bypassed the
        stamps of migration 0038 leaves one) makes the table :attr:`incomplete`.
        """
        rows: list[IndexedPerson] = []
        for pid, lon, lat, at in zip(moves.ids, moves.lons, moves.lats, moves.ats, strict=True):
            i = self.slot.get(pid)
            held = None if i is None else self.person[i]
            if held is None:
                self.incomplete = True
                continue
            rows.append(tuple.__new__(IndexedPerson, (*held[:_PLACE], lon, lat, at, *held[_AFTER_PLACE:])))
        return rows

    # ------------------------------------------------------------------ reads

    def _static(self, slots: np.ndarray, flt: PeopleFilter) -> np.ndarray:
        """Which of ``slots`` pass the in-memory filters that do not depend on time (role aside)."""
        m = self.located[slots]
        if flt.available:
            m &= self.ready[slots]
        if flt.party_member is not None:
            m &= self.party[slots] == flt.party_member
        if flt.community is not None:
            m &= self.community[slots] == _community(flt.community)
        if flt.district is not None:
            lo = int(flt.district) * 1_000_000 if flt.district.isdigit() else -10
            m &= (self.community[slots] >= lo) & (self.community[slots] < lo + 1_000_000)
        if flt.city is not None:
            m &= self.city[slots] == (int(flt.city) if flt.city.isdigit() else -3)
        if flt.skill is not None:
            skill, person = flt.skill, self.person
            idx = np.flatnonzero(m)  # located: slots the table holds
            has = [skill in (p.skills if (p := person[s]) is not None else ()) for s in slots[idx].tolist()]
            m[idx] = np.asarray(has, bool)
        return m

    def static_mask(self, flt: PeopleFilter) -> np.ndarray:
        """:meth:`_static` over every slot, cached per filter and caught up from the write log."""
        key = (flt.available, flt.party_member, flt.community, flt.district, flt.city, flt.skill)
        cached = self.masks.get(key)
        if len(self.log) > 4 * self.size:  # the log outgrew what catching up from it saves
            self.log.clear()
            self.masks.clear()
            cached = None
        if cached is None:
            if len(self.masks) >= MAX_MASKS:
                self.masks.pop(next(iter(self.masks)))
            every = np.arange(self.size)
            m = self._static(every, flt)
        else:
            m, seen = cached
            if seen < len(self.log):
                dirty = np.unique(np.asarray(self.log[seen:], np.int64))
                m[dirty] = self._static(dirty, flt)
        self.masks[key] = (m, len(self.log))
        return m

    def mask(
        self, slots: np.ndarray, flt: PeopleFilter, fresh_after: float, now: float, by_role: bool = False
    ) -> np.ndarray:
        """Which of ``slots`` pass every filter known in memory (all but open load and branch).

        ``by_role``: the slots are of the filter's role already (gathered from its cells).
        """
        m = self.static_mask(flt)[slots]
        m &= self.at[slots] >= fresh_after
        if not by_role and flt.role is not None:
            m &= self.role[slots] == self.roles.get(flt.role, -1)
        if flt.available:
            m &= self.shift_end[slots] > now
        if flt.exclude is not None:
            m &= ~np.isin(self.ids[slots], np.asarray(flt.exclude, np.int64))
        return m

    def candidates(
        self, flt: PeopleFilter, lon: float, lat: float, fresh_after: float, now: float, want: int
    ) -> Candidates:
        """Gather people passing the in-memory filters ring by ring until ``want`` are surely nearest.

        The first step takes the point's cell and its 8 neighbours at once (ring 0 alone
        rarely holds enough), then one ring at a time. Stops once ``want`` of them have a
        chord within the bound of the unsearched space, or after :data:`MAX_RINGS` rings
        (then every person is looked at).
        """
        q = np.array(_ecef_one(lon, lat))
        cx, cy = math.floor(lon / CELL_DEG), math.floor(lat / CELL_DEG)
        phi = math.radians(lat)
        rho = _A / math.sqrt(1.0 - _E2 * math.sin(phi) ** 2) * math.cos(phi)
        parts: list[np.ndarray] = []
        chords: list[np.ndarray] = []
        if flt.role is not None:
            roles = [self.roles[flt.role]] if flt.role in self.roles else []
        else:
            roles = [ANY_ROLE]
        xyz = self.xyz
        within = 0
        for r in range(1, MAX_RINGS + 1):
            ring = self._gather(roles, _ring(cx, cy, r) if r > 1 else [*_ring(cx, cy, 1), (cx, cy)])
            if ring:
                slots = np.concatenate(ring) if len(ring) > 1 else ring[0]
                slots = slots[self.mask(slots, flt, fresh_after, now, by_role=True)]
                if len(slots):
                    parts.append(slots)
                    chords.append(_chords(xyz, slots, q))
            bound = _bound(
                lon,
                lat,
                rho,
                (cx - r) * CELL_DEG,
                (cx + r + 1) * CELL_DEG,
                (cy - r) * CELL_DEG,
                (cy + r + 1) * CELL_DEG,
            )
            if len(chords) == 1:
                within = int(np.count_nonzero(chords[0] <= bound))
            elif chords:
                within = sum(int(np.count_nonzero(c <= bound)) for c in chords)
            if within >= want:
                return _ordered(lon, lat, parts, chords, bound, cx, cy, r, self.changes)
        every = np.flatnonzero(self.located[: self.n])
        every = every[self.mask(every, flt, fresh_after, now)]
        return _ordered(lon, lat, [every], [_chords(xyz, every, q)], math.inf, cx, cy, -1, self.changes)

    def _gather(self, roles: list[int], keys: list[tuple[int, int]]) -> list[np.ndarray]:
        """Return the slots of these roles (or :data:`ANY_ROLE`) here, one array per occupied cell."""
        cells, arrays = self.cells, self.arrays
        out: list[np.ndarray] = []
        for role in roles:
            for x, y in keys:
                key = (role, x, y)
                a = arrays.get(key)
                if a is None:
                    members = cells.get(key)
                    if not members:
                        continue
                    a = arrays[key] = np.fromiter(members, np.int64, len(members))
                out.append(a)
        return out

    def unchanged(self, cands: Candidates) -> bool:
        """Tell whether no write touched the cells ``cands`` were gathered from since."""
        if cands.seen == self.changes:  # no write at all since
            return True
        if cands.reach < 0:  # everyone was looked at
            return False
        return self.last_write(cands.cx, cands.cy, cands.reach) <= cands.seen

    def items(
        self, slots: Sequence[int], dist: Sequence[float], loads: dict[int, int]
    ) -> list[dict[str, Any]]:
        """Build the answer's JSON-ready items (see :meth:`PeopleIndex.found`).

        Each is a copy of the slot's template with its distance and load filled in (the
        nested position and skills are shared with the template: read, never changed).
        """
        out = []
        for s, d in zip(slots, dist, strict=True):
            item = self.item[s] or self._template(s)
            item = item.copy()
            item["distance_m"] = round(d, 1)
            item["load"] = loads[item["id"]]
            out.append(item)
        return out

    def body(self, slots: Sequence[int], dist: Sequence[float], loads: dict[int, int]) -> bytes:
        """Return :meth:`items` as JSON, the very bytes ``orjson.dumps(items, option=JSON_OPTIONS)`` gives.

        Each item is its kept pieces joined around its distance and load (rendering 10 items
        whole cost more than the rest of the answer's assembly).
        """
        dumps, pieces = orjson.dumps, self.pieces
        out: list[bytes] = [b"["]
        for s, d in zip(slots, dist, strict=True):
            pid, head, middle, tail = pieces[s] or self._pieces(s)
            out += (head, dumps(round(d, 1)), middle, dumps(loads[pid]), tail, b",")
        if len(out) == 1:
            return b"[]"
        out[-1] = b"]"  # instead of the last comma
        return b"".join(out)

    def _pieces(self, s: int) -> tuple[int, bytes, bytes, bytes]:
        item = self.item[s] or self._template(s)
        text = orjson.dumps({**item, "distance_m": _DISTANCE, "load": _LOAD}, option=JSON_OPTIONS)
        head, rest = text.split(orjson.dumps(_DISTANCE))
        middle, tail = rest.split(orjson.dumps(_LOAD))
        got = self.pieces[s] = (item["id"], head, middle, tail)
        return got

    def _template(self, s: int) -> dict[str, Any]:
        p = self.person[s]
        assert p is not None and p.lon is not None and p.lat is not None and p.position_at is not None
        item = self.item[s] = {
            "id": p.id,
            "name": p.name,
            "role": p.role,
            "distance_m": None,
            "community": p.community_code,
            "phone": p.phone,
            "skills": list(p.skills),
            "party_member": p.party_member,
            "on_duty": p.on_duty,
            "capacity": p.capacity,
            "load": None,
            "position": {"lon": p.lon, "lat": p.lat, "crs": "wgs84", "at": p.position_at},
        }
        return item

    def rows(self, slots: Sequence[int], dist: Sequence[float], loads: dict[int, int]) -> list[NearbyRow]:
        """Build the answer's rows for ``slots`` as :func:`api.store.sql.dispatch.nearest_straight` does."""
        out = []
        for s, d in zip(slots, dist, strict=True):
            p = self.person[s]
            assert p is not None and p.lon is not None and p.lat is not None and p.position_at is not None
            out.append(
                NearbyRow(
                    id=p.id,
                    name=p.name,
                    role=p.role,
                    phone=p.phone,
                    community_code=p.community_code,
                    skills=list(p.skills),
                    party_member=p.party_member,
                    on_duty=p.on_duty,
                    capacity=p.capacity,
                    load=loads[p.id],
                    position_at=p.position_at,
                    lon=p.lon,
                    lat=p.lat,
                    distance_m=float(d),
                )
            )
        return out


def _resized(a: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


def _ring(cx: int, cy: int, r: int) -> list[tuple[int, int]]:
    """Return the cells at Chebyshev distance ``r`` (≥ 1) from cell (cx, cy)."""
    keys = [(x, y) for x in range(cx - r, cx + r + 1) for y in (cy - r, cy + r)]
    keys += [(x, y) for y in range(cy - r + 1, cy + r) for x in (cx - r, cx + r)]
    return keys


def _bound(lon: float, lat: float, rho: float, x0: float, x1: float, y0: float, y1: float) -> float:
    """Bound from below (metres) the geodesic distance from the point to anywhere outside the box.

    Across a parallel: the meridian arc, at least ``_M0`` per radian. Across a meridian:
    the straight line to that meridian's plane, ``rho · sin(Δλ)`` (``rho``: the radius of
    the point's parallel), which the chord and so the geodesic exceed.
    """
    d_lat = math.radians(min(y1 - lat, lat - y0)) * _M0
    d_lon = min(x1 - lon, lon - x0)
    d_lon_m = rho * math.sin(math.radians(d_lon)) if d_lon < 90.0 else rho
    return max(0.0, min(d_lat, d_lon_m) * (1.0 - 1e-12) - _EPS_M)


def _ordered(
    lon: float,
    lat: float,
    parts: list[np.ndarray],
    chords: list[np.ndarray],
    bound: float,
    cx: int = 0,
    cy: int = 0,
    reach: int = -1,
    seen: int = -1,
) -> Candidates:
    if len(parts) == 1:
        slots, chord = parts[0], chords[0]
    else:
        slots = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        chord = np.concatenate(chords) if chords else np.zeros(0)
    order = chord.argsort(kind="stable")
    return Candidates(lon, lat, slots[order], chord[order], bound, cx, cy, reach, seen)


def _chords(xyz: np.ndarray, slots: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Return the straight-line distances (metres) from ``q`` to the earth-centred points of ``slots``.

    (One gather and in-place arithmetic: a request computes a few hundred, where each NumPy
    call's overhead costs more than its arithmetic.)
    """
    d = xyz.take(slots, axis=0)
    d -= q
    out: np.ndarray = np.einsum("ij,ij->i", d, d)
    return np.sqrt(out, out=out)


@dataclass(frozen=True, slots=True)
class Ranked:
    """The outcome of ranking candidates: the answer, or what is missing for it."""

    slots: list[int]
    distances: list[float]
    need_loads: list[int]
    need_wider: bool


_WIDER = Ranked([], [], [], True)


def rank(
    table: _Table,
    cands: Candidates,
    loads: dict[int, int],
    k: int,
    available: bool,
    members: frozenset[int] | None = None,
) -> Ranked:
    """Rank exactly, or say which open loads are still unknown, or that the search must widen.

    ``members`` (a branch filter): only these people qualify, and every one of them is known.
    """
    slots, chords = cands.slots, cands.chords
    if members is not None:
        keep = np.fromiter((int(i) in members for i in table.ids[slots].tolist()), bool, len(slots))
        slots, chords = slots[keep], chords[keep]
    # the people in chord order, as plain ints (a NumPy scalar per comparison costs more); most
    # requests pick their k among the first few, so only a head is read unless more is needed
    head = _Head(table, slots, 2 * (k + EXTRA))
    picked, unknown = head.pick(loads, k, available)
    if len(picked) < k and head.extend():
        picked, unknown = head.pick(loads, k, available)
    ids, caps = head.ids, head.caps
    if len(picked) < k:
        if unknown:
            return Ranked([], [], unknown + _next_unknown(ids, loads, unknown, EXTRA), False)
        if cands.bound < math.inf:
            return _WIDER
        dist = _geodesic(table, slots, cands)
        upper = math.inf
        w = len(ids)
    else:
        # the geodesic exceeds the chord by a few parts in 10⁹ at these distances: one call
        # usually covers everyone who may rank before the k-th (a second one when not)
        last = float(chords[picked[-1]])
        m = int(np.searchsorted(chords, last * (1.0 + 1e-6) + 1e-3, "right"))
        dist = _geodesic(table, slots[:m], cands)
        upper = max(dist[picked].tolist())
        if upper >= cands.bound:
            return _WIDER
        # everyone whose chord is within the k-th geodesic distance may rank before it
        w = int(np.searchsorted(chords, upper + _EPS_M, "right"))
        if w > m:
            dist = np.concatenate([dist, _geodesic(table, slots[m:w], cands)])
        dist = dist[:w]
        if w > len(ids):
            head.extend()
            ids, caps = head.ids, head.caps
    need = [pid for pid in ids[:w] if pid not in loads]
    if need:
        return Ranked([], [], need, False)
    # the k nearest by (geodesic, id), the busy left out when availability is asked for
    best = sorted(
        (d, pid, j)
        for j, (d, pid, cap) in enumerate(zip(dist.tolist(), ids[:w], caps[:w], strict=True))
        if not available or loads[pid] < cap
    )[:k]
    order = [j for _, _, j in best]
    return Ranked(slots[order].tolist(), [d for d, _, _ in best], [], False)


class _Head:
    """The ids and capacities of the first candidates in chord order, read on demand."""

    __slots__ = ("caps", "ids", "slots", "table")

    def __init__(self, table: _Table, slots: np.ndarray, n: int) -> None:
        self.table, self.slots = table, slots
        part = slots[:n] if n < len(slots) else slots
        self.ids: list[int] = table.ids[part].tolist()
        self.caps: list[int] = table.capacity[part].tolist()

    def extend(self) -> bool:
        """Read every candidate; False when the head held them all already."""
        if len(self.ids) == len(self.slots):
            return False
        self.ids = self.table.ids[self.slots].tolist()
        self.caps = self.table.capacity[self.slots].tolist()
        return True

    def pick(self, loads: dict[int, int], k: int, available: bool) -> tuple[list[int], list[int]]:
        """Return the first ``k`` candidates free to take more (positions), and those of unknown load."""
        picked: list[int] = []
        unknown: list[int] = []
        caps = self.caps
        for j, pid in enumerate(self.ids):
            load = loads.get(pid)
            if load is None:
                unknown.append(pid)
            elif not available or load < caps[j]:
                picked.append(j)
                if len(picked) >= k:
                    break
        return picked, unknown


def _next_unknown(ids: list[int], loads: dict[int, int], got: list[int], n: int) -> list[int]:
    seen = set(got)
    out: list[int] = []
    for pid in ids:
        if pid not in loads and pid not in seen:
            out.append(pid)
            if len(out) >= n:
                break
    return out


def _geodesic(table: _Table, slots: np.ndarray, cands: Candidates) -> np.ndarray:
    n = len(slots)
    if not n:
        return np.zeros(0)
    # every array is a fresh copy: the answers may overwrite them (no buffers copied again)
    _, _, d = GEOD.inv(
        np.full(n, cands.lon), np.full(n, cands.lat), table.lon[slots], table.lat[slots], inplace=True
    )
    return np.asarray(d)


@dataclass(frozen=True, slots=True)
class Found:
    """The people a nearest query found, nearest first: slots of a table, distances, open loads."""

    table: _Table
    slots: list[int]
    distances: list[float]
    loads: dict[int, int]

    def points(self) -> tuple[list[int], list[float], list[float]]:
        """Return their ids, longitudes and latitudes."""
        t, s = self.table, self.slots
        return t.ids[s].tolist(), t.lon[s].tolist(), t.lat[s].tolist()

    def body(self) -> bytes:
        """Return :meth:`items` as JSON (:meth:`_Table.body`)."""
        return self.table.body(self.slots, self.distances, self.loads)

    def items(self, which: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Return the JSON-ready items (:meth:`PeopleIndex.found`) of all or of ``which``."""
        if which is None:
            return self.table.items(self.slots, self.distances, self.loads)
        s, d = self.slots, self.distances
        return self.table.items([s[j] for j in which], [d[j] for j in which], self.loads)


async def _keep(_conn: Any) -> None:
    """Return a connection to the pool as it is: it only ever reads, outside transactions.

    (asyncpg's default reset is one more round trip per request.)
    """


@dataclass(frozen=True, slots=True)
class _Batch:
    """The requests waiting for the next catch-up: their candidates, and where the answer goes."""

    ids: set[int]
    future: asyncio.Future[IndexChanges]


def _filled(snapshot: Snapshot, people: list[IndexedPerson]) -> _Table:
    table = _Table(snapshot, len(people) * 2)
    key = _key(snapshot)
    for p in people:
        table.put(p, key)
    return table


class PeopleIndex:
    """Every located person of the store, in memory, current to the last commit a request could see.

    Parameters
    ----------
    engine
        Where to read people from (an autocommit engine): the build.
    url
        The same database: the catch-ups run on a small asyncpg pool of the index's own,
        whose sessions plan prepared statements generically (``plan_cache_mode``).
    poll_s
        Seconds between two catch-ups of the background poller.
    pool_size
        Connections of that pool.
    """

    def __init__(self, engine: AsyncEngine, url: str, poll_s: float = POLL_S, pool_size: int = 4) -> None:
        self.engine = engine
        self.dsn = psycopg_dsn(url)
        self.pool_size = pool_size
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self.poll_s = poll_s
        self._table: _Table | None = None
        self._task: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._next: _Batch | None = None
        self._wake = asyncio.Event()
        self.polls = 0
        self.builds = 0
        #: requests answered, and those left to PostGIS (the store changing faster than they caught up)
        self.answered = 0
        self.fallbacks = 0
        #: told of the people each catch-up found written (the console's live feed of positions)
        self.observers: list[Callable[[list[IndexedPerson]], None]] = []
        #: told after each build is swapped in (the server settles its heap: :mod:`api.heap`)
        self.after_build: list[Callable[[], None]] = []

    @property
    def ready(self) -> bool:
        """Tell whether the index may answer (built once; each answer catches up first)."""
        return self._table is not None

    @property
    def size(self) -> int:
        """Return how many people the index has held a position for (0 before the first build)."""
        return 0 if self._table is None else self._table.n

    async def _connections(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._opening:  # the poller and the first requests may ask at once: one pool
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.pool_size,
                    reset=_keep,
                    server_settings={
                        "application_name": "wangge-people-index",
                        "plan_cache_mode": "force_generic_plan",
                    },
                )
        return self._pool

    async def start(self) -> None:
        """Build in the background and keep polling (a failed build is retried)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="wangge-people-index")

    async def build(self) -> None:
        """Read every located person (one snapshot) and swap in a new table."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snapshot, people = await index_people(conn)
        self._table = await asyncio.to_thread(_filled, snapshot, people)  # CPU work off the event loop
        self.builds += 1
        for hook in self.after_build:
            hook()

    def _written(self, people: list[IndexedPerson]) -> None:
        """Tell the observers who was written (a failing observer is logged; the index goes on)."""
        if not people:
            return
        for observer in self.observers:
            try:
                observer(people)
            except Exception:
                log.exception("a people index observer failed")

    def _apply(self, table: _Table, changes: IndexChanges, asked: Iterable[int]) -> None:
        """Apply a catch-up to ``table`` and tell the observers.

        A table left incomplete answers no request (they ask PostGIS) until the poller's next
        build is swapped in.
        """
        was = table.incomplete
        self._written(table.apply(changes, asked))
        if table.incomplete and not was:
            log.warning("people index: a catch-up named a person it never read whole; building afresh")

    async def catch_up(self) -> None:
        """Read the rows written since the last snapshot (the poller's step)."""
        if self._table is None:
            return
        await self._together([])
        self.polls += 1

    async def _together(self, ids: Sequence[int]) -> IndexChanges:
        """Join the next catch-up: one statement for every request waiting meanwhile.

        The statement starts after each of them asked (its snapshot sees every commit
        before each request), and reads the open load of all their candidates.
        """
        loop = asyncio.get_running_loop()
        batch = self._next
        if batch is None:
            batch = self._next = _Batch(set(), loop.create_future())
        batch.ids.update(ids)
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send(), name="wangge-people-index-sender")
        return await asyncio.shield(batch.future)

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._next = self._next, None
            table = self._table
            if batch is None or table is None:
                continue
            try:
                pool = await self._connections()
                async with pool.acquire() as conn:
                    changes = await index_changes(conn, table.snapshot, sorted(batch.ids))
                self._apply(table, changes, batch.ids)
            except asyncio.CancelledError:
                batch.future.cancel()
                raise
            except Exception as exc:  # every request of the batch fails as its own query would
                batch.future.set_exception(exc)
                continue
            batch.future.set_result(changes)

    async def _run(self) -> None:
        while True:
            try:
                if self._table is None or self._table.incomplete:
                    await self.build()
                else:
                    await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:  # the index keeps its table; each request catches up on its own
                log.exception("people index refresh failed")
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.poll_s)

    async def close(self) -> None:
        """Stop the poller and the sender, and close the pool."""
        for task in (self._task, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._next is not None:
            self._next.future.cancel()
            self._next = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def nearest(
        self,
        lon: float,
        lat: float,
        k: int,
        flt: PeopleFilter,
        fresh_after: dt.datetime,
    ) -> list[NearbyRow] | None:
        """Answer :func:`api.store.sql.dispatch.nearest_straight` from memory and one small query.

        Returns None when the index cannot answer (not built, a filter it does not
        hold, or the store changing faster than this request catches up): ask PostGIS.
        """
        found = await self._ranked(lon, lat, k, flt, fresh_after)
        return None if found is None else found[0].rows(found[1].slots, found[1].distances, found[2])

    async def found(
        self,
        lon: float,
        lat: float,
        k: int,
        flt: PeopleFilter,
        fresh_after: dt.datetime,
    ) -> Found | None:
        """Answer :meth:`nearest` as the ranked people themselves (their items built on demand).

        :meth:`Found.items` gives the JSON-ready items of the endpoint's straight mode: the
        fields of ``NearbyPersonOut`` in its order, as
        :func:`api.services.dispatch.nearest.nearby_person` gives them (distance to 0.1 m),
        which the hot path serialises without building and re-validating models.
        """
        got = await self._ranked(lon, lat, k, flt, fresh_after)
        return None if got is None else Found(got[0], got[1].slots, got[1].distances, got[2])

    async def _ranked(
        self,
        lon: float,
        lat: float,
        k: int,
        flt: PeopleFilter,
        fresh_after: dt.datetime,
    ) -> tuple[_Table, Ranked, dict[int, int]] | None:
        table = self._table
        if table is None or table.incomplete or flt.exclude_task_id is not None:
            return None
        fresh = fresh_after.timestamp()
        branch = flt.party_branch_id
        want = k + EXTRA
        loads: dict[int, int] = {}
        members: frozenset[int] | None = None
        now = time.time()
        first: Candidates | None = None
        if branch is None:
            first = table.candidates(flt, lon, lat, fresh, now, want)
            ask = table.ids[first.slots[:want]].tolist()
        else:
            ask = []
        for _ in range(MAX_ROUNDS):
            if branch is None:
                changes = await self._together(ask)  # applied by the sender
            else:
                pool = await self._connections()
                async with pool.acquire() as raw:
                    changes = await index_changes(raw, table.snapshot, ask, branch)
                self._apply(table, changes, ask)
            if table.incomplete:
                self.fallbacks += 1
                return None
            loads.update(changes.loads)
            if branch is not None and members is None:
                members = changes.members
            while True:
                if members is not None:
                    cands = self._members(table, members, flt, lon, lat, fresh, now)
                elif first is not None and table.unchanged(first):
                    cands = first  # no write touched the cells the candidates came from meanwhile
                else:
                    now = time.time()
                    cands = first = table.candidates(flt, lon, lat, fresh, now, want)
                ranked = rank(table, cands, loads, k, flt.available, members)
                if not ranked.need_wider:
                    break
                want *= 2
                first = None
            if not ranked.need_loads:
                self.answered += 1
                return table, ranked, loads
            ask = ranked.need_loads
        self.fallbacks += 1
        return None

    @staticmethod
    def _members(
        table: _Table,
        members: frozenset[int],
        flt: PeopleFilter,
        lon: float,
        lat: float,
        fresh: float,
        now: float,
    ) -> Candidates:
        slots = np.asarray([table.slot[m] for m in members if m in table.slot], np.int64)
        slots = slots[table.mask(slots, flt, fresh, now)] if len(slots) else slots
        chord = _chords(table.xyz, slots, np.array(_ecef_one(lon, lat)))
        return _ordered(lon, lat, [slots], [chord], math.inf)
