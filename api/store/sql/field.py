"""SQL of the field worker's page: the ledger of device actions done once, a worker's grids."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class DoneAction:
    """An action already done for a key: what it was and what it answered."""

    key: str
    kind: str
    done_at: dt.datetime
    result: dict[str, Any]


_CLAIM = text(
    "INSERT INTO field_actions (key, token_id, kind) VALUES (:key, :token, :kind) "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
)
_DONE = text("SELECT key, kind, done_at, result FROM field_actions WHERE key = :key")
_RESULT = text("UPDATE field_actions SET result = CAST(:result AS jsonb) WHERE key = :key")
_GRIDS = text("SELECT code FROM grids WHERE active AND worker_id = :person ORDER BY code")


async def claim(conn: AsyncConnection, key: str, token_id: int, kind: str) -> bool:
    """Claim a key for an action in this transaction; False when it was done already.

    A concurrent claim of the same key waits for the first transaction: it gets False
    when that one committed, True when it rolled back.
    """
    row = (await conn.execute(_CLAIM, {"key": key, "token": token_id, "kind": kind})).first()
    return row is not None


async def done(conn: AsyncConnection, key: str) -> DoneAction | None:
    """Read the action done for a key, or None."""
    row = (await conn.execute(_DONE, {"key": key})).mappings().first()
    return DoneAction(**row) if row else None


async def keep_result(conn: AsyncConnection, key: str, result: dict[str, Any]) -> None:
    """Store the answer of the action claimed under ``key`` (JSON-ready values)."""
    await conn.execute(_RESULT, {"key": key, "result": json.dumps(result, default=str)})


async def worker_grids(conn: AsyncConnection, person_id: int) -> list[str]:
    """Codes of the active grids whose worker is this person (一格一员: usually one)."""
    return [r[0] for r in (await conn.execute(_GRIDS, {"person": person_id})).all()]
