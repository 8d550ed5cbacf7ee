"""The store: embedded cluster, migrations, health, tokens — on real PostGIS."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.errors import ClusterError
from api.store.cluster import Cluster, free_port
from api.store.engine import psycopg_dsn
from api.store.migrate import current_heads
from api.web.app import create_app


@pytest.fixture
def tmp_path() -> Iterator[Path]:  # noqa: F811 - a private folder, not pytest's shared basetemp
    folder = Path(tempfile.mkdtemp(prefix="wangge-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_migrations_create_the_whole_schema_on_postgis(empty_db_url: str) -> None:
    with psycopg.connect(psycopg_dsn(empty_db_url)) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        geoms = {
            (r[0], r[1], r[2], r[3])
            for r in conn.execute("SELECT f_table_name, f_geometry_column, type, srid FROM geometry_columns")
        }
        gist = {
            r[0] for r in conn.execute("SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist%'")
        }
        exts = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
    for t in (
        "admin_areas",
        "communities",
        "plans",
        "grids",
        "buildings",
        "party_orgs",
        "party_members",
        "party_group_buildings",
        "people",
        "departments",
        "service_items",
        "incidents",
        "incident_events",
        "visits",
        "points_ledger",
        "streets",
        "api_tokens",
        "residents",
        "ratings",
    ):
        assert t in tables
    assert ("grids", "geom", "MULTIPOLYGON", 4326) in geoms
    assert ("people", "position", "POINT", 4326) in geoms
    assert all(srid == 4326 for *_, srid in geoms)
    assert {"grids", "buildings", "communities", "people", "incidents", "streets"} <= gist
    assert {"postgis", "pgrouting"} <= exts
    assert current_heads(empty_db_url)


def test_every_growing_table_carries_the_city_code(empty_db_url: str) -> None:
    with psycopg.connect(psycopg_dsn(empty_db_url)) as conn:
        with_city = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE column_name = 'city_code'"
            )
        }
    for t in (
        "communities",
        "grids",
        "buildings",
        "people",
        "incidents",
        "incident_events",
        "visits",
        "points_ledger",
        "streets",
        "party_orgs",
        "residents",
    ):
        assert t in with_city, t


def test_health_shows_status_to_everyone_and_versions_to_admins(empty_db_url: str) -> None:
    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(empty_db_url)
    with engine.begin() as conn:
        admin = create_token(conn, "admin")[1]
        planner = create_token(conn, "planner")[1]
    engine.dispose()
    with TestClient(create_app(database_url=empty_db_url)) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/health", headers={"Authorization": f"Bearer {planner}"}).json() == {"status": "ok"}
        body = c.get("/health", headers={"Authorization": f"Bearer {admin}"}).json()
    assert body["status"] == "ok"
    assert body["database"]["postgres"].startswith(("15", "16", "17"))
    assert body["database"]["postgis"][0] == "3"
    assert body["database"]["pgrouting"]
    assert body["database"]["schema_version"]


def test_health_answers_503_with_a_body_when_the_database_is_down(
    pg_cluster: Cluster, empty_template: str
) -> None:
    from tests.conftest import EMPTY_TEMPLATE, clone_database

    url = clone_database(pg_cluster, EMPTY_TEMPLATE, "health_down")
    name = url.rsplit("/", 1)[-1]
    with TestClient(create_app(database_url=url), raise_server_exceptions=False) as c:
        assert c.get("/health").json() == {"status": "ok"}
        admin = make_url(pg_cluster.url).set(database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(psycopg_dsn(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # the store goes away under the server
        r = c.get("/health")
        assert r.status_code == 503 and r.json() == {"status": "unavailable"}
        assert r.headers["retry-after"] == "1"
        api = c.get("/api/v1/communities", headers={"Authorization": "Bearer wg_whatever"})
        assert api.status_code == 503 and api.json()["detail"][0]["type"] == "unavailable"


def test_embedded_cluster_starts_stops_and_restarts(tmp_path: Path) -> None:
    c = Cluster(data_dir=tmp_path / "pg", port=free_port(), fast=True)
    try:
        c.start()
        assert c.is_running()
        with psycopg.connect(psycopg_dsn(c.url)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        if os.geteuid() == 0:  # run as root: the server must not run as root
            owner = (c.pgdata / "PG_VERSION").stat().st_uid
            assert owner != 0
        c.stop()
        assert not c.is_running()
        c.start()  # the second start reuses the cluster and its password
        with psycopg.connect(psycopg_dsn(c.url)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        c.destroy()


def test_embedded_cluster_refuses_a_taken_port_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        c = Cluster(data_dir=tmp_path / "pg", port=port, fast=True)
        try:
            with pytest.raises(ClusterError, match=f"port {port} is already in use.*WANGGE_PG_PORT"):
                c.start()
        finally:
            c.destroy()


def test_embedded_cluster_refuses_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    c = Cluster(data_dir=blocker / "pg", port=free_port())
    with pytest.raises(ClusterError, match="not writable.*WANGGE_DATA_DIR"):
        c.init()


def test_the_migrations_match_the_table_declarations(empty_db_url: str) -> None:
    """One head, and Alembic finds nothing in api/store/models.py that the migrations lack."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from api.store.migrate import alembic_config

    cfg = alembic_config(empty_db_url)
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1
    command.check(cfg)  # raises AutogenerateDiffsDetected on any difference


def test_the_start_page_says_where_everything_is(empty_db_url: str) -> None:
    with TestClient(create_app(database_url=empty_db_url)) as c:
        r = c.get("/")
    assert r.status_code == 200
    for link in ("/docs", "/maps/coverage", "/tiles", "/ogc", "/open311/v2/discovery.json"):
        assert link in r.text


def test_database_errors_never_carry_bound_values(
    empty_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No bound value (a resident's phone) in a database error's text or in the server's log.

    (PostgreSQL itself may quote a value in its own message; the server never logs that
    message, only the error's class and SQLSTATE.)
    """
    import logging

    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError

    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine
    from api.web.deps import ConnDep

    phone = "13912345678"
    sync = make_sync_engine(empty_db_url)
    with pytest.raises(DBAPIError) as caught, sync.connect() as conn:
        conn.execute(sa.text("SELECT CAST(:p AS text), 1 / 0"), {"p": phone})
    with sync.begin() as conn:
        admin = create_token(conn, "admin")[1]
    sync.dispose()
    assert phone not in str(caught.value) and "parameters hidden" in str(caught.value)

    app = create_app(database_url=empty_db_url)

    @app.get("/trust-test/division")
    async def division(conn: ConnDep) -> None:
        await conn.execute(sa.text("SELECT CAST(:p AS text), 1 / 0"), {"p": phone})

    caplog.set_level(logging.INFO)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/trust-test/division", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code in (422, 500) and phone not in r.text
    assert phone not in caplog.text
