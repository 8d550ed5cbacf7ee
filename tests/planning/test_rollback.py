"""Publish after a confirmation, see the history, roll back by publishing an earlier plan again."""

from __future__ import annotations

import pytest

from tests.conftest import auth
from tests.planning.conftest import assert_buildings_once


def _state(sql, community):
    return {
        "active": sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,)),
        "buildings": sql(
            "SELECT id, grid_id FROM buildings WHERE community_code = %s ORDER BY id", (community,)
        ),
    }


def _one_worker_per_grid(sql, plan_id):
    workers = [
        w
        for (w,) in sql(
            "SELECT worker_id FROM grids WHERE plan_id = %s AND worker_id IS NOT NULL", (plan_id,)
        )
    ]
    assert len(workers) == len(set(workers)), "a worker holds two grids"
    busy = sql(
        "SELECT worker_id, count(*) FROM grids WHERE active AND worker_id IS NOT NULL "
        "GROUP BY worker_id HAVING count(*) > 1"
    )
    assert busy == [], "a worker holds two active grids"
    branches = sql(
        "SELECT g.code, count(b.id) FROM grids g LEFT JOIN party_orgs b ON b.grid_id = g.id "
        "AND b.tier = 'branch' WHERE g.plan_id = %s GROUP BY g.code",
        (plan_id,),
    )
    assert branches and all(n == 1 for _, n in branches), "every active grid has exactly one branch"


@pytest.fixture(scope="module")
def history(client, sql, planner, community):
    """Publish a draft over the demo's plan in force (after a preview); return both."""
    first = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))[0][0]
    before = _state(sql, community)
    n = sql("SELECT count(*) FROM grids WHERE plan_id = %s", (first,))[0][0]
    draft = client.post(
        "/api/v1/plans", json={"community": community, "grids": n - 1}, headers=auth(planner)
    ).json()
    preview = client.get(f"/api/v1/plans/{draft['id']}/publish-preview", headers=auth(planner))
    assert preview.status_code == 200, preview.text
    r = client.post(
        f"/api/v1/plans/{draft['id']}/publish",
        json={"version": preview.json()["version"]},
        headers=auth(planner),
    )
    assert r.status_code == 200, r.text
    return {
        "first": first,
        "draft": draft["id"],
        "preview": preview.json(),
        "published": r.json(),
        "before": before,
    }


def test_the_preview_lists_what_the_publish_then_did(history):
    """List in the preview what the publish then did."""
    preview, res = history["preview"], history["published"]
    assert preview["publishable"] is True and preview["blockers"] == [] and preview["rollback"] is False
    d = preview["diff"]
    assert d["against"] == history["first"] == res["retired_plan_id"]
    assert res["changes"] == d  # the summary of what changed is the one confirmed
    assert sorted(w["worker_id"] for w in d["workers"]["released"]) == sorted(
        w["worker_id"] for w in res["workers_released"]
    )
    assert sorted(d["workers"]["grids_without_worker"]) == sorted(res["grids_without_worker"])
    assert len(d["party_branches"]["left_without_grid"]) == len(res["party_branches_without_grid"])
    for w in d["workers"]["kept"] + d["workers"]["grid_changed"]:
        assert set(w) == {"worker_id", "name", "from", "to"}
    assert res["version"] == preview["version"] + 1 and res["rollback"] is False


def test_history_lists_every_plan_of_the_community(client, planner, community, history):
    """List every plan of the community with its dates."""
    plans = client.get("/api/v1/plans", params={"community": community}, headers=auth(planner)).json()[
        "plans"
    ]
    status = {p["id"]: p["status"] for p in plans}
    assert status[history["first"]] == "retired" and status[history["draft"]] == "active"
    retired = next(p for p in plans if p["id"] == history["first"])
    assert retired["retired_at"] is not None and retired["published_at"] is not None


