"""``wangge map ... -o FILE.html`` writes a page that needs no server and no network."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from maps import codec
from tests.maps.conftest import blocks, external, references


@pytest.fixture(scope="module")
def run(db_url: str) -> Any:
    """Return a function that runs ``wangge map ...`` on the module's database."""
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["map", *args], env={"WANGGE_DATABASE_URL": db_url})

    return invoke


@pytest.mark.parametrize("page", ["coverage", "heatmap", "visits", "people", "party"])
def test_writes_a_self_contained_page(run: Any, tmp_path: Path, sql: Any, page: str) -> None:
    """Each page written by the CLI inlines its assets and embeds the page's data."""
    out = tmp_path / f"{page}.html"
    result = run(page, "-o", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    refs = references(html)
    assert not external(refs), external(refs)
    assert not [r for r in refs if r.startswith("/")], "a file must not need the server"
    assert not re.search(r"<script[^>]+src=", html) and not re.search(r"<link[^>]+stylesheet[^>]+href=", html)
    assert "L.Map" in html or "window.L" in html  # Leaflet is inlined
    data = blocks(html)
    assert data["meta"]["page"] == page
    if page == "coverage":
        assert len(data["grids"]["rows"]) == sql("SELECT count(*) FROM grids WHERE active")[0][0]
        assert all(r["geom"]["coordinates"] for r in codec.records(data["grids"]))


def test_cli_filters_and_errors(run: Any, tmp_path: Path, sql: Any) -> None:
    """The CLI honours filters and refuses bad input with exit code 1, writing nothing."""
    community = sql("SELECT code FROM communities ORDER BY code LIMIT 1")[0][0]
    out = tmp_path / "c.html"
    r = run("coverage", "--community", community, "--layer", "overdue", "-o", str(out))
    assert r.exit_code == 0, r.output
    data = blocks(out.read_text(encoding="utf-8"))
    assert data["meta"]["measure"] == "overdue"
    assert {g["community"] for g in codec.records(data["grids"])} == {community}
    bad = [
        ("coverage", "--community", "999999999999"),
        ("coverage", "--layer", "mood"),
        ("heatmap", "--since", "2024-02-01T00:00:00+08:00", "--until", "2024-01-01T00:00:00+08:00"),
        ("heatmap", "--since", "yesterday"),
        ("people", "--role", "king"),
        ("plan", "987654321"),
    ]
    for args in bad:
        target = tmp_path / "bad.html"
        r = run(*args, "-o", str(target))
        assert r.exit_code == 1, (args, r.output)
        assert "error" in r.output
        assert not target.exists()
