"""Whole-store backup and restore with ``pg_dump``/``pg_restore`` (custom format).

The client tools must be at least as new as the server, so they are taken
from the PostgreSQL installation whose major version matches the server
(``/usr/lib/postgresql/<major>/bin`` on Debian, as ``api.store.cluster`` finds
``initdb``), else ``WANGGE_PG_BIN``, else ``PATH``. The password travels in
the environment (``PGPASSWORD``), never on the command line.

A restore runs in one transaction (``--single-transaction --exit-on-error``):
it lands whole or not at all. It refuses a database that already holds tables
unless ``clean`` is set (then the objects in the dump are dropped first).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from api.errors import Conflict, Failed, InvalidInput
from api.store.engine import psycopg_dsn

Progress = Callable[[str, int, int], None]


class BackupError(Failed):
    """A backup or restore could not be completed."""

    error_type = "backup_failed"


def server_major(url: str) -> int:
    with psycopg.connect(psycopg_dsn(url)) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def find_tool(name: str, major: int, pg_bin: Path | None = None) -> str:
    """The ``pg_dump``/``pg_restore`` whose major version matches the server's (or newer)."""
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
    tmp = file.with_name(file.name + ".partial")
    major = server_major(url)
    tool = find_tool("pg_dump", major, pg_bin)
    args, env = _conn_args(url)
    db = make_url(url).database or "postgres"
    tables = _tables(url)
    _run(
        [tool, *args, "-d", db, "-Fc", "--no-owner", "--no-privileges", "--verbose", "-f", str(tmp)],
        env,
        "dumping contents of table",
        len(tables),
        progress,
        "dump",
    )
    os.replace(tmp, file)  # a crash mid-dump never leaves a truncated FILE behind
    return {
        "file": str(file),
        "bytes": file.stat().st_size,
        "tables": len(tables),
        "server_major": major,
        "tool": tool,
    }


def restore(
    url: str, file: Path, *, clean: bool = False, pg_bin: Path | None = None, progress: Progress | None = None
) -> dict[str, object]:
    """Restore ``file`` into the database at ``url``, all or nothing."""
    file = Path(file)
    if not file.is_file():
        raise InvalidInput(f"no backup file {file}", loc=["file"])
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
    total = sum(1 for ln in listing.stdout.splitlines() if " TABLE DATA " in ln)
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
    if clean:
        cmd += ["--clean", "--if-exists"]
    _run([*cmd, str(file)], env, "processing data for table", total, progress, "restore")
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return {"file": str(file), "tables": len(_tables(url)), "server_major": major, "tool": tool}
