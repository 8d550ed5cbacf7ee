"""The periodic dispatch sweep.

Lapsed offers move on, open tasks are offered again, late tasks expire, position history
past its retention is pruned.

Called by ``POST /api/v1/tasks/expire-offers`` and by ``wangge dispatch sweep``
(run it from cron every minute); offers also expire lazily whenever a task is read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.services.dispatch import rules
from api.settings import DispatchSettings
from api.store.sql import people, tasks


async def sweep(
    conn: AsyncConnection, settings: DispatchSettings, retry_open: bool = True, limit: int = 1000
) -> dict[str, int]:
    """Run one sweep inside the caller's transaction; returns what it did."""
    ids = await tasks.due_for_sweep(conn, retry_open, limit)
    retention = dt.timedelta(days=settings.history_retention_days)
    fresh_after = rules.stale_before(rules.utcnow(), settings)
    before: dict[int, Any] = {i: (await tasks.get_task(conn, i)) for i in ids}
    counts = {"examined": len(ids), "offered": 0, "open": 0, "expired": 0}
    for i in ids:
        t = await tasks.refresh(conn, i, settings, fresh_after, retry_open=retry_open)
        if t is None:
            continue
        if t["status"] == "offered" and (
            before[i]["status"] != "offered" or t["offered_to"] != before[i]["offered_to"]
        ):
            counts["offered"] += 1
        elif t["status"] == "open":
            counts["open"] += 1
        elif t["status"] == "expired":
            counts["expired"] += 1
    counts["history_pruned"] = await people.prune_history(conn, rules.utcnow() - retention)
    return counts
