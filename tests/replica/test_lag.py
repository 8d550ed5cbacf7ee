"""How the replica's lag is worked out from WAL positions, and how /health words it (no server needed)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from api.store.replica import Replica, ReplicaStatus


def _replica() -> Replica:
    # engines connect lazily: nothing here opens a connection
    primary = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    standby = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    return Replica(primary, standby, max_lag_s=5)


def test_lag_is_the_age_of_the_oldest_primary_position_not_replayed() -> None:
    r = _replica()
    assert r._lag(0.0, 1000, 1000) == 0.0  # replayed what the primary had written
    assert r._lag(1.0, 2000, 1000) == 0.0  # behind, first seen now
    assert r._lag(3.5, 2000, 1500) == 2.5  # still missing position 2000, seen 2.5 s ago
    assert r._lag(4.0, 3000, 1500) == 3.0  # newer writes do not reset the age of the oldest
    assert r._lag(6.0, 3000, 2000) == 2.0  # 2000 replayed: the oldest missing is 3000, seen at 4.0
    assert r._lag(7.0, 3000, 3000) == 0.0  # caught up


def test_an_idle_primary_never_makes_an_up_to_date_replica_late() -> None:
    r = _replica()
    for t in range(0, 3600, 60):  # an hour without writes
        assert r._lag(float(t), 5000, 5000) == 0.0


def test_the_primary_unreachable_keeps_what_was_seen() -> None:
    r = _replica()
    r._lag(0.0, 2000, 1000)
    assert r._lag(10.0, None, 1000) == 10.0
    assert r._lag(11.0, None, 2000) == 0.0


def test_labels_say_where_reads_go() -> None:
    assert ReplicaStatus("ok", lag_s=0.3).label == "ok"
    assert ReplicaStatus("lagging", lag_s=12.4).label == "lagging 12 s → primary"
    assert ReplicaStatus("down", error="ConnectionRefusedError").label == "down → primary"
    assert ReplicaStatus("ok").serving and not ReplicaStatus("lagging", lag_s=9).serving
    assert not ReplicaStatus("down").serving
    r = _replica()
    assert r.engine is r.primary  # not checked yet: the primary serves
    r.failed(OSError())
    assert r.status.state == "down" and r.engine is r.primary
