"""Incidents: intake with assignment by location, workflow moves, lists, ratings, merges.

All spatial work is done by PostGIS: the point is located in the active grids
(partial GiST index ``ix_grids_active_geom``), neighbouring grids and likely
duplicates are found with ``ST_DWithin`` on geography (metres), and the nearest
available worker with the geography KNN operator.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.principal import Principal
from api.errors import Conflict, Forbidden, InvalidInput, NotFound
from api.services.incidents import workflow
from api.services.incidents.intake import Intake
from api.services.incidents.limits import SQL_EFFECTIVE_DUE, SQL_OPEN, SQL_OVERDUE
from api.settings import IncidentSettings

POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
#: degrees that safely cover one metre in a bounding-box prefilter (up to ~60° latitude)
DEG_PER_M = 2.0 / 111_320.0

# --------------------------------------------------------------------------- lookups

_NEIGHBOURS = text(
    f"""
    SELECT g.code, round(ST_Distance(g.geom::geography, {POINT}::geography)::numeric, 1) AS m
    FROM grids g
    WHERE g.active AND g.id IS DISTINCT FROM :grid_id
      AND g.geom && ST_Expand({POINT}, :deg)
      AND ST_DWithin(g.geom::geography, {POINT}::geography, :tol)
    ORDER BY g.code
    """
)

#: Everything intake needs to decide, in one round trip: the item, an earlier request with
#: the same Idempotency-Key, the grid that contains the point (lowest code on a shared
#: boundary), the grids within the boundary tolerance, the nearest on-duty worker of the
#: community when the grid's own worker is off duty, and a likely duplicate.
_PLAN = text(
    f"""
    WITH pt AS (SELECT CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                            ELSE {POINT} END AS p),
    g AS (
      SELECT g.id, g.code, g.community_code, g.city_code, g.worker_id,
             w.name AS worker_name, coalesce(w.on_duty, false) AS worker_on_duty
      FROM pt, grids g LEFT JOIN people w ON w.id = g.worker_id
      WHERE g.active AND ST_Intersects(g.geom, pt.p)
      ORDER BY g.code LIMIT 1),
    nb AS (
      SELECT n.code, round(ST_Distance(n.geom::geography, pt.p::geography)::numeric, 1) AS distance_m
      FROM pt, grids n
      WHERE n.active AND n.id IS DISTINCT FROM (SELECT id FROM g)
        AND n.geom && ST_Expand(pt.p, :deg_tol)
        AND ST_DWithin(n.geom::geography, pt.p::geography, :tol)),
    near AS (
      SELECT p.id, p.name, p.role,
             round(ST_Distance(p.position::geography, pt.p::geography)::numeric) AS m
      FROM pt, g, people p
      WHERE NOT (g.worker_id IS NOT NULL AND g.worker_on_duty)
        AND p.community_code = g.community_code AND p.role IN ('grid_worker', 'window_worker')
        AND p.on_duty AND p.id IS DISTINCT FROM g.worker_id
      ORDER BY p.role <> 'grid_worker', p.position IS NULL,
               p.position::geography <-> pt.p::geography, p.id
      LIMIT 1),
    dup AS (
      SELECT i.id, round(ST_Distance(i.location::geography, pt.p::geography)::numeric, 1) AS m
      FROM pt, incidents i
      WHERE i.item_code = :item AND {SQL_OPEN} AND i.duplicate_of IS NULL
        AND i.created_at >= now() - make_interval(secs => :window_s)
        AND i.location && ST_Expand(pt.p, :deg_radius)
        AND ST_DWithin(i.location::geography, pt.p::geography, :radius)
      ORDER BY i.location::geography <-> pt.p::geography, i.id
      LIMIT 1)
    SELECT
      (SELECT row_to_json(s) FROM (SELECT code, name, time_limit_hours, on_the_spot
                                   FROM service_items WHERE code = :item) s) AS item,
      (SELECT row_to_json(r) FROM (SELECT id, request_hash FROM incidents
                                   WHERE idempotency_key = :key) r) AS prior,
      (SELECT row_to_json(g) FROM g) AS grid,
      (SELECT coalesce(json_agg(row_to_json(nb) ORDER BY nb.code), '[]'::json) FROM nb)
        AS neighbours,
      (SELECT row_to_json(near) FROM near) AS near,
      (SELECT row_to_json(dup) FROM dup) AS dup,
      (SELECT coalesce((SELECT city_code FROM communities WHERE code = :scope),
                       (SELECT min(city_code) FROM communities),
                       (SELECT min(code) FROM admin_areas WHERE level = 'city'))) AS city
    """
)

#: The incident, its first reporter and its first events, in one statement. With a
#: conflicting Idempotency-Key nothing is inserted (the insert waits for a concurrent
#: transaction holding the same key, then does nothing) and no row is returned.
_INSERT = text(
    """
    WITH ins AS (
      INSERT INTO incidents (city_code, item_code, description, channel, reporter_name,
        reporter_phone, reporter_token_id, location, input_crs, address, located, grid_id,
        community_code, assignee_id, status, idempotency_key, request_hash, due_at,
        accepted_at, likely_duplicate_of)
      VALUES (:city, :item, :description, :channel, :rname, :rphone, :rtoken,
        CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
             ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
        :crs, :address, :located, :grid, :community, :assignee, :status, :key, :hash,
        now() + make_interval(secs => :limit_h * 3600),
        CASE WHEN :accepted THEN now() END, :dup)
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING id, city_code, location),
    rep AS (
      INSERT INTO incident_reporters (incident_id, source_incident_id, reporter_name,
        reporter_phone, reporter_token_id)
      SELECT id, id, :rname, :rphone, :rtoken FROM ins),
    ev AS (
      INSERT INTO incident_events (incident_id, city_code, actor, action, from_status,
        to_status, detail, geom)
      SELECT ins.id, ins.city_code, e.actor, e.action, e.f, e.t, e.detail, ins.location
      FROM ins, jsonb_to_recordset(CAST(:events AS jsonb))
        AS e(actor text, action text, f text, t text, detail jsonb))
    SELECT id FROM ins
    """
)


async def neighbour_grids(
    conn: AsyncConnection, lon: float, lat: float, grid_id: int | None, tolerance_m: float
) -> list[dict[str, Any]]:
    """Active grids other than ``grid_id`` within ``tolerance_m`` metres of the point."""
    rows = await conn.execute(
        _NEIGHBOURS,
        {"lon": lon, "lat": lat, "grid_id": grid_id, "tol": tolerance_m, "deg": tolerance_m * DEG_PER_M},
    )
    return [{"code": r.code, "distance_m": float(r.m)} for r in rows]


async def _event(
    conn: AsyncConnection,
    incident_id: int,
    city_code: str,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str | None,
    detail: dict[str, Any],
    lon: float | None = None,
    lat: float | None = None,
) -> None:
    """Write one event; its place is the given point, else the incident's location."""
    await conn.execute(
        text(
            "INSERT INTO incident_events (incident_id, city_code, actor, action, from_status, "
            "to_status, detail, geom) VALUES (:id, :city, :actor, :action, :f, :t, "
            "CAST(:detail AS jsonb), CASE WHEN CAST(:lon AS float8) IS NULL "
            "THEN (SELECT location FROM incidents WHERE id = :id) "
            "ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END)"
        ),
        {
            "id": incident_id,
            "city": city_code,
            "actor": actor,
            "action": action,
            "f": from_status,
            "t": to_status,
            "detail": json.dumps(detail, ensure_ascii=False, default=str),
            "lon": lon,
            "lat": lat,
        },
    )


