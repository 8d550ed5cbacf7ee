"""Alembic environment, wired to GeoAlchemy2's alembic helpers on both paths.

The URL comes from ``config.attributes["url"]`` (set by ``api.store.migrate``) or
``sqlalchemy.url``; when neither is given, the owner role's URL from the settings
(``WANGGE_OWNER_DATABASE_URL``/``WANGGE_DATABASE_URL``, or the embedded cluster's).
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from api.store.engine import with_driver
from api.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from api.settings import load_settings
        from api.store.roles import resolve_urls

        url = resolve_urls(load_settings().db)[1]
    return str(url)


#: Partitions of the partitioned tables (``api/store/partitions.py``): made by ``wangge db
#: maintain``, not declared in the models; found on the connection before a comparison.
_partitions: set[str] = set()


def _include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # PostGIS / pgRouting / tiger tables are not ours
    if type_ == "table" and name in {"spatial_ref_sys"}:
        return False
    if type_ == "table" and reflected and name in _partitions:
        return False
    # a foreign key to a partitioned table is cloned, in the catalogue, for each partition
    if type_ == "foreign_key_constraint" and reflected and obj.referred_table.name in _partitions:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


COMMON = dict(
    target_metadata=target_metadata,
    include_object=_include_object,
    process_revision_directives=alembic_helpers.writer,
    render_item=alembic_helpers.render_item,
    compare_type=True,
)


def run_migrations_offline() -> None:
    """Write the migrations' SQL instead of running it (``alembic --sql``)."""
    context.configure(
        url=with_driver(_url(), "psycopg"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **COMMON,  # type: ignore[arg-type]
    )
    with context.begin_transaction():
        context.run_migrations()


def _find_partitions(connection) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    began = not connection.in_transaction()
    _partitions.clear()
    _partitions.update(
        connection.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars()
    )
    if began:  # leave no transaction behind: Alembic must open (and commit) its own
        connection.commit()


def run_migrations_online() -> None:
    """Run the migrations on a connection (given by the caller, or opened here)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _find_partitions(connection)
        context.configure(connection=connection, **COMMON)  # type: ignore[arg-type]
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(with_driver(_url(), "psycopg"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _find_partitions(conn)
        context.configure(connection=conn, **COMMON)  # type: ignore[arg-type]
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
