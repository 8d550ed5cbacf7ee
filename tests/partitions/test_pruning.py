"""Partition pruning: the services' city- and month-scoped queries read only their partitions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from api.store import partitions
from api.store.engine import psycopg_dsn, with_driver
from api.store.sql.incidents import events_statement
from api.store.sql.maps import visited_buildings


@pytest.fixture(scope="module")
def explain(db_url: str) -> Iterator[Any]:
    # a second city, so that "one city's partitions" means something
    with psycopg.connect(psycopg_dsn(db_url), autocommit=True) as conn:
        partitions.maintain(conn, cities=["340600"], months_ahead=1)
    engine = create_engine(with_driver(db_url, "psycopg"))

    def run(statement: str, params: dict[str, Any]) -> set[str]:
        with engine.connect() as conn:
            plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + statement), params).scalar()
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "Relation Name" in node:
                    found.add(node["Relation Name"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(plan)
        return found

    yield run
    engine.dispose()


def test_a_cases_log_reads_its_city_from_its_month_on(explain: Any, sql: Any) -> None:
    incident, city, created = sql(
        "SELECT i.id, i.city_code, i.created_at FROM incidents i ORDER BY i.created_at DESC LIMIT 1 OFFSET 50"
    )[0]
    month = partitions.Month.of(created)
    scanned = explain(events_statement(True, True), {"id": incident, "city": city, "since": created})
    assert scanned, "no relation in the plan"
    assert all(name.startswith(f"incident_events_{city}_") for name in scanned), scanned
    months = {n.rsplit("_", 1)[1] for n in scanned} - {"default"}
    assert months and min(months) == month.suffix, scanned
    everything = explain(events_statement(False, False), {"id": incident})
    assert any("340600" in n for n in everything) and len(everything) > len(scanned)


def test_the_visit_gaps_read_only_the_months_of_their_window(explain: Any, sql: Any) -> None:
    asof = sql("SELECT max(at) FROM visits")[0][0]
    statement = f"WITH {visited_buildings().strip().removesuffix(',')} SELECT count(*) FROM visited"
    scanned = explain(statement, {"asof": asof, "days": 20})
    window = {partitions.Month.of(asof).suffix, partitions.Month.of(asof - dt.timedelta(days=20)).suffix}
    suffixes = {n.rsplit("_", 1)[1] for n in scanned}
    # only the window's months (of every city: this query is not city-scoped) and the defaults
    assert suffixes - {"default"} == window, scanned
    total = sql("SELECT count(*) FROM pg_partition_tree('visits') WHERE isleaf")[0][0]
    assert len(scanned) < total / 4, (len(scanned), total)
