"""Reads that may lag: a streaming replica while it keeps up, else the primary.

``WANGGE_DATABASE_READ_URL`` names a hot standby. :class:`Replica` holds the primary's
autocommit engine and the replica's; :attr:`Replica.engine` is the one that reads which may
lag use *now*: the replica while it is at most ``replica_max_lag_s`` behind, the primary
when it lags more or does not answer. Nothing is measured per request: a background task
(:meth:`Replica.start`) checks every ``replica_check_s`` seconds, and :attr:`Replica.status`
is what ``/health`` reports (``ok``, ``lagging N s → primary``, ``down → primary``).

**How lag is measured (WAL positions, no clocks).** Each check first reads the primary's
WAL position (``pg_current_wal_lsn()``), then the replica's replay position
(``pg_last_wal_replay_lsn()``). The primary positions the replica has not replayed yet are
kept with the time they were seen; the lag is the age of the oldest of them (0 when the
replica has replayed everything the primary had written at the last check). An idle primary
thus never makes an up-to-date replica look late, as ``now() - pg_last_xact_replay_timestamp()``
would, and the two machines' clocks need not agree; the figure is exact to one check
interval. The written position is the one compared, not the insert position: WAL of commits
that do not wait for the disk (``synchronous_commit`` off, as position reports commit) counts
once the WAL writer has written it, at most three ``wal_writer_delay`` later; the insert
position may rest past the last record (a page header) on an idle primary, which would make a
caught-up replica look ever later. A server that is not in recovery (the URL names a
primary, or a promoted standby) has no lag to measure and is used as it is.

**Between two checks** a replica that went away is noticed by the request that meets it: its
pool pings a connection before lending it (``pool_pre_ping``), a failed ping or connect marks
the replica down at once and the request reads from the primary instead (never a 500); a
connection lost in the middle of a query answers 503 like an unreachable primary would, and
marks the replica down for the requests after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("wangge.replica")

State = Literal["off", "ok", "lagging", "down"]

_PRIMARY = text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS lsn")
_REPLICA = text(
    "SELECT pg_is_in_recovery() AS standby, "
    "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replayed, "
    "pg_last_xact_replay_timestamp() AS replayed_at, "
    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS paused"
)
#: primary positions kept while the replica is behind (one per check: hours at 1 s)
MAX_SAMPLES = 10_000
#: what counts as "the server did not answer"
_UNREACHABLE = (OSError, SQLAlchemyError, TimeoutError)


@dataclass(frozen=True)
class ReplicaStatus:
    """What the last check (or a failed request) found out about the replica.

    Attributes
    ----------
    state
        ``off`` (no replica configured), ``ok`` (serving), ``lagging`` (behind more than the
        bound: reads go to the primary), ``down`` (does not answer: reads go to the primary).
    lag_s
        How far behind the primary it is (seconds); None when unknown (down, off).
    checked_at
        When this was found out (UTC).
    paused
        WAL replay is paused on the replica (``pg_wal_replay_pause()``).
    error
        The kind of failure when down (an exception's class name, never its text).
    """

    state: State
    lag_s: float | None = None
    checked_at: dt.datetime | None = None
    paused: bool = False
    error: str | None = None

    @property
    def serving(self) -> bool:
        """Tell whether reads that may lag go to the replica."""
        return self.state == "ok"

    @property
    def label(self) -> str:
        """Say it as ``/health`` does: ``ok``, ``lagging 12 s → primary``, ``down → primary``."""
        if self.state == "lagging":
            return f"lagging {round(self.lag_s or 0)} s → primary"
        if self.state == "down":
            return "down → primary"
        return self.state


class Replica:
    """Chooses where reads that may lag go, from a background check of the replica's lag.

    Parameters
    ----------
    primary
        The primary's autocommit engine (what reads use when the replica cannot serve).
    replica
        The replica's engine (pre-pinged pool); None: no replica, everything reads the primary.
    probe
        The engine the checks use on the replica (default: ``replica``); the app gives it one
        connection of its own, so checks never wait for, nor take, a request's connection.
    max_lag_s, check_s, timeout_s
        The lag bound, the check interval, and how long a check may take before the replica
        counts as down (``WANGGE_REPLICA_*``).
    """

    def __init__(
        self,
        primary: AsyncEngine,
        replica: AsyncEngine | None,
        probe: AsyncEngine | None = None,
        *,
        max_lag_s: float = 10.0,
        check_s: float = 1.0,
        timeout_s: float = 2.0,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.probe = probe or replica
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self.timeout_s = timeout_s
        self._status = ReplicaStatus("off") if replica is None else ReplicaStatus("down", error="NotChecked")
        #: (monotonic time, primary WAL position) seen at checks and not replayed by the replica yet
        self._behind: deque[tuple[float, int]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.checks = 0

    # ------------------------------------------------------------------ state
    @property
    def status(self) -> ReplicaStatus:
        """The replica as last seen."""
        return self._status

    @property
    def engine(self) -> AsyncEngine:
        """The engine reads that may lag use now: the replica while it serves, else the primary."""
        if self.replica is not None and self._status.serving:
            return self.replica
        return self.primary

    def _set(self, status: ReplicaStatus) -> ReplicaStatus:
        before = self._status
        self._status = status
        if status.state != before.state:
            level = logging.INFO if status.serving else logging.WARNING
            log.log(level, "replica: %s (was %s)", status.label, before.label)
        return status

    def failed(self, exc: BaseException) -> None:
        """Mark the replica down now (a request could not reach it); the next check may restore it."""
        if self.replica is None or self._status.state == "down":
            return
        now = dt.datetime.now(dt.UTC)
        self._set(ReplicaStatus("down", checked_at=now, error=type(exc).__name__))

    # ------------------------------------------------------------------ checking
    async def check(self) -> ReplicaStatus:
        """Measure the replica's lag once and decide where reads go (see the module docstring)."""
        if self.probe is None:
            return self._status
        self.checks += 1
        seen = time.monotonic()
        now = dt.datetime.now(dt.UTC)
        primary_lsn: int | None = None
        try:
            async with asyncio.timeout(self.timeout_s), self.primary.connect() as conn:
                primary_lsn = int((await conn.execute(_PRIMARY)).scalar_one())
        except _UNREACHABLE:
            primary_lsn = None  # the primary is down: judge from what was seen before
        try:
            async with asyncio.timeout(self.timeout_s), self.probe.connect() as conn:
                row = (await conn.execute(_REPLICA)).mappings().one()
        except _UNREACHABLE as exc:
            self._behind.clear()
            return self._set(ReplicaStatus("down", checked_at=now, error=type(exc).__name__))
        if not row["standby"]:
            self._behind.clear()
            return self._set(ReplicaStatus("ok", lag_s=0.0, checked_at=now))
        lag = round(self._lag(seen, primary_lsn, int(row["replayed"] or 0)), 1)
        state: State = "ok" if lag <= self.max_lag_s else "lagging"
        paused = bool(row["paused"])
        return self._set(ReplicaStatus(state, lag_s=lag, checked_at=now, paused=paused))

    def _lag(self, seen: float, primary_lsn: int | None, replayed: int) -> float:
        """Age of the oldest primary position the replica has not replayed (0: caught up)."""
        behind = self._behind
        newer = primary_lsn is not None and (not behind or primary_lsn > behind[-1][1])
        if newer and primary_lsn is not None and len(behind) < MAX_SAMPLES:
            behind.append((seen, primary_lsn))
        while behind and behind[0][1] <= replayed:
            behind.popleft()
        return seen - behind[0][0] if behind else 0.0

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            try:
                await self.check()
            except Exception:  # a bug must not end the checks: log it and go on
                log.exception("replica check failed")

    async def start(self) -> None:
        """Check once (so the first request already knows), then keep checking in the background."""
        if self.replica is None or self._task is not None:
            return
        await self.check()
        self._task = asyncio.create_task(self._loop(), name="wangge-replica-check")

    async def close(self) -> None:
        """Stop the checks and close the replica's pools (the primary's belongs to the app)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for engine in {id(e): e for e in (self.replica, self.probe) if e is not None}.values():
            await engine.dispose()

    # ------------------------------------------------------------------ lending
    async def usable_engine(self) -> AsyncEngine:
        """Return :attr:`engine`, the replica only once it answered (for services that connect several times).

        A replica that does not answer is marked down and the primary is returned.
        """
        engine = self.engine
        if engine is self.primary:
            return engine
        try:
            async with asyncio.timeout(self.timeout_s), engine.connect():
                pass  # the pool pings the connection it lends
        except _UNREACHABLE as exc:
            self.failed(exc)
            return self.primary
        return engine

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """Lend an autocommit connection for a read that may lag (replica, or primary as fallback)."""
        engine = self.engine
        if engine is self.primary:
            async with self.primary.connect() as conn:
                yield conn
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = engine.connect()
                await conn.start()
        except _UNREACHABLE as exc:
            self.failed(exc)
            async with self.primary.connect() as conn:
                yield conn
            return
        try:
            yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.__cause__, OSError):
                self.failed(exc)
            raise
        finally:
            await conn.close()