# --------------------------------------------------------------------------- intake


def _assignment(plan: dict[str, Any]) -> dict[str, Any]:
    """Grid, community, worker and the reason, from the planning query's answer.

    The grid's worker takes the case when on duty; otherwise the nearest on-duty
    grid worker of the same community (then a window worker), and ``reason`` says so.
    """
    grid, near = plan["grid"], plan["near"]
    out: dict[str, Any] = {
        "grid_id": None,
        "grid": None,
        "community": None,
        "assignee": None,
        "city_code": None,
        "neighbours": plan["neighbours"],
        "fallback": False,
    }
    if grid is None:
        out["reason"] = "outside every active grid: stored unlocated, in the window's triage queue"
        return out
    out.update(
        grid_id=grid["id"], grid=grid["code"], community=grid["community_code"], city_code=grid["city_code"]
    )
    if grid["worker_id"] is not None and grid["worker_on_duty"]:
        out["assignee"] = grid["worker_id"]
        out["reason"] = f"grid {grid['code']}: its worker {grid['worker_name']} is on duty"
        return out
    why = (
        f"grid {grid['code']} has no worker"
        if grid["worker_id"] is None
        else f"grid {grid['code']}: its worker {grid['worker_name']} is off duty"
    )
    if near is None:
        out["reason"] = why + "; no worker of the community is on duty: waiting in triage"
        return out
    dist = "position unknown" if near["m"] is None else f"{int(near['m'])} m away"
    out.update(
        assignee=near["id"],
        fallback=True,
        reason=(
            f"{why}; nearest available {near['role'].replace('_', ' ')} of community "
            f"{grid['community_code']}: {near['name']} ({dist})"
        ),
    )
    return out


