"""An intake's live message, sent by its server after the commit (migration ``0035_intake_triggers``).

On its autocommit path the intake's statement leaves its ``NOTIFY`` to the server
(:class:`api.store.live_send.LiveSender`), so the commit does not take PostgreSQL's
notification-queue lock. These tests check what the console relies on: every case posted is
announced exactly once (never by both the trigger and the server), with the message the
trigger would have sent, before the 201; and that every other writer (a transaction, the
console's window intake) is still announced by the trigger from its own transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from api.auth.principal import Principal
from api.services.coords import CRSName
from api.services.incidents import intake
from api.services.incidents.inputs import Report
from api.settings import IncidentSettings
from api.store.engine import psycopg_dsn, with_driver
from tests.conftest import auth
from tests.incidents.conftest import report

FAST = "application/json"
SLOW = "application/json; charset=utf-8"


@pytest.fixture
def listener(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Yield an autocommit connection listening on the live channel."""
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        conn.execute("LISTEN wangge_live")
        yield conn


def _drain(conn: psycopg.Connection[Any], timeout: float = 0.5) -> list[str]:
    """Every payload heard until the channel is quiet for ``timeout`` seconds."""
    return [n.payload for n in conn.notifies(timeout=timeout)]


def _about(payloads: list[str], iid: int) -> list[str]:
    """The incident messages naming case ``iid``."""
    out = []
    for p in payloads:
        msg = json.loads(p)
        if msg.get("k") == "incident" and any(r.get("id") == iid for r in msg.get("rows", [])):
            out.append(p)
    return out


def _post(client: TestClient, body: Any, ctype: str, headers: dict[str, str]) -> Any:
    raw = json.dumps(body, ensure_ascii=False).encode()
    return client.post("/api/v1/incidents", content=raw, headers={**headers, "Content-Type": ctype})


def test_each_posted_case_is_announced_once_by_its_server_before_the_201(
    client: TestClient, make_token: Any, interior_point: Any, listener: psycopg.Connection[Any]
) -> None:
    """Fast path and FastAPI's path: one message per case, already sent when the 201 arrives."""
    sender = client.app.state.live_sender  # type: ignore[attr-defined]
    tok = make_token("reporter")
    for n, ctype in enumerate((FAST, SLOW)):
        p = interior_point(offset=1 + n)
        _drain(listener, 0.1)
        sent = sender.sent
        r = _post(client, report(p, item="EV-011"), ctype, {**auth(tok), "Idempotency-Key": f"live-{n}"})
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
        # sent before the answer: the sender counted it by the time the 201 was read
        assert sender.sent == sent + 1 and sender.dropped == 0
        mine = _about(_drain(listener), iid)
        assert len(mine) == 1, mine
        row = json.loads(mine[0])["rows"][0]
        assert json.loads(mine[0])["op"] == "INSERT"
        assert row["grid"] == p["grid_id"] and row["status"] == "assigned" and row["item"] == "EV-011"
        # a replay writes nothing and announces nothing
        again = _post(client, report(p, item="EV-011"), ctype, {**auth(tok), "Idempotency-Key": f"live-{n}"})
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert _about(_drain(listener), iid) == [] and sender.sent == sent + 1


def test_the_servers_message_is_the_triggers_message(
    client: TestClient, make_token: Any, interior_point: Any, listener: psycopg.Connection[Any]
) -> None:
    """The same report announced by the server and by the trigger: one message but for id and due."""
    app_state = client.app.state  # type: ignore[attr-defined]
    tok = make_token("reporter")
    p = interior_point(offset=3)
    heard: dict[str, dict[str, Any]] = {}
    sender = app_state.live_sender
    try:
        for how in ("server", "trigger"):
            app_state.live_sender = sender if how == "server" else None  # None: the trigger announces
            _drain(listener, 0.1)
            r = _post(client, report(p, item="EV-014"), FAST, {**auth(tok), "Idempotency-Key": f"same-{how}"})
            assert r.status_code == 201, r.text
            mine = _about(_drain(listener), r.json()["id"])
            assert len(mine) == 1, (how, mine)
            heard[how] = json.loads(mine[0])
    finally:
        app_state.live_sender = sender
    server, trigger = heard["server"], heard["trigger"]
    assert list(server) == list(trigger) == ["k", "op", "rows"]
    s_row, t_row = server["rows"][0], trigger["rows"][0]
    assert list(s_row) == list(t_row)  # the same keys in the same order
    assert s_row["id"] != t_row["id"]
    own = {"id", "due"}
    assert {k: v for k, v in s_row.items() if k not in own} == {
        k: v for k, v in t_row.items() if k not in own
    }
    assert s_row["r"] and set(s_row["r"]) == set(t_row["r"])  # the reporting token, for its own updates


async def test_inside_a_transaction_the_trigger_announces_at_commit(
    db_url: str, sql: Any, listener: psycopg.Connection[Any]
) -> None:
    """In a caller's transaction (console, CLI) ``announce`` is not used: the trigger sends at commit."""
    grid, lon, lat, community = sql(
        "SELECT g.id, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)), g.community_code "
        "FROM grids g JOIN people w ON w.id = g.worker_id WHERE g.active AND w.on_duty ORDER BY g.code "
        "OFFSET 5 LIMIT 1"
    )[0]
    told: list[str] = []

    async def announce(message: str) -> None:
        told.append(message)

    engine = create_async_engine(with_driver(db_url, "asyncpg"))
    try:
        async with engine.begin() as conn:
            done = await intake.report_incident(
                conn,
                Principal(token_id=900_036, role="dispatcher", community_code=community),
                Report(
                    item_code="EV-006",
                    description="交易内上报",
                    channel="phone",
                    lon=lon,
                    lat=lat,
                    crs=CRSName.wgs84,
                ),
                "live-in-tx",
                IncidentSettings(),
                tolerance_m=15.0,
                announce=announce,
            )
            iid = done.view.incident.id
            assert _about(_drain(listener, 0.3), iid) == []  # not before the commit
    finally:
        await engine.dispose()
    assert told == []
    mine = _about(_drain(listener), iid)
    assert len(mine) == 1 and json.loads(mine[0])["rows"][0]["grid"] == grid


def test_the_migration_adds_the_guard_and_takes_it_out_again(empty_db_url: str) -> None:
    """Downgrade: 0031's body exactly; upgrade again: the guard once, the rest unchanged."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from api.store.migrate import alembic_config

    def body() -> str:
        with psycopg.connect(psycopg_dsn(empty_db_url), autocommit=True) as conn:
            row = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'wangge_live_incident'").fetchone()
        assert row is not None
        return str(row[0])

    guarded = body()
    assert guarded.count("current_setting('wangge.live_deferred', true) = 'on'") == 1
    cfg = alembic_config(empty_db_url)
    previous = str(ScriptDirectory.from_config(cfg).get_revision("0035_intake_triggers").down_revision)
    command.downgrade(cfg, previous)
    plain = body()
    assert "live_deferred" not in plain and "PERFORM pg_notify('wangge_live', msg);" in plain
    command.upgrade(cfg, "heads")
    assert body() == guarded
