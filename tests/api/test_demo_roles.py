"""``wangge demo`` on a store with the two database roles (the embedded cluster's layout).

The application role may not move sequences or rewrite the catalogue, so the demo is
written as the schema's owner: a first load on a fresh machine used to end in
``permission denied for sequence``. The server then reads the city as the application role.
"""

from __future__ import annotations

from typer.testing import CliRunner

from api.cli.main import app as cli
from api.store.cluster import APP, OWNER, Cluster
from api.store.migrate import upgrade


def test_the_demo_loads_as_the_owner_and_the_app_role_reads_it(pg_cluster: Cluster) -> None:
    pg_cluster.provision("t_demo_roles")
    app_url = pg_cluster.url_of(APP, "t_demo_roles")
    owner_url = pg_cluster.url_of(OWNER, "t_demo_roles")
    upgrade(owner_url, app_role_url=app_url)
    env = {"WANGGE_DATABASE_URL": app_url, "WANGGE_OWNER_DATABASE_URL": owner_url}
    result = CliRunner().invoke(cli, ["demo", "--communities", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert "demo city loaded" in result.output

    import psycopg

    from api.store.engine import psycopg_dsn

    with psycopg.connect(psycopg_dsn(app_url)) as conn:
        row = conn.execute("SELECT current_user, (SELECT count(*) FROM grids WHERE active)").fetchone()
        assert row is not None and row[0] == APP and row[1] > 0
        # the sequences were moved past the loaded ids: the application role can add rows
        nxt = conn.execute("SELECT nextval('incidents_id_seq') > (SELECT max(id) FROM incidents)").fetchone()
        assert nxt is not None and nxt[0] is True
