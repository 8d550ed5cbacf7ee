"""SQL of resident tickets and report photos (migration ``0023_intake``).

A ticket maps the SHA-256 of a secret to the incident it follows; the secret itself is
never stored. Typed rows only; the rules are in :mod:`api.services.incidents.tickets`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Photo:
    """A stored photo: its type and bytes."""

    content_type: str
    data: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class AreaOutline:
    """The communities' outlines as one GeoJSON FeatureCollection text, and their extent."""

    geojson: str
    bounds: tuple[float, float, float, float] | None


async def insert_ticket(conn: AsyncConnection, secret_hash: str, incident_id: int) -> None:
    """Store a ticket (nothing happens when the same ticket is stored again)."""
    await conn.execute(
        text(
            "INSERT INTO report_tickets (secret_hash, incident_id, city_code) "
            "VALUES (:h, :id, (SELECT city_code FROM incidents WHERE id = :id)) "
            "ON CONFLICT (secret_hash) DO NOTHING"
        ),
        {"h": secret_hash, "id": incident_id},
    )


async def ticket_incident(conn: AsyncConnection, secret_hash: str) -> int | None:
    """Return the incident a ticket follows (None: no such ticket)."""
    value = (
        await conn.execute(
            text("SELECT incident_id FROM report_tickets WHERE secret_hash = :h"), {"h": secret_hash}
        )
    ).scalar_one_or_none()
    return None if value is None else int(value)


async def insert_photo(
    conn: AsyncConnection, incident_id: int, content_type: str, data: bytes, sha256: str
) -> None:
    """Store the photo of a case (one per case: a second one is ignored)."""
    await conn.execute(
        text(
            "INSERT INTO incident_photos (incident_id, city_code, content_type, size, sha256, data) "
            "VALUES (:id, (SELECT city_code FROM incidents WHERE id = :id), :t, :n, :h, :d) "
            "ON CONFLICT (incident_id) DO NOTHING"
        ),
        {"id": incident_id, "t": content_type, "n": len(data), "h": sha256, "d": data},
    )


async def photo(conn: AsyncConnection, incident_id: int) -> Photo | None:
    """Read the photo of a case, None when it has none."""
    row = (
        await conn.execute(
            text("SELECT content_type, data, sha256 FROM incident_photos WHERE incident_id = :id"),
            {"id": incident_id},
        )
    ).first()
    return None if row is None else Photo(row.content_type, bytes(row.data), row.sha256)


async def has_photo(conn: AsyncConnection, incident_id: int) -> bool:
    """Tell whether a case has a photo."""
    return bool(
        (
            await conn.execute(
                text("SELECT EXISTS (SELECT 1 FROM incident_photos WHERE incident_id = :id)"),
                {"id": incident_id},
            )
        ).scalar()
    )


_OUTLINES = text(
    """
    SELECT json_build_object(
             'type', 'FeatureCollection',
             'features', coalesce(json_agg(json_build_object(
               'type', 'Feature',
               'properties', json_build_object('code', c.code, 'name', c.name),
               'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(c.geom, 0.00005), 6)::json)
             ORDER BY c.code), '[]'::json))::text AS fc,
           ST_XMin(ST_Extent(c.geom)) AS w, ST_YMin(ST_Extent(c.geom)) AS s,
           ST_XMax(ST_Extent(c.geom)) AS e, ST_YMax(ST_Extent(c.geom)) AS n
    FROM communities c
    """
)


async def community_outlines(conn: AsyncConnection) -> AreaOutline:
    """Read every community's outline and name (public facts), simplified, as GeoJSON."""
    row = (await conn.execute(_OUTLINES)).mappings().one()
    corners = (row["w"], row["s"], row["e"], row["n"])
    bounds = (
        None
        if corners[0] is None
        else (float(corners[0]), float(corners[1]), float(corners[2]), float(corners[3]))
    )
    return AreaOutline(str(row["fc"]), bounds)
