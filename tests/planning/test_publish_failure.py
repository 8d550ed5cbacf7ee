"""A publish that the store fails mid-way: 503, everything rolled back, no database text out.

Trust issue, item 8: "plan publish returns database error text to the client". The store
is made to fail inside the publish transaction (a trigger raising an error whose text
names a resident), after the grids were already switched.
"""

from __future__ import annotations

from tests.conftest import auth

SECRET = "resident 张三 13912345678"


def test_a_failed_publish_answers_503_without_the_database_text(client, sql, planner, community) -> None:
    active = sql("SELECT id FROM plans WHERE community_code = %s AND status = 'active'", (community,))[0][0]
    grids = sql("SELECT count(*) FROM grids WHERE plan_id = %s", (active,))[0][0]
    draft = client.post(
        "/api/v1/plans", json={"community": community, "grids": grids - 1}, headers=auth(planner)
    ).json()["id"]
    sql(
        f"""
        CREATE FUNCTION t_fail_publish() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{SECRET}'; END $$;
        CREATE TRIGGER t_fail_publish BEFORE UPDATE ON party_orgs
          FOR EACH STATEMENT EXECUTE FUNCTION t_fail_publish();
        CREATE TRIGGER t_fail_publish_ins BEFORE INSERT ON party_orgs
          FOR EACH STATEMENT EXECUTE FUNCTION t_fail_publish();
        """
    )
    try:
        r = client.post(f"/api/v1/plans/{draft}/publish", headers=auth(planner))
    finally:
        sql("DROP TRIGGER t_fail_publish ON party_orgs; DROP TRIGGER t_fail_publish_ins ON party_orgs")
    assert r.status_code == 503, r.text
    assert "张三" not in r.text and "13912345678" not in r.text and "rolled back" in r.text
    # nothing half-applied: the old plan is active, the draft still a draft, its grids inactive
    assert sql("SELECT status FROM plans WHERE id = %s", (active,)) == [("active",)]
    assert sql("SELECT status FROM plans WHERE id = %s", (draft,)) == [("draft",)]
    assert sql("SELECT count(*) FROM grids WHERE plan_id = %s AND active", (draft,)) == [(0,)]
    # and once the store is well again the same publish goes through
    assert client.post(f"/api/v1/plans/{draft}/publish", headers=auth(planner)).status_code == 200
