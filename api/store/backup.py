"""Whole-store backup and restore with ``pg_dump``/``pg_restore`` (custom format).

The client tools must be at least as new as the server, so they are taken
from the PostgreSQL installation whose major version matches the server
(``/usr/lib/postgresql/<major>/bin`` on Debian, as ``api.store.cluster`` finds
``initdb``), else ``WANGGE_PG_BIN``, else ``PATH``. The password travels in
the environment (``PGPASSWORD``), never on the command line.

A backup holds residents' data: it is written readable by its owner only (mode 0600),
through a private temporary file in the same folder renamed into place, so a crash
never leaves a truncated or world-readable file behind.

A restore runs in one transaction (``--single-transaction --exit-on-error``): it lands
whole or not at all. It takes only archives this project wrote: the table of contents
must name the schema's own tables, views, sequences, indexes, constraints, triggers and
trigger functions (:func:`restore_list`), anything else (another function, a language, a
server, an event trigger, ...) refuses the file; extensions are not restored (they exist
already, created by the cluster's superuser). It runs as the database's owner role and
refuses a superuser connection, so even a forged archive can do no more than the owner
may. It refuses a database that already holds tables unless ``clean`` is set (then the
objects in the dump are dropped first).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from api.errors import Conflict, Failed, InvalidInput
from api.store.engine import psycopg_dsn
from api.store.partitions import is_partition_name

Progress = Callable[[str, int, int], None]


class BackupError(Failed):
    """A backup or restore could not be completed."""

    error_type = "backup_failed"


def server_major(url: str) -> int:
    """Return the major version of the PostgreSQL server at ``url``."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def find_tool(name: str, major: int, pg_bin: Path | None = None) -> str:
    """Find the ``pg_dump``/``pg_restore`` whose major version matches the server's (or newer)."""
    candidates: list[str] = []
    if pg_bin is not None:
        candidates.append(str(pg_bin / name))
    candidates.append(f"/usr/lib/postgresql/{major}/bin/{name}")
    newer = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(re.sub(r"\D", "", p.split("/")[-3]) or 0),
    )
    candidates += newer
    which = shutil.which(name)
    if which:
        candidates.append(which)
    for c in candidates:
        if not os.access(c, os.X_OK):
            continue
        out = subprocess.run([c, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"(\d+)(?:\.\d+)?", out)
        if m and int(m.group(1)) >= major:
            return c
    raise BackupError(
        f"no {name} for PostgreSQL {major} or newer: install postgresql-client-{major} (or set WANGGE_PG_BIN)"
    )


def _conn_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    return args, env


def _partitioned_tables(url: str) -> list[str]:
    with psycopg.connect(psycopg_dsn(url)) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind = 'p' AND NOT relispartition ORDER BY 1"
            )
        ]


def _restore_clean_script(
    url: str, file: Path, listing: str, pg_restore: str, psql: str, total: int, progress: Progress | None
) -> None:
    """Replace a store holding partitioned tables, in one transaction.

    ``pg_restore --clean`` cannot drop the constraints of an attached partition, so the
    restore is written as a script (``pg_restore --clean --if-exists -f``) that first drops
    the target's partitioned tables with their partitions, then run by ``psql`` as one
    transaction that stops at the first error (nothing changes unless all of it works).
    """
    args, env = _conn_args(url)
    db = make_url(url).database or "postgres"
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "restore.sql"
        made = subprocess.run(
            [
                pg_restore,
                "--no-owner",
                "--no-privileges",
                "--clean",
                "--if-exists",
                "-L",
                listing,
                "-f",
                str(script),
                str(file),
            ],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise BackupError(f"pg_restore failed: {made.stderr.strip()[-500:]}")
        drops = "".join(f'DROP TABLE IF EXISTS public."{t}" CASCADE;\n' for t in _partitioned_tables(url))
        full = Path(folder) / "clean.sql"
        with full.open("w") as out, script.open() as body:
            out.write(drops)
            shutil.copyfileobj(body, out)
        cmd = [
            psql,
            *args,
            "-d",
            db,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-f",
            str(full),
        ]
        errors: list[str] = []
        done = 0
        with subprocess.Popen(
            cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            for line in proc.stdout:
                if line.startswith("COPY "):
                    done += 1
                    if progress:
                        progress("restore", min(done, total), total)
            errors = [ln.strip() for ln in proc.stderr if "error" in ln.lower()]
        if proc.returncode != 0:
            raise BackupError(f"psql failed: {'; '.join(errors[-3:]) or proc.returncode}")
    if progress:
        progress("restore", total, total)


def _tables(url: str) -> list[str]:
    with psycopg.connect(psycopg_dsn(url)) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'spatial_ref_sys' ORDER BY 1"
            )
        ]


