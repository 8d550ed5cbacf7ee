"""The planner's commands end to end: redraw, show, publish, export (typer runner, real PostGIS)."""

from __future__ import annotations

import pyogrio
from typer.testing import CliRunner

from api.cli.main import app


def test_redraw_show_export_publish(db_url, sql, community, tmp_path, monkeypatch):
    """Run plan redraw, show, export and publish from the command line."""
    monkeypatch.setenv("WANGGE_DATABASE_URL", db_url)
    runner = CliRunner()
    r = runner.invoke(app, ["plan", "redraw", "--community", community, "--households", "300-500"])
    assert r.exit_code == 0, r.output
    pid = sql("SELECT max(id) FROM plans WHERE community_code = %s AND status = 'draft'", (community,))[0][0]
    assert f"draft plan {pid}" in r.output and "grids, households" in r.output

    r = runner.invoke(app, ["plan", "show", str(pid)])
    assert r.exit_code == 0, r.output
    assert "vs active plan" in r.output and "workers:" in r.output

    out = tmp_path / "plan.gpkg"
    r = runner.invoke(app, ["export", "plan", str(pid), str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(pyogrio.list_layers(out)[:, 0].tolist()) == ["buildings", "community", "grids"]
    grids = pyogrio.read_dataframe(out, layer="grids")
    n, hh = sql("SELECT count(*), sum(households) FROM grids WHERE plan_id = %s", (pid,))[0]
    assert len(grids) == n and grids["households"].sum() == hh
    assert grids.crs.to_epsg() == 4326

    r = runner.invoke(app, ["plan", "publish", str(pid)])
    assert r.exit_code == 0, r.output
    assert sql("SELECT status FROM plans WHERE id = %s", (pid,))[0][0] == "active"
    r = runner.invoke(app, ["plan", "publish", str(pid)])
    assert r.exit_code == 1 and "only a draft" in r.output

    r = runner.invoke(app, ["plan", "redraw", "--community", community, "--households", "900-901"])
    assert r.exit_code == 1 and community in r.output
    r = runner.invoke(app, ["plan", "redraw"])
    assert r.exit_code == 1 and "--community" in r.output


def test_review_compare_undo_and_several_communities(db_url, sql, community, monkeypatch):
    """Review, compare, undo and redraw several communities from the command line."""
    import json

    from api.services.planning import service
    from api.services.planning.access import operator
    from api.services.planning.db import EngineDatabase
    from api.services.planning.edits import MergeGrids
    from api.store.engine import make_sync_engine

    monkeypatch.setenv("WANGGE_DATABASE_URL", db_url)
    runner = CliRunner()
    codes = [c for (c,) in sql("SELECT code FROM communities ORDER BY code LIMIT 2")]
    args = ["plan", "redraw", "--households", "300-500", "--jobs", "2"]
    r = runner.invoke(app, [*args, "--community", codes[0], "--community", codes[1]])
    assert r.exit_code == 0, r.output
    assert all(f"{c}: draft plan" in r.output for c in codes) and "2 draft(s), 0 failed" in r.output
    a = sql("SELECT max(id) FROM plans WHERE community_code = %s AND status = 'draft'", (codes[0],))[0][0]
    active = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (codes[0],))[0][0]
    r = runner.invoke(app, ["plan", "review", str(a)])
    assert r.exit_code == 0, r.output
    n = sql("SELECT count(*) FROM grids WHERE plan_id = %s", (a,))[0][0]
    assert sum(1 for line in r.output.splitlines() if line.strip().startswith(codes[0])) == n
    r = runner.invoke(app, ["plan", "compare", str(active), str(a)])
    assert r.exit_code == 0 and f"plan {active}" in r.output and "households move" in r.output
    # an edit made through the service, undone from the command line
    engine = make_sync_engine(db_url)
    try:
        keep, absorb = sql(
            """
            SELECT x.code, y.code FROM grids x JOIN grids y ON x.plan_id = y.plan_id AND x.code < y.code
            WHERE x.plan_id = %s AND ST_Length(ST_Intersection(x.geom, y.geom)::geography) > 5
            ORDER BY 1, 2 LIMIT 1
            """,
            (a,),
        )[0]
        service.edit_plan(EngineDatabase(engine), operator(), a, MergeGrids(keep, absorb), actor="cli:test")
    finally:
        engine.dispose()
    r = runner.invoke(app, ["plan", "undo", str(a), "--version", "1"])
    assert r.exit_code == 1 and "version 2" in r.output  # stale: the merge made version 2
    r = runner.invoke(app, ["plan", "undo", str(a), "--version", "2"])
    assert r.exit_code == 0 and "(merge) undone, now version 3" in r.output
    assert sql("SELECT count(*) FROM grids WHERE plan_id = %s", (a,))[0][0] == n
    r = runner.invoke(app, ["plan", "show", str(a), "--json"])
    assert r.exit_code == 0
    body = json.loads(r.output)
    assert body["version"] == 3 and body["edits"][0]["undone_by"].startswith("cli")
    assert "from" in json.dumps(body["diff"]["workers"])
    r = runner.invoke(app, ["plan", "discard", str(a)])
    assert r.exit_code == 0 and sql("SELECT count(*) FROM plans WHERE id = %s", (a,))[0][0] == 0