async def create_incident(
    conn: AsyncConnection,
    intake: Intake,
    principal: Principal,
    idempotency_key: str | None,
    tolerance_m: float,
    settings: IncidentSettings,
) -> tuple[int, bool, list[dict[str, Any]]]:
    """Take a report; returns ``(incident id, created, neighbour grids)``.

    ``created`` is False for an idempotent replay (the same key and body as before).
    """
    fingerprint = intake.fingerprint()
    plan = dict(
        (
            await conn.execute(
                _PLAN,
                {
                    "lon": intake.lon,
                    "lat": intake.lat,
                    "item": intake.item_code,
                    "key": idempotency_key,
                    "tol": tolerance_m,
                    "deg_tol": tolerance_m * DEG_PER_M,
                    "radius": settings.duplicate_radius_m,
                    "deg_radius": settings.duplicate_radius_m * DEG_PER_M,
                    "window_s": settings.duplicate_window_hours * 3600.0,
                    "scope": principal.community_code,
                },
            )
        )
        .mappings()
        .one()
    )
    item = plan["item"]
    if item is None:
        raise InvalidInput(
            f"unknown catalogue item {intake.item_code!r} (see GET /open311/v2/services.json)",
            loc=["body", "item_code"],
        )
    if plan["prior"] is not None:
        return _check_replay(plan["prior"], fingerprint), False, plan["neighbours"]
    if plan["city"] is None:
        raise Conflict("the store holds no city yet; load one before taking reports")

    where = _assignment(plan)
    if intake.lon is None:
        where["reason"] = "no location given: in the window's triage queue"
    status = "assigned" if where["assignee"] is not None else "submitted"
    accepted = False
    if intake.channel == "window" and item["on_the_spot"] and principal.person_id is not None:
        # first-asked responsibility (首问负责): the window worker who took it owns it
        where["assignee"] = principal.person_id
        where["reason"] = (
            "first-asked responsibility: on-the-spot item taken at the window by "
            f"person {principal.person_id}"
        )
        status, accepted = "accepted", True
    city = where["city_code"] or plan["city"]
    duplicate = plan["dup"]

    events: list[dict[str, Any]] = [
        {
            "actor": principal.actor,
            "action": "intake",
            "f": None,
            "t": "submitted",
            "detail": {
                "channel": intake.channel,
                "item": intake.item_code,
                "input_crs": intake.input_crs,
                "input_point": None if intake.input_lon is None else [intake.input_lon, intake.input_lat],
                "address": intake.address,
                "idempotency_key": idempotency_key is not None,
            },
        },
        {
            "actor": "system",
            "action": "assign" if where["assignee"] else "triage",
            "f": "submitted",
            "t": status,
            "detail": {
                "grid": where["grid"],
                "community": where["community"],
                "assignee": where["assignee"],
                "reason": where["reason"],
                "neighbour_grids": where["neighbours"],
                "fallback": where["fallback"],
            },
        },
    ]
    if duplicate is not None:
        events.append(
            {
                "actor": "system",
                "action": "flag_duplicate",
                "f": status,
                "t": status,
                "detail": {
                    "likely_duplicate_of": duplicate["id"],
                    "distance_m": duplicate["m"],
                    "radius_m": settings.duplicate_radius_m,
                    "window_hours": settings.duplicate_window_hours,
                },
            }
        )
    params = {
        "city": city,
        "item": intake.item_code,
        "description": intake.description,
        "channel": intake.channel,
        "rname": intake.reporter_name,
        "rphone": intake.reporter_phone,
        "rtoken": principal.token_id,
        "lon": intake.lon,
        "lat": intake.lat,
        "crs": intake.input_crs,
        "address": intake.address,
        "located": where["grid_id"] is not None,
        "grid": where["grid_id"],
        "community": where["community"],
        "assignee": where["assignee"],
        "status": status,
        "key": idempotency_key,
        "hash": fingerprint,
        "limit_h": float(item["time_limit_hours"]),
        "accepted": accepted,
        "dup": duplicate["id"] if duplicate else None,
        "events": json.dumps(events, ensure_ascii=False, default=str),
    }
    new_id = (await conn.execute(_INSERT, params)).scalar()
    if new_id is None:
        # a concurrent retry with the same key won the insert (this one waited for its commit)
        prior = await _replay(conn, idempotency_key or "", fingerprint)
        if prior is None:  # pragma: no cover - the conflicting row is visible after the wait
            raise Conflict("Idempotency-Key is being used by a request that failed; retry")
        return prior, False, where["neighbours"]
    return int(new_id), True, where["neighbours"]


