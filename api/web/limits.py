"""Hostile input, rates and load: the limits every request passes.

Used by the authorization step (:mod:`api.web.authorize`) for every routed request
and by the overload middleware (:mod:`api.web.middleware`). Each refusal names the
field and the problem:

* JSON nested deeper than the configured depth → 422;
* ``NaN``/``Infinity`` (or numbers that overflow to them) → 422 naming the field;
* NUL characters in strings (PostgreSQL text cannot hold them) → 422;
* integers beyond 64 bits → 422;
* ``limit``/``k``/page sizes above the configured maximum → 422;
* GeoJSON with too many vertices, parts or nesting → 422 (:func:`check_geometry` for
  endpoints that take GeoJSON, :func:`check_body_geometries` for every body);
* more requests per token (or client address) than a rate allows → 429 + ``Retry-After``;
* more requests in flight than the server takes → queued briefly, then 503 +
  ``Retry-After`` (:class:`Slots`, with a share kept for verified callers).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from api.errors import InvalidInput, RateLimited, TooLarge

MAX_JSON_DEPTH = 32
MAX_VERTICES = 20_000
MAX_PARTS = 500
#: query parameters that size a result; capped at ``SecuritySettings.max_page_size``
SIZE_PARAMS = ("limit", "k", "page_size", "per_page", "size", "count", "top")

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


# --------------------------------------------------------------------------- JSON bodies


def json_depth(raw: bytes) -> int:
    """Measure the maximum nesting depth of a JSON text, without parsing it (no recursion)."""
    depth = best = 0
    for m in _BRACKETS.finditer(_STRING.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            best = max(best, depth)
        else:
            depth -= 1
    return best


def _walk(value: Any, loc: list[str | int]) -> Iterator[tuple[list[str | int], Any]]:
    stack: list[tuple[list[str | int], Any]] = [(loc, value)]
    while stack:
        path, v = stack.pop()
        yield path, v
        if isinstance(v, dict):
            stack.extend(([*path, k], x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend(([*path, i], x) for i, x in enumerate(v))


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a parsed JSON body the store or the app cannot take safely.

    Walks the value once (no recursion): nesting deeper than ``max_depth``,
    non-finite numbers (Python's parser reads ``NaN``, ``Infinity`` and ``1e999``),
    integers beyond 64 bits and NUL characters in strings or keys.

    Raises
    ------
    InvalidInput
        Naming the offending field's location (``["body", "location", "coordinates", 1]``).
    """
    stack: list[tuple[list[str | int], Any, int]] = [(["body"], value, 0)]
    while stack:
        loc, v, depth = stack.pop()
        if isinstance(v, dict):
            if depth + 1 > max_depth:
                raise InvalidInput(f"JSON nested more than {max_depth} levels deep", loc=["body"])
            for k, x in v.items():
                if "\x00" in k:
                    raise InvalidInput("keys must not contain NUL characters", loc=loc)
                stack.append(([*loc, k], x, depth + 1))
        elif isinstance(v, list):
            if depth + 1 > max_depth:
                raise InvalidInput(f"JSON nested more than {max_depth} levels deep", loc=["body"])
            stack.extend(([*loc, i], x, depth + 1) for i, x in enumerate(v))
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise InvalidInput("not a finite number: coordinates and values must be finite", loc=loc)
        elif isinstance(v, str):
            if "\x00" in v:
                raise InvalidInput("text must not contain NUL characters", loc=loc)
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63:
            raise InvalidInput("integer out of range (64-bit)", loc=loc)