def _run(
    cmd: list[str], env: dict[str, str], marker: str, total: int, progress: Progress | None, stage: str
) -> None:
    errors: list[str] = []
    done = 0
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if marker in line:
                done += 1
                if progress:
                    progress(stage, min(done, total), total)
            elif "error" in line.lower() or "fatal" in line.lower():
                errors.append(line.strip())
    if proc.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {'; '.join(errors[-3:]) or proc.returncode}")
    if progress:
        progress(stage, total, total)


def backup(
    url: str, file: Path, *, pg_bin: Path | None = None, progress: Progress | None = None
) -> dict[str, object]:
    """Dump the whole database at ``url`` into ``file`` (custom format); returns a summary."""
    file = Path(file)
    if file.is_dir():
        raise InvalidInput(f"{file} is a folder; give a file name", loc=["file"])
    major = server_major(url)
    tool = find_tool("pg_dump", major, pg_bin)
    args, env = _conn_args(url)
    db = make_url(url).database or "postgres"
    tables = _tables(url)
    fd, name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".partial", dir=file.parent or Path("."))
    os.close(fd)  # created 0600, readable by its owner only; pg_dump writes into it
    tmp = Path(name)
    try:
        _run(
            [tool, *args, "-d", db, "-Fc", "--no-owner", "--no-privileges", "--verbose", "-f", str(tmp)],
            env,
            "dumping contents of table",
            len(tables),
            progress,
            "dump",
        )
        os.chmod(tmp, 0o600)
        os.replace(tmp, file)  # a crash mid-dump never leaves a truncated FILE behind
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return {
        "file": str(file),
        "bytes": file.stat().st_size,
        "tables": len(tables),
        "server_major": major,
        "tool": tool,
    }


#: Entry types a project archive holds (``pg_restore --list``), restored as they are.
_RESTORED = frozenset(
    {
        "TABLE",
        "TABLE DATA",
        "TABLE ATTACH",
        "INDEX ATTACH",
        "SEQUENCE",
        "SEQUENCE OWNED BY",
        "SEQUENCE SET",
        "DEFAULT",
        "INDEX",
        "CONSTRAINT",
        "FK CONSTRAINT",
        "TRIGGER",
        "VIEW",
        "MATERIALIZED VIEW",
        "MATERIALIZED VIEW DATA",
        "FUNCTION",
        "SCHEMA",
        "COMMENT",
    }
)
#: Entries left out: the extensions exist already (only a superuser may create them).
_SKIPPED = frozenset({"EXTENSION", "ACL", "DEFAULT ACL"})
#: Schemas of the project, and the functions its migrations define.
SCHEMAS = frozenset({"public", "ogc", "archive"})
FUNCTIONS = frozenset(
    {
        "audit_log_append_only",
        "wangge_ledger_append_only",
        "auth_notify",
        "audit_created_id",
        # migration 0034_people_index: the people's change stamp, the streets' change notice
        "people_stamp_change",
        "streets_notify",
        # migration 0038_people_fields_stamp: the stamp of a person's fields besides the position
        "people_stamp_fields",
    }
)
#: ... and the console's live-change triggers (migration 0009_notify), one per kind of row, and the
#: daily summary's (migration 0032_daily_summary: the summary is restored as dumped, its triggers
#: come after the data, in the post-data section), and the heat cells' (migration 0033_heat_cells)
FUNCTION_PREFIXES = ("wangge_live_", "wangge_daily_", "wangge_cells_")
_ENTRY = re.compile(r"^(\d+); (\d+) (\d+) (.+)$")


def _our_function(name: str) -> bool:
    return name in FUNCTIONS or name.startswith(FUNCTION_PREFIXES)


def _kind_of(rest: str) -> tuple[str, str, str]:
    """Split ``TYPE schema name owner`` (TYPE may have several words; schema may be '-')."""
    for kind in sorted(_RESTORED | _SKIPPED, key=len, reverse=True):
        if rest.startswith(kind + " "):
            parts = rest[len(kind) + 1 :].split(" ")
            schema = parts[0] if parts else ""
            name = parts[1] if len(parts) > 1 else ""
            return kind, schema, name
    return rest.split(" ")[0], "", ""


