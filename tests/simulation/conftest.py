"""A small demo city at a pinned reference time (a Tuesday morning), for the simulator's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from api.cli.main import app as cli
from api.store.cluster import Cluster
from api.store.engine import psycopg_dsn
from tests.conftest import EMPTY_TEMPLATE, clone_database

#: The demo's reference time and the simulator's start: Tuesday 10:30 in Ma'anshan (offices open).
AS_OF = "2025-03-04T10:30:00+08:00"
#: Where the simulator's clock starts: 20 city minutes from here include 11:00, when a volunteer slot ends.
SIM_FROM = "2025-03-04T10:45:00+08:00"
Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def sim_url(pg_cluster: Cluster, empty_template: str, request: pytest.FixtureRequest) -> str:
    """A database of this module's own: the 6-community demo city at :data:`AS_OF`, loaded by the CLI."""
    url = clone_database(pg_cluster, EMPTY_TEMPLATE, "sim_" + request.module.__name__.rsplit(".", 1)[-1])
    result = CliRunner().invoke(
        cli, ["demo", "--communities", "6", "--as-of", AS_OF], env={"WANGGE_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture(scope="module")
def q(sim_url: str) -> Iterator[Sql]:
    """Run SQL on the module's city and return all rows."""
    conn = psycopg.connect(psycopg_dsn(sim_url), autocommit=True)
    yield lambda query, params=None: conn.execute(query, params).fetchall()
    conn.close()


def consistency_problems(q: Sql) -> dict[str, int]:
    """Count what would break the store's consistency (every figure must be 0)."""
    return {
        # every located case lies in the grid it names, and is named to a grid
        "case outside its grid": q(
            "SELECT count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id "
            "WHERE NOT ST_Intersects(g.geom, i.location)"
        )[0][0],
        "located case without grid": q("SELECT count(*) FROM incidents WHERE located AND grid_id IS NULL")[0][
            0
        ],
        # a case is written with its log, never alone
        "case without intake event": q(
            "SELECT count(*) FROM incidents i WHERE NOT EXISTS "
            "(SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.action = 'intake')"
        )[0][0],
        # nobody holds more live offers and accepted tasks than their capacity
        "person over capacity": q(
            """
            SELECT count(*) FROM people p WHERE
              (SELECT count(*) FROM tasks t WHERE t.status = 'offered' AND t.offered_to = p.id
                 AND t.offer_expires_at > now())
            + (SELECT count(*) FROM tasks t WHERE t.status = 'accepted' AND t.assignee_id = p.id) > p.capacity
              AND p.capacity > 0
            """
        )[0][0],
        # the points ledger: never negative, each completed task credited exactly once, nothing else credited
        "negative balance": q(
            "SELECT count(*) FROM (SELECT person_id FROM points_ledger "
            "GROUP BY person_id HAVING sum(delta) < 0) x"
        )[0][0],
        "completed task not credited once": q(
            """
            SELECT count(*) FROM tasks t WHERE t.status = 'completed' AND t.points > 0 AND
              (SELECT count(*) FROM points_ledger l WHERE l.ref = 'task:' || t.id
                 AND l.reason = 'task_completed') <> 1
            """
        )[0][0],
        "credit for an unfinished task": q(
            """
            SELECT count(*) FROM points_ledger l JOIN tasks t ON l.ref = 'task:' || t.id
            WHERE l.reason = 'task_completed' AND t.status <> 'completed'
            """
        )[0][0],
        "redemption without its debit": q(
            """
            SELECT count(*) FROM redemptions r WHERE NOT EXISTS
              (SELECT 1 FROM points_ledger l WHERE l.ref = 'redemption:' || r.id AND l.delta = -r.points)
            """
        )[0][0],
        "accepted task without assignee": q(
            "SELECT count(*) FROM tasks WHERE status = 'accepted' AND assignee_id IS NULL"
        )[0][0],
    }
