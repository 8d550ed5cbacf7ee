"""The planner's commands end to end: redraw, show, publish, export (typer runner, real PostGIS)."""

from __future__ import annotations

import pyogrio
from typer.testing import CliRunner

from api.cli.main import app


def test_redraw_show_export_publish(db_url, sql, community, tmp_path, monkeypatch):
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
