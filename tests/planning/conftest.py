"""Helpers shared by the planning tests (the database fixtures come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.main import app
from api.store.engine import make_sync_engine
from tests.conftest import sql_runner

SQL = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def token(make_token: Callable[..., str]) -> Callable[..., str]:
    """``token(role, **scope)``: the session's ``make_token`` under this package's name."""
    return make_token


@pytest.fixture(scope="module")
def planner(token: Callable[..., str]) -> str:
    """Return a planner token of the whole city."""
    return token("planner")


@pytest.fixture(scope="module")
def community(sql: SQL) -> str:
    """Pick the demo community with the most buildings (lowest code on ties)."""
    return sql("SELECT community_code FROM buildings GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0]


def assert_tiles(sql: SQL, plan_id: int, community: str) -> None:
    """Grids of the plan tile the community: no gap, no overlap, each in one piece."""
    gap, overlap, pieces, union_vs = sql(
        """
        WITH g AS (SELECT geom FROM grids WHERE plan_id = %(p)s),
             u AS (SELECT ST_Union(geom) AS geom FROM g),
             c AS (SELECT geom FROM communities WHERE code = %(c)s)
        SELECT ST_Area(ST_Difference(c.geom, u.geom)::geography),
               (SELECT sum(ST_Area(geom::geography)) FROM g) - ST_Area(u.geom::geography),
               (SELECT max(ST_NumGeometries(geom)) FROM g),
               ST_Area(ST_Difference(u.geom, c.geom)::geography)
        FROM u, c
        """,
        {"p": plan_id, "c": community},
    )[0]
    assert gap < 1.0, f"{gap:.2f} m² of the community is in no grid"
    assert abs(overlap) < 1.0, f"grids overlap by {overlap:.2f} m²"
    assert union_vs < 1.0, f"grids spill {union_vs:.2f} m² outside the community"
    assert pieces == 1, "a grid is in more than one piece"


def assert_buildings_once(sql: SQL, plan_id: int, community: str) -> None:
    """Every building of the community is assigned to exactly one grid of the plan."""
    n_b, n_a, n_distinct = sql(
        """
        SELECT (SELECT count(*) FROM buildings WHERE community_code = %(c)s),
               (SELECT count(*) FROM plan_assignments WHERE plan_id = %(p)s),
               (SELECT count(DISTINCT building_id) FROM plan_assignments WHERE plan_id = %(p)s)
        """,
        {"p": plan_id, "c": community},
    )[0]
    assert n_b == n_a == n_distinct
    wrong = sql(
        """
        SELECT count(*) FROM plan_assignments pa JOIN buildings b ON b.id = pa.building_id
        JOIN grids g ON g.id = pa.grid_id
        WHERE pa.plan_id = %(p)s AND NOT ST_Intersects(g.geom, b.point)
        """,
        {"p": plan_id},
    )[0][0]
    assert wrong == 0, f"{wrong} buildings are assigned to a grid that does not contain them"
    mismatch = sql(
        """
        SELECT count(*) FROM grids g
        WHERE g.plan_id = %(p)s AND g.households <> (
          SELECT coalesce(sum(b.households), 0) FROM plan_assignments pa
          JOIN buildings b ON b.id = pa.building_id WHERE pa.grid_id = g.id)
        """,
        {"p": plan_id},
    )[0][0]
    assert mismatch == 0, "stored grid households differ from their buildings' sum"


@pytest.fixture(scope="module")
def token_with_id(db_url: str) -> Iterator[Callable[..., tuple[int, str]]]:
    """``token_with_id(role, **scope)`` → (token id, bearer token) on the module's database."""
    from api.auth.tokens import create_token
    from api.store.engine import make_sync_engine

    engine = make_sync_engine(db_url)

    def make(role: str, **scope: Any) -> tuple[int, str]:
        """Create a token and return its id with it."""
        with engine.begin() as conn:
            token_id, token = create_token(conn, role, **scope)
        return int(token_id), token

    yield make
    engine.dispose()


@pytest.fixture(scope="module")
def strict_client(db_url: str) -> Iterator[TestClient]:
    """Serve the app: scope is what the planning services decide (the old middleware's step is gone)."""
    from api.web.app import create_app

    with TestClient(create_app(database_url=db_url)) as c:
        yield c


def grid_state(sql: SQL, plan_id: int) -> list[tuple[Any, ...]]:
    """Return the grids of a plan (code, name, households, buildings, geometry) and their buildings."""
    return sql(
        """
        SELECT g.code, g.name, g.households, g.buildings, ST_AsBinary(g.geom),
               (SELECT array_agg(pa.building_id ORDER BY pa.building_id) FROM plan_assignments pa
                WHERE pa.grid_id = g.id)
        FROM grids g WHERE g.plan_id = %s ORDER BY g.code
        """,
        (plan_id,),
    )


# --------------------------------------------------------------------------- imports into an empty store


@pytest.fixture(scope="module")
def engine(empty_db_url: str) -> Iterator[Any]:
    """Open an engine on the module's empty database."""
    eng = make_sync_engine(empty_db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def q(empty_db_url: str) -> Iterator[SQL]:
    """Run SQL on the module's empty database and return the rows."""
    yield from sql_runner(empty_db_url)


@pytest.fixture(scope="module")
def cli(empty_db_url: str) -> Callable[..., Any]:
    """``cli(*args)`` → the result of ``wangge *args`` on the module's empty database."""
    runner = CliRunner()

    def run(*args: str) -> Any:
        """Run one command."""
        return runner.invoke(app, list(args), env={"WANGGE_DATABASE_URL": empty_db_url})

    return run


def one_clear_line(r: Any, *words: str) -> None:
    """Exit status 1, no traceback, and one ``error:`` line saying ``words``."""
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.output
    text = " ".join(r.output.split())
    for w in words:
        assert w in text, r.output