def check_json_body(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON body and refuse what :func:`check_json_value` refuses; returns the value.

    Malformed JSON returns None (the framework reports the syntax error itself).
    """
    if not raw.strip():
        return None
    depth = json_depth(raw)
    if depth > max_depth:
        raise InvalidInput(f"JSON nested {depth} levels deep; at most {max_depth} allowed", loc=["body"])
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    check_json_value(value, max_depth)
    return value


_INT = re.compile(r"^[+-]?[0-9]+$")


def _is_int(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` accepts ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def check_integer_text(value: str, loc: list[str | int]) -> None:
    """Refuse an all-digit path/query value that does not fit a 64-bit integer (ids are bigint)."""
    if len(value) > 18 and _INT.match(value) and abs(int(value)) >= 2**63:
        raise InvalidInput("number out of range (at most 9223372036854775807)", loc=loc)


def check_path(params: dict[str, Any]) -> None:
    """Refuse NUL characters and out-of-range integers in path parameters."""
    for k, v in params.items():
        if isinstance(v, str):
            if "\x00" in v:
                raise InvalidInput("path must not contain NUL characters", loc=["path", k])
            check_integer_text(v, ["path", k])
        elif isinstance(v, int) and abs(v) >= 2**63:
            raise InvalidInput("number out of range (at most 9223372036854775807)", loc=["path", k])


_NON_FINITE = re.compile(r"^\s*[+-]?(nan|inf|infinity)\s*$", re.IGNORECASE)


def check_query(params: list[tuple[str, str]], max_page_size: int) -> None:
    """Refuse NUL characters, NaN/Infinity, out-of-range integers and oversized result sizes."""
    for k, v in params:
        if "\x00" in k or "\x00" in v:
            raise InvalidInput("query must not contain NUL characters", loc=["query", k])
        if _NON_FINITE.match(v):
            raise InvalidInput(f"{k} must be a finite number, got {v.strip()}", loc=["query", k])
        check_integer_text(v, ["query", k])
        if k in SIZE_PARAMS and _INT.match(v.strip()) and int(v.strip()) > max_page_size:
            raise InvalidInput(f"{k} must be at most {max_page_size}, got {v}", loc=["query", k])


def check_length(length: int, limit: int) -> None:
    """Refuse a body of ``length`` bytes over ``limit`` (413)."""
    if length > limit:
        raise TooLarge(f"request body of {length} bytes exceeds the limit of {limit} bytes", loc=["body"])


# --------------------------------------------------------------------------- geometry


def check_geometry(
    geometry: Any,
    *,
    loc: list[str | int] | None = None,
    max_vertices: int = MAX_VERTICES,
    max_parts: int = MAX_PARTS,
    max_depth: int = 6,
) -> int:
    """Refuse GeoJSON geometries that are malformed or too complex; returns the vertex count.

    Checks the type, coordinate arrays of the right nesting, finite lon/lat in
    range, at most ``max_vertices`` vertices and ``max_parts`` parts (rings,
    polygons, members of collections), and collections nested at most
    ``max_depth`` deep. Call it on any GeoJSON a client sends.
    """
    loc = list(loc or ["body", "geometry"])
    levels = {
        "Point": 0,
        "MultiPoint": 1,
        "LineString": 1,
        "MultiLineString": 2,
        "Polygon": 2,
        "MultiPolygon": 3,
    }
    total = 0
    parts = 0

    def positions(coords: Any, level: int, where: list[str | int]) -> Iterator[tuple[Any, list]]:
        if level == 0:
            yield coords, where
            return
        if not isinstance(coords, list):
            raise InvalidInput("coordinates must be nested arrays", loc=where)
        for i, c in enumerate(coords):
            yield from positions(c, level - 1, [*where, i])

    def visit(g: Any, where: list[str | int], depth: int) -> None:
        nonlocal total, parts
        if depth > max_depth:
            raise InvalidInput(f"geometry collections nested deeper than {max_depth}", loc=where)
        if not isinstance(g, dict) or not isinstance(g.get("type"), str):
            raise InvalidInput("a GeoJSON geometry object with a 'type' is expected", loc=where)
        kind = g["type"]
        if kind == "GeometryCollection":
            members = g.get("geometries")
            if not isinstance(members, list):
                raise InvalidInput("'geometries' must be an array", loc=[*where, "geometries"])
            for i, m in enumerate(members):
                parts += 1
                visit(m, [*where, "geometries", i], depth + 1)
            return
        if kind not in levels:
            raise InvalidInput(f"unknown geometry type {kind!r}", loc=[*where, "type"])
        coords = g.get("coordinates")
        cloc = [*where, "coordinates"]
        if levels[kind] >= 2 and isinstance(coords, list):
            parts += len(coords)
            if levels[kind] == 3:
                parts += sum(len(p) for p in coords if isinstance(p, list))
        for pos, ploc in positions(coords, levels[kind], cloc):
            if (
                not isinstance(pos, list)
                or len(pos) not in (2, 3)
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in pos)
            ):
                raise InvalidInput("a position must be [lon, lat] numbers", loc=ploc)
            lon, lat = float(pos[0]), float(pos[1])
            if not (math.isfinite(lon) and math.isfinite(lat)):
                raise InvalidInput("coordinates must be finite numbers", loc=ploc)
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise InvalidInput(f"position ({lon:g}, {lat:g}) is out of range", loc=ploc)
            total += 1
            if total > max_vertices:
                raise InvalidInput(f"geometry has more than {max_vertices} vertices", loc=loc)
        if parts > max_parts:
            raise InvalidInput(f"geometry has more than {max_parts} parts", loc=loc)

    visit(geometry, loc, 0)
    return total


GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}
)


def check_body_geometries(
    value: Any, max_vertices: int = MAX_VERTICES, max_parts: int = MAX_PARTS, max_depth: int = 6
) -> None:
    """Refuse any GeoJSON geometry in a JSON body that is too complex (every endpoint, one place).

    Counts vertices (numbers pairs at the leaves of ``coordinates``), parts
    (rings, lines, polygons, collection members) and collection nesting of
    every object with a geometry ``type``. Shape and range are left to the
    endpoint (it names its own fields); only size is refused here.
    """
    for loc, v in _walk(value, ["body"]):
        if not (isinstance(v, dict) and isinstance(v.get("type"), str) and v["type"] in GEOMETRY_TYPES):
            continue
        vertices = parts = 0
        stack: list[tuple[Any, int]] = [(v, 0)]
        while stack:
            g, depth = stack.pop()
            if depth > max_depth:
                raise InvalidInput(f"geometry collections nested deeper than {max_depth}", loc=loc)
            if not isinstance(g, dict):
                continue
            if g.get("type") == "GeometryCollection" and isinstance(g.get("geometries"), list):
                parts += len(g["geometries"])
                stack.extend((m, depth + 1) for m in g["geometries"])
                continue
            arrays: list[Any] = [g.get("coordinates")]
            while arrays:
                a = arrays.pop()
                if not isinstance(a, list) or not a:
                    continue
                if all(isinstance(x, int | float) for x in a):
                    vertices += 1
                else:
                    if isinstance(a[0], list) and a[0] and isinstance(a[0][0], list):
                        parts += len(a)
                    arrays.extend(a)
            if vertices > max_vertices:
                raise InvalidInput(f"geometry has more than {max_vertices} vertices", loc=loc)
            if parts > max_parts:
                raise InvalidInput(f"geometry has more than {max_parts} parts", loc=loc)


# --------------------------------------------------------------------------- rate and load


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key (token id, or client address when anonymous).

    ``rate`` requests per second on average, bursts of ``burst``. Kept in the
    memory of one process (with several workers each counts on its own).
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000):
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str, now: float | None = None) -> float:
        """Take one request from ``key``'s bucket; returns 0, or the seconds to wait when empty."""
        now = time.monotonic() if now is None else now
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            b = self._buckets[key] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens < 1.0:
            return (1.0 - b.tokens) / self.rate
        b.tokens -= 1.0
        return 0.0

    def check(self, key: str, now: float | None = None) -> None:
        """Like :meth:`allow`, raising :class:`RateLimited` (429) when the bucket is empty."""
        wait = self.allow(key, now)
        if wait:
            raise RateLimited(
                f"too many requests: at most {self.rate:g}/s (bursts of {self.burst:g}) "
                "per token; retry later",
                retry_after=wait,
                loc=["header", "authorization"],
            )


class Slots:
    """At most ``limit`` requests in flight, with a share kept for verified callers.

    Requests whose token this process has already verified (``known``) may take any
    free slot. Others (anonymous, or a token not yet seen) may hold at most
    ``limit * anonymous_share`` slots in all and ``per_client`` per client address,
    so slow or abundant anonymous traffic cannot take the slots staff need. A request
    that finds no slot waits up to ``queue_seconds``, then is refused (503).
    """

    def __init__(self, limit: int, queue_seconds: float, anonymous_share: float = 1.0, per_client: int = 0):
        self.limit = limit
        self.queue_seconds = queue_seconds
        self.other_limit = max(1, int(limit * anonymous_share))
        self.per_client = per_client or limit
        self.in_flight = 0
        self.other_in_flight = 0
        self.shed = 0
        self._by_client: dict[str, int] = {}
        self._cond: asyncio.Condition | None = None
        self._waiting = 0  # requests waiting for a slot

    def _free(self, known: bool, client: str) -> bool:
        if self.in_flight >= self.limit:
            return False
        if known:
            return True
        return self.other_in_flight < self.other_limit and self._by_client.get(client, 0) < self.per_client

    async def acquire(self, known: bool, client: str) -> bool:
        """Take a slot (waiting up to ``queue_seconds``); False when none came free."""
        if self._free(known, client):
            self._take(known, client)
            return True
        if self._cond is None:
            self._cond = asyncio.Condition()
        self._waiting += 1
        try:
            async with self._cond:
                await asyncio.wait_for(
                    self._cond.wait_for(lambda: self._free(known, client)), timeout=self.queue_seconds
                )
                self._take(known, client)
                return True
        except TimeoutError:
            self.shed += 1
            return False
        finally:
            self._waiting -= 1

    def _take(self, known: bool, client: str) -> None:
        self.in_flight += 1
        if not known:
            self.other_in_flight += 1
            self._by_client[client] = self._by_client.get(client, 0) + 1

    async def release(self, known: bool, client: str) -> None:
        """Give a slot back and wake whoever waits for one."""
        self.in_flight -= 1
        if not known:
            self.other_in_flight -= 1
            left = self._by_client.get(client, 1) - 1
            if left:
                self._by_client[client] = left
            else:
                self._by_client.pop(client, None)
        if self._cond is not None and self._waiting:  # nobody waits: nobody to wake
            async with self._cond:
                self._cond.notify_all()
