"""Liveness and versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ConnDep

router = APIRouter(tags=["health"])

_VERSIONS = text(
    "SELECT current_setting('server_version') AS postgres, postgis_lib_version() AS postgis, "
    "(SELECT extversion FROM pg_extension WHERE extname = 'pgrouting') AS pgrouting, "
    "(SELECT version_num FROM alembic_version ORDER BY 1 DESC LIMIT 1) AS schema"
)


@router.get("/health", summary="Database and PostGIS versions")
async def health(conn: ConnDep) -> dict[str, Any]:
    row = (await conn.execute(_VERSIONS)).mappings().one()
    return {"status": "ok", "database": dict(row)}