def _check_replay(prior: dict[str, Any], fingerprint: str) -> int:
    if prior["request_hash"] != fingerprint:
        raise Conflict(
            f"Idempotency-Key was already used for incident {prior['id']} with a different "
            "request body; send a new key for a new report, or repeat the original body to retry",
            loc=["header", "idempotency-key"],
        )
    return int(prior["id"])


async def _replay(conn: AsyncConnection, key: str, fingerprint: str) -> int | None:
    row = (
        (
            await conn.execute(
                text("SELECT id, request_hash FROM incidents WHERE idempotency_key = :k"), {"k": key}
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else _check_replay(dict(row), fingerprint)


# --------------------------------------------------------------------------- reading

_SELECT = f"""
    SELECT i.id, i.city_code, i.item_code, s.name AS item_name, s.name_en AS item_name_en,
           s.category AS item_category, s.on_the_spot AS item_on_the_spot,
           s.time_limit_hours AS item_time_limit_hours,
           i.description, i.channel, i.status, i.reporter_name, i.reporter_phone,
           i.reporter_token_id, ST_X(i.location) AS lon, ST_Y(i.location) AS lat,
           i.input_crs, i.address, i.located, i.grid_id, g.code AS grid_code, g.name AS grid_name,
           g.worker_id AS grid_worker_id,
           i.community_code, c.name AS community_name, c.district_code,
           i.assignee_id, p.name AS assignee_name, p.phone AS assignee_phone,
           p.role AS assignee_role, i.department_code, d.name AS department_name,
           i.duplicate_of, i.likely_duplicate_of, i.created_at, i.due_at, i.accepted_at,
           i.resolved_at, i.escalated_at, i.department_due_at, i.closed_at, i.on_the_spot,
           {SQL_EFFECTIVE_DUE} AS effective_due_at, {SQL_OVERDUE} AS overdue,
           (SELECT json_build_object('good', r.good, 'score', r.score, 'comment', r.comment,
                                     'at', r.at)
              FROM ratings r WHERE r.incident_id = i.id) AS rating,
           (SELECT coalesce(json_agg(m.id ORDER BY m.id), '[]'::json)
              FROM incidents m WHERE m.duplicate_of = i.id) AS merged
    FROM incidents i
    JOIN service_items s ON s.code = i.item_code
    LEFT JOIN grids g ON g.id = i.grid_id
    LEFT JOIN communities c ON c.code = i.community_code
    LEFT JOIN people p ON p.id = i.assignee_id
    LEFT JOIN departments d ON d.code = i.department_code
"""


async def fetch(conn: AsyncConnection, incident_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(text(_SELECT + " WHERE i.id = :id"), {"id": incident_id})).mappings().first()
    return dict(row) if row else None


async def events(conn: AsyncConnection, incident_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT id, at, actor, action, from_status, to_status, detail, "
            "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incident_events "
            "WHERE incident_id = :id ORDER BY at, id"
        ),
        {"id": incident_id},
    )
    return [dict(r) for r in rows.mappings()]


async def reporters(conn: AsyncConnection, incident_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT source_incident_id, reporter_name, reporter_phone, reporter_token_id, added_at "
            "FROM incident_reporters WHERE incident_id = :id ORDER BY source_incident_id"
        ),
        {"id": incident_id},
    )
    return [dict(r) for r in rows.mappings()]


async def is_reporter(conn: AsyncConnection, incident_id: int, token_id: int) -> bool:
    row = await conn.execute(
        text("SELECT 1 FROM incident_reporters WHERE incident_id = :i AND reporter_token_id = :t"),
        {"i": incident_id, "t": token_id},
    )
    return row.first() is not None


def visibility_sql(principal: Principal) -> tuple[str, dict[str, Any]]:
    """The WHERE clause limiting a list to what the token may see."""
    role = principal.role
    if role == "reporter":
        return (
            "EXISTS (SELECT 1 FROM incident_reporters r WHERE r.incident_id = i.id "
            "AND r.reporter_token_id = :v_token)",
            {"v_token": principal.token_id},
        )
    if role == "worker":
        return "i.assignee_id = :v_person", {"v_person": principal.person_id or -1}
    if role == "department":
        return "i.department_code = :v_dep", {"v_dep": principal.department_code or ""}
    clauses, params = [], {}
    if role != "admin" and principal.community_code:
        clauses.append("i.community_code = :v_comm")
        params["v_comm"] = principal.community_code
    if role != "admin" and principal.district_code:
        clauses.append("left(i.community_code, 6) = :v_dist")
        params["v_dist"] = principal.district_code
    return (" AND ".join(clauses) or "TRUE"), params


async def can_read(conn: AsyncConnection, row: dict[str, Any], principal: Principal) -> bool:
    role = principal.role
    if role == "admin":
        return True
    if role == "reporter":
        return await is_reporter(conn, row["id"], principal.token_id)
    if role == "worker":
        return principal.person_id is not None and row["assignee_id"] == principal.person_id
    if role == "department":
        return row["department_code"] is not None and row["department_code"] == principal.department_code
    return principal.in_scope(row["community_code"])


ORDERS = {
    "created": "i.created_at DESC, i.id DESC",
    "due": f"{SQL_EFFECTIVE_DUE} ASC NULLS LAST, i.id",
}


async def list_incidents(
    conn: AsyncConnection,
    principal: Principal,
    filters: dict[str, Any],
    limit: int,
    offset: int,
    order: str = "created",
) -> tuple[int, list[dict[str, Any]]]:
    """Incidents the token may see, filtered; returns ``(total, page)``."""
    where, params = visibility_sql(principal)
    clauses = [where]
    f = filters
    if f.get("status"):
        clauses.append("i.status = ANY(:status)")
        params["status"] = f["status"]
    for key, column in (
        ("grid", "g.code"),
        ("community", "i.community_code"),
        ("department", "i.department_code"),
        ("item", "i.item_code"),
        ("category", "s.category"),
        ("channel", "i.channel"),
    ):
        if f.get(key) is not None:
            clauses.append(f"{column} = :{key}")
            params[key] = f[key]
    if f.get("district") is not None:
        clauses.append("c.district_code = :district")
        params["district"] = f["district"]
    if f.get("overdue") is not None:
        clauses.append(f"{SQL_OVERDUE} = :overdue")
        params["overdue"] = f["overdue"]
    if f.get("triage"):
        clauses.append(f"i.grid_id IS NULL AND {SQL_OPEN} AND i.duplicate_of IS NULL")
    if f.get("likely_duplicate") is not None:
        clauses.append("(i.likely_duplicate_of IS NOT NULL) = :likely_duplicate")
        params["likely_duplicate"] = f["likely_duplicate"]
    if f.get("since") is not None:
        clauses.append("i.created_at >= :since")
        params["since"] = f["since"]
    if f.get("until") is not None:
        clauses.append("i.created_at < :until")
        params["until"] = f["until"]
    if f.get("bbox") is not None:
        clauses.append("i.location && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(dict(zip(("x0", "y0", "x1", "y1"), f["bbox"], strict=True)))
    sql = (
        _SELECT.replace("SELECT i.id,", "SELECT count(*) OVER () AS total, i.id,", 1)
        + " WHERE "
        + " AND ".join(clauses)
        + f" ORDER BY {ORDERS[order]} LIMIT :limit OFFSET :offset"
    )
    params.update(limit=limit, offset=offset)
    rows = [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset:
        count_sql = (
            "SELECT count(*) FROM incidents i JOIN service_items s ON s.code = i.item_code "
            "LEFT JOIN grids g ON g.id = i.grid_id LEFT JOIN communities c "
            "ON c.code = i.community_code WHERE " + " AND ".join(clauses)
        )
        total = int((await conn.execute(text(count_sql), params)).scalar_one())
    return total, rows


# --------------------------------------------------------------------------- workflow


async def _lock(conn: AsyncConnection, incident_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT i.id, i.city_code, i.status, i.item_code, i.assignee_id, i.department_code, "
                    "i.community_code, i.grid_id, i.duplicate_of, i.created_at, s.on_the_spot "
                    "FROM incidents i JOIN service_items s ON s.code = i.item_code "
                    "WHERE i.id = :id FOR UPDATE OF i"
                ),
                {"id": incident_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no incident {incident_id}", loc=["path", "incident_id"])
    return dict(row)


def _check_owner(row: dict[str, Any], principal: Principal, action: str) -> None:
    role = principal.role
    if role == "admin":
        return
    if role == "worker":
        if principal.person_id is None or row["assignee_id"] != principal.person_id:
            raise Forbidden(
                f"a worker may take the action {action!r} only on a case assigned to them; "
                f"incident {row['id']} is assigned to person {row['assignee_id']}",
                loc=["header", "authorization"],
            )
    elif role == "department":
        if row["department_code"] is None or row["department_code"] != principal.department_code:
            raise Forbidden(
                f"department {principal.department_code!r} may take the action {action!r} only on "
                f"cases escalated to it; incident {row['id']} is with "
                f"{row['department_code'] or 'no department'}",
                loc=["header", "authorization"],
            )
    elif not principal.in_scope(row["community_code"]):
        raise Forbidden(
            f"incident {row['id']} (community {row['community_code']}) is outside this token's area",
            loc=["header", "authorization"],
        )


async def transition(
    conn: AsyncConnection,
    incident_id: int,
    principal: Principal,
    action: str,
    department: str | None,
    note: str | None,
    where: tuple[float, float] | None,
) -> None:
    """Take ``action`` on the case (row-locked), write the change and its event."""
    row = await _lock(conn, incident_id)
    if row["duplicate_of"] is not None:
        raise Conflict(
            f"incident {incident_id} was merged into incident {row['duplicate_of']}; act on that one",
            loc=["path", "incident_id"],
        )
    try:
        move = workflow.plan_transition(action, row["status"], principal.role)
    except workflow.UnknownAction as exc:
        raise InvalidInput(str(exc), loc=["body", "action"]) from None
    except workflow.RoleMayNot as exc:
        raise Forbidden(str(exc), loc=["body", "action"], role=principal.role, action=action) from None
    except workflow.IllegalTransition as exc:
        raise Conflict(
            str(exc), loc=["body", "action"], status=exc.status, allowed_actions=exc.allowed
        ) from None
    _check_owner(row, principal, action)

    sets = ["status = :to"]
    params: dict[str, Any] = {"id": incident_id, "to": move.to_status}
    detail: dict[str, Any] = {}
    if note:
        detail["note"] = note
    if action != "escalate" and department is not None:
        raise InvalidInput("department is only used by the action 'escalate'", loc=["body", "department"])
    if action == "accept":
        sets.append("accepted_at = coalesce(accepted_at, now())")
        if principal.role == "worker" and principal.person_id is not None:
            sets.append("assignee_id = :person")
            params["person"] = principal.person_id
    elif action == "start":
        sets.append("accepted_at = coalesce(accepted_at, now())")
    elif action == "resolve":
        # completed on the spot: an immediate item resolved the same (Beijing) day it came in
        sets += [
            "resolved_at = now()",
            "on_the_spot = (:immediate AND (now() AT TIME ZONE 'Asia/Shanghai')::date = "
            "(created_at AT TIME ZONE 'Asia/Shanghai')::date)",
        ]
        params["immediate"] = bool(row["on_the_spot"])
    elif action == "escalate":
        if not department:
            raise InvalidInput(
                "escalate needs `department`: the code of the department that must "
                "answer (GET /api/v1/departments)",
                loc=["body", "department"],
            )
        dep = (
            await conn.execute(
                text("SELECT code, time_limit_hours FROM departments WHERE code = :c"),
                {"c": department},
            )
        ).first()
        if dep is None:
            raise InvalidInput(
                f"unknown department {department!r} (GET /api/v1/departments)", loc=["body", "department"]
            )
        sets += [
            "department_code = :dep",
            "escalated_at = now()",
            "department_due_at = now() + make_interval(hours => :dep_h)",
        ]
        params.update(dep=dep.code, dep_h=int(dep.time_limit_hours))
        detail.update(department=dep.code, time_limit_hours=int(dep.time_limit_hours))
    elif action == "return":
        if not note:
            raise InvalidInput(
                "a department returns a case with its reasons: give `note`", loc=["body", "note"]
            )
        sets += ["department_code = NULL", "department_due_at = NULL"]
        detail["department"] = row["department_code"]
    elif action == "close":
        sets.append("closed_at = now()")
    elif action == "reopen":
        sets += ["resolved_at = NULL", "closed_at = NULL", "on_the_spot = false"]
    await conn.execute(text(f"UPDATE incidents SET {', '.join(sets)} WHERE id = :id"), params)
    lon, lat = where if where else (None, None)
    await _event(
        conn,
        incident_id,
        row["city_code"],
        principal.actor,
        action.replace("-", "_"),
        move.from_status,
        move.to_status,
        detail,
        lon,
        lat,
    )


async def reassign(
    conn: AsyncConnection,
    incident_id: int,
    principal: Principal,
    grid_code: str,
    assignee: int | None,
    note: str | None,
) -> None:
    """Move a case to another active grid (and its worker, or the one named), logged."""
    row = await _lock(conn, incident_id)
    _check_owner(row, principal, "reassign")
    if row["duplicate_of"] is not None:
        raise Conflict(
            f"incident {incident_id} was merged into {row['duplicate_of']}", loc=["path", "incident_id"]
        )
    if row["status"] not in ("submitted", "assigned", "accepted", "in_progress"):
        raise Conflict(
            f"a case that is {row['status']!r} cannot be reassigned; only cases with the "
            "community (submitted, assigned, accepted, in_progress)",
            loc=["path", "incident_id"],
            status=row["status"],
        )
    grid = (
        (
            await conn.execute(
                text(
                    "SELECT g.id, g.code, g.community_code, g.worker_id, w.on_duty FROM grids g "
                    "LEFT JOIN people w ON w.id = g.worker_id WHERE g.active AND g.code = :c"
                ),
                {"c": grid_code},
            )
        )
        .mappings()
        .first()
    )
    if grid is None:
        raise InvalidInput(f"no active grid with code {grid_code!r}", loc=["body", "grid"])
    if not principal.in_scope(grid["community_code"]):
        raise Forbidden(f"grid {grid_code} is outside this token's area", loc=["body", "grid"])
    reason = "named by the dispatcher"
    if assignee is not None:
        person = (
            await conn.execute(text("SELECT id, community_code FROM people WHERE id = :p"), {"p": assignee})
        ).first()
        if person is None:
            raise InvalidInput(f"no person {assignee}", loc=["body", "assignee"])
    elif grid["worker_id"] is not None and grid["on_duty"]:
        assignee, reason = grid["worker_id"], "the grid's worker on duty"
    else:
        near = (
            await conn.execute(
                text(
                    "SELECT id FROM people WHERE community_code = :c AND role = 'grid_worker' "
                    "AND on_duty ORDER BY id LIMIT 1"
                ),
                {"c": grid["community_code"]},
            )
        ).first()
        assignee = near.id if near else None
        reason = "the grid's worker is off duty: an on-duty worker of the community"
    to_status = "assigned" if assignee is not None else "submitted"
    await conn.execute(
        text(
            "UPDATE incidents SET grid_id = :g, community_code = :c, assignee_id = :a, "
            "status = :s WHERE id = :id"
        ),
        {"g": grid["id"], "c": grid["community_code"], "a": assignee, "s": to_status, "id": incident_id},
    )
    old = (await conn.execute(text("SELECT code FROM grids WHERE id = :g"), {"g": row["grid_id"]})).scalar()
    await _event(
        conn,
        incident_id,
        row["city_code"],
        principal.actor,
        "reassign",
        row["status"],
        to_status,
        {
            "from_grid": old,
            "to_grid": grid_code,
            "from_assignee": row["assignee_id"],
            "assignee": assignee,
            "reason": reason,
            "note": note,
        },
    )


async def merge(
    conn: AsyncConnection, incident_id: int, into: int, principal: Principal, note: str | None
) -> None:
    """Merge a duplicate into the case it repeats; its reporters follow that case."""
    if incident_id == into:
        raise InvalidInput("an incident cannot be merged into itself", loc=["body", "into"])
    first, second = sorted((incident_id, into))
    rows = {first: await _lock(conn, first), second: None}
    try:
        rows[second] = await _lock(conn, second)
    except NotFound:
        raise InvalidInput(f"no incident {into}", loc=["body", "into"]) from None
    dup, target = rows[incident_id], rows[into]
    assert dup is not None and target is not None
    for r in (dup, target):
        _check_owner(r, principal, "merge")
    if dup["duplicate_of"] is not None:
        raise Conflict(
            f"incident {incident_id} is already merged into {dup['duplicate_of']}",
            loc=["path", "incident_id"],
        )
    if target["duplicate_of"] is not None:
        raise InvalidInput(
            f"incident {into} is itself merged into {target['duplicate_of']}; merge into that one",
            loc=["body", "into"],
        )
    if dup["status"] not in workflow.OPEN_STATUSES:
        raise Conflict(
            f"incident {incident_id} is {dup['status']!r}; only open cases are merged",
            loc=["path", "incident_id"],
        )
    await conn.execute(
        text(
            "UPDATE incidents SET duplicate_of = :into, likely_duplicate_of = NULL, "
            "status = 'closed', closed_at = now() WHERE id = :id"
        ),
        {"into": into, "id": incident_id},
    )
    await conn.execute(
        text(
            "INSERT INTO incident_reporters (incident_id, source_incident_id, reporter_name, "
            "reporter_phone, reporter_token_id) SELECT :into, source_incident_id, reporter_name, "
            "reporter_phone, reporter_token_id FROM incident_reporters WHERE incident_id = :id "
            "ON CONFLICT DO NOTHING"
        ),
        {"into": into, "id": incident_id},
    )
    await _event(
        conn,
        incident_id,
        dup["city_code"],
        principal.actor,
        "merged_into",
        dup["status"],
        "closed",
        {"into": into, "note": note},
    )
    await _event(
        conn,
        into,
        target["city_code"],
        principal.actor,
        "merged",
        target["status"],
        target["status"],
        {"duplicate": incident_id, "note": note, "reporters_added_from": incident_id},
    )


async def rate(
    conn: AsyncConnection,
    incident_id: int,
    principal: Principal,
    good: bool,
    score: int,
    comment: str | None,
) -> None:
    """Record the one rating (好差评) of a resolved case."""
    row = await _lock(conn, incident_id)
    if principal.role == "reporter":
        if not await is_reporter(conn, incident_id, principal.token_id):
            raise NotFound(f"no incident {incident_id} reported with this token", loc=["path", "incident_id"])
    elif not principal.in_scope(row["community_code"]):
        raise Forbidden(
            f"incident {incident_id} is outside this token's area", loc=["header", "authorization"]
        )
    if row["duplicate_of"] is not None:
        raise Conflict(
            f"incident {incident_id} was merged into {row['duplicate_of']}; rate that one",
            loc=["path", "incident_id"],
        )
    if row["status"] not in workflow.DONE_STATUSES:
        raise Conflict(
            f"a case is rated once it is resolved; incident {incident_id} is {row['status']!r}",
            loc=["path", "incident_id"],
            status=row["status"],
        )
    try:
        async with conn.begin_nested():
            await conn.execute(
                text(
                    "INSERT INTO ratings (incident_id, city_code, good, score, comment) "
                    "VALUES (:id, :city, :good, :score, :comment)"
                ),
                {
                    "id": incident_id,
                    "city": row["city_code"],
                    "good": good,
                    "score": score,
                    "comment": comment,
                },
            )
    except IntegrityError:
        raise Conflict(
            f"incident {incident_id} is already rated; one rating per case", loc=["path", "incident_id"]
        ) from None
    await _event(
        conn,
        incident_id,
        row["city_code"],
        principal.actor,
        "rated",
        row["status"],
        row["status"],
        {"good": good, "score": score},
    )


# --------------------------------------------------------------------------- departments


async def departments(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"""
            SELECT d.code, d.name, d.name_en, d.time_limit_hours,
                   count(i.id) FILTER (WHERE i.status IN ('escalated', 'department_accepted'))
                     AS queue,
                   count(i.id) FILTER (WHERE {SQL_OVERDUE}) AS overdue
            FROM departments d LEFT JOIN incidents i ON i.department_code = d.code
            GROUP BY d.code ORDER BY d.code
            """
        )
    )
    return [dict(r) for r in rows.mappings()]


async def department_exists(conn: AsyncConnection, code: str) -> bool:
    row = await conn.execute(text("SELECT 1 FROM departments WHERE code = :c"), {"c": code})
    return row.first() is not None
