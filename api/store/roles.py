"""Database roles: an owner that runs migrations, an application role that may not rewrite history.

* **owner** (``wangge_owner`` in the embedded cluster, ``WANGGE_OWNER_DATABASE_URL``
  otherwise) owns the schema: it runs the migrations and restores backups. It is no
  superuser.
* **application** (``wangge_app``, ``WANGGE_DATABASE_URL``) is what the server, its OGC
  pool and the CLI's everyday commands connect as. It may read and write the tables, but
  only ``SELECT`` and ``INSERT`` on ``audit_log``; it owns nothing, so it can neither
  ``ALTER``, ``TRUNCATE`` nor disable the append-only trigger.

:func:`grant_app` re-applies the application role's privileges after every migration,
so tables added later are covered. With one URL for both (an external server where only
one role exists), nothing is granted and the audit log is protected by its trigger only.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from api.settings import DatabaseSettings

#: Tables the application role may read but not write.
READ_ONLY = ("alembic_version",)
#: Tables the application role may read and append to, never change.
APPEND_ONLY = ("audit_log",)


def resolve_urls(settings: DatabaseSettings, start: bool = True) -> tuple[str, str]:
    """``(application URL, owner URL)`` of the store (the embedded cluster started if needed).

    With ``WANGGE_DATABASE_URL`` set, the owner URL is ``WANGGE_OWNER_DATABASE_URL`` or,
    when that is unset, the same URL.
    """
    if settings.database_url:
        return settings.database_url, settings.owner_database_url or settings.database_url
    from api.store.engine import cluster_for

    cluster = cluster_for(settings)
    if start:
        cluster.start()
    return cluster.app_url, cluster.owner_url


def role_of(url: str) -> str:
    """Return the user name a URL connects as."""
    return str(make_url(url).username or "")


def grant_app(owner_url: str, app_url: str) -> bool:
    """Give the application role exactly its privileges (run as the owner); False when one role.

    Idempotent; called after every migration.
    """
    import psycopg
    from psycopg import sql

    from api.store.engine import psycopg_dsn

    owner, app = role_of(owner_url), role_of(app_url)
    if not app or owner == app:
        return False
    role = sql.Identifier(app)
    with psycopg.connect(psycopg_dsn(owner_url), autocommit=True) as conn:
        schemas = [
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ('public', 'ogc') "
                "AND nspowner = current_user::regrole"
            )
        ]
        with conn.transaction():
            for schema in schemas:
                s = sql.Identifier(schema)
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, role))
                conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(s, role))
            tables = conn.execute(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'ogc') AND c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                "AND c.relowner = current_user::regrole AND NOT c.relispartition"
            ).fetchall()
            for schema, name, kind in tables:
                obj = sql.Identifier(schema, name)
                conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(obj, role))
                if kind == "S":
                    grant = "USAGE, SELECT"
                elif schema == "ogc" or kind in ("v", "m") or name in READ_ONLY:
                    grant = "SELECT"
                elif name in APPEND_ONLY:
                    grant = "SELECT, INSERT"
                else:
                    grant = "SELECT, INSERT, UPDATE, DELETE"
                conn.execute(sql.SQL(f"GRANT {grant} ON {{}} TO {{}}").format(obj, role))
    return True