def test_a_retired_plan_needs_rollback_to_be_published(client, sql, planner, community, history):
    """Require rollback (and a current version) to publish a retired plan."""
    first = history["first"]
    r = client.post(f"/api/v1/plans/{first}/publish", headers=auth(planner))
    assert r.status_code == 409 and "rollback" in r.json()["detail"][0]["msg"]
    preview = client.get(f"/api/v1/plans/{first}/publish-preview", headers=auth(planner)).json()
    assert preview["rollback"] is True and preview["publishable"] is True
    assert preview["diff"]["against"] == history["draft"]
    # a rollback confirmed on an older version of the plan is refused
    r = client.post(
        f"/api/v1/plans/{first}/publish",
        json={"rollback": True, "version": preview["version"] - 1},
        headers=auth(planner),
    )
    assert r.status_code == 409 and r.json()["detail"][0]["type"] == "stale_version"
    assert sql("SELECT status FROM plans WHERE id = %s", (first,))[0][0] == "retired"


def test_rolling_back_restores_the_earlier_map(client, sql, planner, community, history):
    """Restore the earlier map by publishing it again."""
    first, draft = history["first"], history["draft"]
    version = client.get(f"/api/v1/plans/{first}", headers=auth(planner)).json()["version"]
    r = client.post(
        f"/api/v1/plans/{first}/publish", json={"rollback": True, "version": version}, headers=auth(planner)
    )
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["rollback"] is True and res["retired_plan_id"] == draft and res["status"] == "active"
    assert dict(sql("SELECT id, status FROM plans WHERE id IN (%s, %s)", (first, draft))) == {
        first: "active",
        draft: "retired",
    }
    assert sql("SELECT retired_at FROM plans WHERE id = %s", (first,))[0][0] is None
    # buildings are back in the grids they had before the draft was published
    assert _state(sql, community) == history["before"]
    assert_buildings_once(sql, first, community)
    _one_worker_per_grid(sql, first)
    # the branches the earlier grids had are theirs again: none is created, the one left
    # without a grid by the newer plan comes back to its grid
    assert res["party_branches_created"] == [] and res["party_branches_reattached"] >= 1
    own = sql(
        "SELECT count(*) FROM party_orgs b JOIN grids g ON g.id = b.grid_id "
        "WHERE g.plan_id = %s AND b.tier = 'branch' AND b.code = 'P' || g.code",
        (first,),
    )[0][0]
    assert own == sql("SELECT count(*) FROM grids WHERE plan_id = %s", (first,))[0][0]
    # and the audit log has both publishes
    logged = sql(
        "SELECT entity_id FROM audit_log WHERE action = 'plan.publish' AND entity_id IN (%s, %s) ORDER BY id",
        (str(first), str(draft)),
    )
    assert [e for (e,) in logged] == [str(draft), str(first)]


def test_roll_forward_again_to_the_newer_plan(client, sql, planner, community, history):
    """Roll forward again to the newer plan."""
    draft = history["draft"]
    r = client.post(f"/api/v1/plans/{draft}/publish", json={"rollback": True}, headers=auth(planner))
    assert r.status_code == 200, r.text
    assert sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,)) == [
        (draft,)
    ]
    assert_buildings_once(sql, draft, community)
    _one_worker_per_grid(sql, draft)
    assert r.json()["buildings_reassigned"] > 0


def test_the_cli_rolls_back(db_url, sql, community, history, monkeypatch):
    """Roll back from the command line."""
    from typer.testing import CliRunner

    from api.cli.main import app

    monkeypatch.setenv("WANGGE_DATABASE_URL", db_url)
    runner = CliRunner()
    first = history["first"]
    r = runner.invoke(app, ["plan", "publish", str(first)])
    assert r.exit_code == 1 and "rollback" in r.output
    r = runner.invoke(app, ["plan", "publish", str(first), "--rollback"])
    assert r.exit_code == 0, r.output
    assert "rolled back" in r.output
    assert sql("SELECT status FROM plans WHERE id = %s", (first,))[0][0] == "active"
    r = runner.invoke(app, ["plan", "list", "--community", community])
    assert r.exit_code == 0 and f"{first}" in r.output and "retired" in r.output
    actor = sql(
        "SELECT actor FROM audit_log WHERE action = 'plan.publish' AND entity_id = %s "
        "ORDER BY id DESC LIMIT 1",
        (str(first),),
    )[0][0]
    assert actor.startswith("cli")
