"""Rows and bytes per table and per city of a loaded store (issue 16, ``docs/scale.md``).

    .venv/bin/python bench/sizes.py [--url URL] [--city 340500]

Reads the configured store (``WANGGE_DATABASE_URL`` or the embedded cluster; ``--url``
for another one) and prints ONE JSON object: for every table of the schema its rows
and bytes (heap, indexes and TOAST, summed over partitions), and for the tables that
carry ``city_code`` the rows and bytes of each city. Bytes of a partitioned table's
city are measured (its partitions); bytes of a plain table's city are its share of
the rows. Nothing is written.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import psycopg

from api.settings import DatabaseSettings
from api.store.engine import psycopg_dsn

_TABLES = """
SELECT c.oid, c.relname, c.relkind = 'p' AS partitioned,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'city_code'
               AND NOT a.attisdropped) AS has_city
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname NOT IN ('spatial_ref_sys', 'alembic_version')
ORDER BY c.relname
"""
_TREE_BYTES = (
    "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s::regclass) WHERE isleaf"
)


def measure(url: str) -> dict[str, Any]:
    """Rows and bytes of every table (and of each city where the table has a city)."""
    out: dict[str, Any] = {}
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        for oid, name, partitioned, has_city in conn.execute(_TABLES).fetchall():
            ident = psycopg.sql.Identifier(name)
            rows = conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]  # type: ignore[index]
            size_q = _TREE_BYTES if partitioned else "SELECT pg_total_relation_size(%s::regclass)"
            size = int(conn.execute(size_q, (oid,)).fetchone()[0])  # type: ignore[index]
            entry: dict[str, Any] = {"rows": int(rows), "bytes": size, "partitioned": bool(partitioned)}
            if partitioned:
                entry["partitions"] = int(
                    conn.execute(
                        "SELECT count(*) FROM pg_partition_tree(%s::regclass) WHERE isleaf", (oid,)
                    ).fetchone()[0]  # type: ignore[index]
                )
            if has_city:
                cities: dict[str, Any] = {}
                for city, n in conn.execute(
                    psycopg.sql.SQL("SELECT city_code, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(ident)
                ).fetchall():
                    part = f"{name}_{city}"
                    exists = conn.execute("SELECT to_regclass(%s)", (part,)).fetchone()[0]  # type: ignore[index]
                    if partitioned and exists is not None:
                        city_bytes = int(conn.execute(_TREE_BYTES, (part,)).fetchone()[0])  # type: ignore[index]
                    else:
                        city_bytes = round(size * int(n) / max(int(rows), 1))
                    cities[str(city)] = {"rows": int(n), "bytes": city_bytes}
                entry["cities"] = cities
            out[name] = entry
    return out


def main() -> None:
    """Print the sizes as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the store (default: WANGGE_DATABASE_URL or the embedded cluster)")
    parser.add_argument("--city", default="340500", help="the city summed up in 'city' (default 340500)")
    args = parser.parse_args()
    url = args.url
    if url is None:
        from api.store.roles import resolve_urls

        url = resolve_urls(DatabaseSettings())[0]
    tables = measure(url)
    city = args.city
    per_city = {
        name: t["cities"][city] for name, t in tables.items() if "cities" in t and city in t["cities"]
    }
    with psycopg.connect(psycopg_dsn(url)) as conn:
        db_bytes = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
    print(
        json.dumps(
            {
                "benchmark": "sizes",
                "city": city,
                "database_bytes": db_bytes,
                "city_rows": sum(v["rows"] for v in per_city.values()),
                "city_bytes": sum(v["bytes"] for v in per_city.values()),
                "shared_bytes": sum(t["bytes"] for t in tables.values() if "cities" not in t),
                "tables": tables,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
