"""``wangge dispatch sweep``: the periodic sweep from the command line, on real PostGIS."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from api.cli.main import app as cli


def test_sweep_prunes_position_history_past_its_retention(db_url: str, sql: Any) -> None:
    person = sql("SELECT id FROM people WHERE role = 'rider' ORDER BY id LIMIT 1")[0][0]
    sql(
        "INSERT INTO position_history (city_code, person_id, at, geom) VALUES "
        "('340500', %s, now() - interval '400 days', ST_SetSRID(ST_MakePoint(118.5, 31.7), 4326)),"
        "('340500', %s, now() - interval '1 hour', ST_SetSRID(ST_MakePoint(118.5, 31.7), 4326))",
        (person, person),
    )
    r = CliRunner().invoke(
        cli,
        ["dispatch", "sweep"],
        env={"WANGGE_DATABASE_URL": db_url, "WANGGE_DISPATCH_HISTORY_RETENTION_DAYS": "30"},
    )
    assert r.exit_code == 0, r.output
    counts = json.loads(r.output.strip().splitlines()[-1])
    assert counts["history_pruned"] >= 1
    ages = sql("SELECT now() - at < interval '30 days' FROM position_history WHERE person_id = %s", (person,))
    assert ages == [(True,)]
