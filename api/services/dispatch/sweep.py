"""The periodic dispatch sweep: offers move on, open tasks are retried, late ones expire.

Position history past its retention is pruned too. Called by
``POST /api/v1/tasks/expire-offers`` and by ``wangge dispatch sweep`` (run it from
cron every minute); offers also expire lazily whenever a task is read.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import policy
from api.auth.principal import Principal
from api.services.dispatch import rules
from api.services.dispatch.offers import bring_up_to_date
from api.services.dispatch.views import SweepCounts
from api.settings import DispatchSettings
from api.store.sql import people, tasks


async def sweep(
    conn: AsyncConnection,
    principal: Principal | None,
    settings: DispatchSettings,
    retry_open: bool = True,
    limit: int = 1000,
) -> SweepCounts:
    """Run one sweep inside the caller's transaction.

    Parameters
    ----------
    conn
        A connection inside a transaction; the tasks swept stay locked until it ends
        (tasks locked by someone else are skipped: they are being brought up to date).
    principal
        The caller: the sweep covers the tasks and people of its area and city. None is the
        operator at the command line (the whole store).
    settings
        Offer window, staleness, position history retention.
    retry_open
        Offer open tasks again (someone may have become free).
    limit
        At most this many tasks per run.

    Returns
    -------
    SweepCounts
        What the sweep did.
    """
    area = policy.Area() if principal is None else policy.token_area(principal)
    ids = await tasks.due_for_sweep(conn, retry_open, limit, area.community, area.district, area.city)
    now = rules.utcnow()
    fresh_after = rules.stale_before(now, settings)
    offered = still_open = expired = 0
    for task_id in ids:
        before = await tasks.get_task(conn, task_id)
        if before is None:
            continue
        after = await bring_up_to_date(conn, before, settings, fresh_after, retry_open=retry_open)
        if after.status == "offered" and (
            before.status != "offered" or after.offered_to != before.offered_to
        ):
            offered += 1
        elif after.status == "open":
            still_open += 1
        elif after.status == "expired":
            expired += 1
    pruned = await people.prune_history(
        conn, rules.history_cutoff(now, settings), area.community, area.district, area.city
    )
    return SweepCounts(
        examined=len(ids), offered=offered, open=still_open, expired=expired, history_pruned=pruned
    )