def restore_list(listing: str, tables: set[str]) -> list[str]:
    """Choose the entries of an archive's table of contents to restore (a ``pg_restore -L`` list).

    Parameters
    ----------
    listing
        The output of ``pg_restore --list``.
    tables
        The project's table names (the schema's models, ``alembic_version``).

    Raises
    ------
    InvalidInput
        An entry this project's archives never hold, or no schema version in it.
    """
    keep: list[str] = []
    versioned = False
    for line in listing.splitlines():
        m = _ENTRY.match(line.strip())
        if m is None:
            continue
        kind, schema, name = _kind_of(m.group(4))
        if kind in _SKIPPED:
            continue
        if kind not in _RESTORED:
            raise InvalidInput(f"not an archive of this project: it holds a {kind} entry", loc=["file"])
        if kind == "COMMENT":
            if "EXTENSION" in m.group(4) or " SCHEMA public" in m.group(4):
                continue
        elif kind == "SCHEMA":
            if name == "public" or schema == "public":
                continue
            if name not in SCHEMAS and schema not in SCHEMAS:
                raise InvalidInput(f"not an archive of this project: schema {name or schema}", loc=["file"])
        elif schema not in SCHEMAS:
            raise InvalidInput(f"not an archive of this project: {kind} in schema {schema}", loc=["file"])
        elif kind == "FUNCTION" and not _our_function(name.split("(")[0]):
            raise InvalidInput(f"not an archive of this project: function {name}", loc=["file"])
        elif kind in ("TABLE", "TABLE DATA") and schema == "public":
            if name == "spatial_ref_sys":
                continue  # PostGIS's own table, restored by the extension
            if name not in tables and not is_partition_name(name):
                raise InvalidInput(f"not an archive of this project: table {name}", loc=["file"])
            versioned = versioned or (kind == "TABLE DATA" and name == "alembic_version")
        keep.append(line.strip())
    if not versioned:
        raise InvalidInput("not an archive of this project: it holds no schema version", loc=["file"])
    return keep


def _is_superuser(url: str) -> bool:
    with psycopg.connect(psycopg_dsn(url)) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def restore(
    url: str, file: Path, *, clean: bool = False, pg_bin: Path | None = None, progress: Progress | None = None
) -> dict[str, object]:
    """Restore ``file`` into the database at ``url`` (as its owner role), all or nothing.

    Raises
    ------
    InvalidInput
        The file is no archive of this project, or ``url`` connects as a superuser.
    Conflict
        The target holds tables and ``clean`` is not set.
    """
    from api.store.models import Base

    file = Path(file)
    if not file.is_file():
        raise InvalidInput(f"no backup file {file}", loc=["file"])
    if _is_superuser(url):
        raise InvalidInput(
            "restore runs as the database's owner role, never as a superuser: give the owner's URL "
            "(WANGGE_OWNER_DATABASE_URL, or the embedded cluster's owner)",
            loc=["database_url"],
        )
    existing = _tables(url)
    if existing and not clean:
        raise Conflict(
            f"the target database already holds {len(existing)} tables; restore into an empty "
            "database or pass --clean to replace them"
        )
    major = server_major(url)
    tool = find_tool("pg_restore", major, pg_bin)
    listing = subprocess.run([tool, "--list", str(file)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise InvalidInput(f"{file} is not a pg_dump custom-format file", loc=["file"])
    keep = restore_list(listing.stdout, {*Base.metadata.tables, "alembic_version"})
    total = sum(1 for ln in keep if " TABLE DATA " in ln)
    args, env = _conn_args(url)
    db = make_url(url).database or "postgres"
    cmd = [
        tool,
        *args,
        "-d",
        db,
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--verbose",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".list") as chosen:
        chosen.write("\n".join(keep) + "\n")
        chosen.flush()
        if clean and _partitioned_tables(url):
            _restore_clean_script(
                url, file, chosen.name, tool, find_tool("psql", major, pg_bin), total, progress
            )
        else:
            if clean:
                cmd += ["--clean", "--if-exists"]
            _run(
                [*cmd, "-L", chosen.name, str(file)],
                env,
                "processing data for table",
                total,
                progress,
                "restore",
            )
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return {"file": str(file), "tables": len(_tables(url)), "server_major": major, "tool": tool}
