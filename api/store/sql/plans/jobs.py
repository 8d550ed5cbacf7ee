"""SQL of ``plan_jobs``: redraws the planner console runs in the background (migration 0016)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_COLUMNS = """id, owner_token_id, actor, idempotency_key, communities, street_code, request, status,
    stage, done, total, stages, cancel_requested, outcomes, error, created_at, updated_at, finished_at"""


@dataclass(frozen=True, slots=True)
class JobRow:
    """One row of ``plan_jobs``."""

    id: int
    owner_token_id: int | None
    actor: str
    idempotency_key: str | None
    communities: list[str]
    street_code: str | None
    request: dict[str, Any]
    status: str
    stage: str | None
    done: int
    total: int
    stages: list[dict[str, Any]]
    cancel_requested: bool
    outcomes: list[dict[str, Any]]
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


def _job(r: Sequence[Any]) -> JobRow:
    return JobRow(
        int(r[0]),
        None if r[1] is None else int(r[1]),
        str(r[2]),
        r[3],
        list(r[4]),
        r[5],
        dict(r[6]),
        str(r[7]),
        r[8],
        int(r[9]),
        int(r[10]),
        list(r[11]),
        bool(r[12]),
        list(r[13]),
        r[14],
        r[15],
        r[16],
        r[17],
    )


def insert_job(
    conn: Connection,
    *,
    owner_token_id: int | None,
    actor: str,
    key: str | None,
    communities: list[str],
    street_code: str | None,
    request: dict[str, Any],
) -> tuple[JobRow, bool]:
    """Insert a queued job; with a key already used by the owner, return that job (``created`` False)."""
    row = conn.execute(
        text(
            f"""
            INSERT INTO plan_jobs
                (owner_token_id, actor, idempotency_key, communities, street_code, request)
            VALUES (:owner, :actor, :key, CAST(:communities AS varchar(12)[]), :street,
                    CAST(:request AS jsonb))
            ON CONFLICT (owner_token_id, idempotency_key) DO NOTHING
            RETURNING {_COLUMNS}
            """
        ),
        {
            "owner": owner_token_id,
            "actor": actor,
            "key": key,
            "communities": communities,
            "street": street_code,
            "request": json.dumps(request),
        },
    ).first()
    if row is not None:
        return _job(row), True
    again = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM plan_jobs WHERE owner_token_id IS NOT DISTINCT FROM :owner "
            "AND idempotency_key = :key"
        ),
        {"owner": owner_token_id, "key": key},
    ).one()
    return _job(again), False


def job_row(conn: Connection, job_id: int) -> JobRow | None:
    """Return a job by id, or None."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM plan_jobs WHERE id = :id"), {"id": job_id}).first()
    return None if row is None else _job(row)


def recent_jobs(conn: Connection, owner_token_id: int | None, limit: int) -> list[JobRow]:
    """Return the latest jobs of an owner (every job for None: admins and the command line)."""
    rows = conn.execute(
        text(
            f"""
            SELECT {_COLUMNS} FROM plan_jobs
            WHERE CAST(:owner AS bigint) IS NULL OR owner_token_id = :owner
            ORDER BY id DESC LIMIT :limit
            """
        ),
        {"owner": owner_token_id, "limit": limit},
    )
    return [_job(r) for r in rows]


def record_progress(conn: Connection, job_id: int, stage: str, done: int, total: int) -> bool:
    """Record the stage a running job reached; return whether a cancel was asked for."""
    row = conn.execute(
        text(
            """
            UPDATE plan_jobs SET status = 'running', stage = CAST(:stage AS text), done = CAST(:done AS int),
                   total = CAST(:total AS int),
                   stages = stages || jsonb_build_array(jsonb_build_object('stage', CAST(:stage AS text),
                       'done', CAST(:done AS int), 'total', CAST(:total AS int))),
                   updated_at = clock_timestamp()
            WHERE id = :id RETURNING cancel_requested
            """
        ),
        {"id": job_id, "stage": stage, "done": done, "total": total},
    ).first()
    return bool(row and row[0])


def request_cancel(conn: Connection, job_id: int) -> None:
    """Ask a queued or running job to stop at its next stage."""
    conn.execute(
        text(
            "UPDATE plan_jobs SET cancel_requested = true, updated_at = clock_timestamp() "
            "WHERE id = :id AND status IN ('queued', 'running')"
        ),
        {"id": job_id},
    )


def finish_job(
    conn: Connection, job_id: int, status: str, outcomes: list[dict[str, Any]], error: str | None
) -> None:
    """Record how a job ended (done, failed or cancelled) with one outcome per community."""
    conn.execute(
        text(
            """
            UPDATE plan_jobs SET status = :status, outcomes = CAST(:outcomes AS jsonb), error = :error,
                   updated_at = clock_timestamp(), finished_at = clock_timestamp()
            WHERE id = :id
            """
        ),
        {"id": job_id, "status": status, "outcomes": json.dumps(outcomes), "error": error},
    )
