"""City scope: the live channel and the OGC views name each row's city (issue 16, item 1).

* The console's live messages (``wangge_live``, migrations ``0009_notify`` and
  ``0026_claims``) carry ``ct``, the row's ``city_code``, beside ``c`` (its
  community): a city-confined viewer is matched on the city itself, so rows of no
  community (city-wide riders, cases outside every grid) reach their city's desks and
  never another city's. Bulk notices are grouped by city and community.
* The published OGC views (schema ``ogc``, migration ``0005``) gain a last column
  ``city_code``, which the ``/ogc`` mount filters on for a city-confined token.

Revision ID: 0031_city_scope
Revises: 0030_partitions
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031_city_scope"
down_revision: str | Sequence[str] | None = "0030_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "wangge_live"
#: rows per message: with ``ct`` a row is ~300 bytes and PostgreSQL refuses a payload of 8000
#: bytes or more ("payload string too long" failed a publish that moved 30 cases); 0009 sent 30
PER_NOTIFY = 15
PER_NOTIFY_BEFORE = 30
#: a message this long is not sent; the bulk notices (re-read your view) go instead
MAX_PAYLOAD = 7900
BULK = 1000

_INCIDENT_ROW = (
    "json_build_object('id', n.id, 'c', n.community_code, "
    "'p', array_remove(ARRAY[n.assignee_id, g.worker_id], NULL), "
    "'d', array_remove(ARRAY[n.department_code], NULL), "
    "'r', array_remove(ARRAY[n.reporter_token_id] || ARRAY(SELECT x.reporter_token_id "
    "FROM incident_reporters x WHERE x.incident_id = n.id), NULL), "
    "'status', n.status, 'item', n.item_code, 'grid', n.grid_id, 'channel', n.channel, "
    "'due', n.due_at, 'dup', n.duplicate_of, "
    "'x', round(ST_X(n.location)::numeric, 6), 'y', round(ST_Y(n.location)::numeric, 6){more})"
)
# kind -> (table, the row object of one changed row `n` (``{more}``: further pairs), joins)
ROWS = {
    "incident": ("incidents", _INCIDENT_ROW, "LEFT JOIN grids g ON g.id = n.grid_id"),
    "task": (
        "tasks",
        "json_build_object('id', n.id, 'c', n.community_code, "
        "'p', array_remove(ARRAY[n.offered_to, n.assignee_id], NULL), 'd', ARRAY[]::text[], "
        "'r', ARRAY[]::bigint[], 'status', n.status, 'grid', n.grid_id, 'incident', n.incident_id, "
        "'x', round(ST_X(n.location)::numeric, 6), 'y', round(ST_Y(n.location)::numeric, 6){more})",
        "",
    ),
    "person": (
        "people",
        "json_build_object('id', n.id, 'c', n.community_code, 'p', ARRAY[n.id], "
        "'d', array_remove(ARRAY[n.department_code], NULL), 'r', ARRAY[]::bigint[], "
        "'role', n.role, 'on_duty', n.on_duty, 'at', n.position_at, "
        "'x', round(ST_X(n.position)::numeric, 6), 'y', round(ST_Y(n.position)::numeric, 6){more})",
        "",
    ),
}
_CITY = ", 'ct', n.city_code"
_CLAIM = ", 'claimed', claimed, 'claim_until', until"


def _distinct(row: str, city: bool) -> str:
    """Name each reporter token once in a row (0009's repeated it per report of a merged case)."""
    return (
        row.replace("ARRAY(SELECT x.reporter_token_id", "ARRAY(SELECT DISTINCT x.reporter_token_id")
        if city
        else row
    )


def _function(kind: str, row: str, extra: str, city: bool) -> str:
    bulk_city = "'ct', city_code, " if city else ""
    group = "city_code, community_code" if city else "community_code"
    per = PER_NOTIFY if city else PER_NOTIFY_BEFORE
    bulk = f"""
      SELECT json_build_object('k', '{kind}', 'op', TG_OP, 'bulk', true, {bulk_city}'c', community_code,
                               'n', count(*))::text
      FROM changed GROUP BY {group}"""
    # the size guard is this migration's (0009 had none; its downgrade restores 0009 exactly)
    send = (
        f"""IF octet_length(msg) <= {MAX_PAYLOAD} THEN
      PERFORM pg_notify('{CHANNEL}', msg);
    ELSIF NOT sent_bulk THEN
      sent_bulk := true;
      FOR note IN {bulk}
      LOOP
        PERFORM pg_notify('{CHANNEL}', note);
      END LOOP;
    END IF;"""
        if city
        else f"PERFORM pg_notify('{CHANNEL}', msg);"
    )
    return f"""
CREATE OR REPLACE FUNCTION wangge_live_{kind}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  total bigint;
  msg text;
  note text;
  sent_bulk boolean := false;
BEGIN
  SELECT count(*) INTO total FROM changed;
  IF total = 0 THEN
    RETURN NULL;
  END IF;
  IF total > {BULK} THEN
    FOR msg IN {bulk}
    LOOP
      PERFORM pg_notify('{CHANNEL}', msg);
    END LOOP;
    RETURN NULL;
  END IF;
  FOR msg IN
    SELECT json_build_object('k', '{kind}', 'op', TG_OP, 'rows', json_agg(r))::text
    FROM (SELECT (row_number() OVER () - 1) / {per} AS chunk,
                 {_distinct(row, city).format(more=_CITY if city else "")} AS r
          FROM changed n {extra}) rows_
    GROUP BY chunk
  LOOP
    {send}
  END LOOP;
  RETURN NULL;
END
$fn$;
"""


def _claim_function(city: bool) -> str:
    row = _distinct(_INCIDENT_ROW, city).format(more=(_CITY if city else "") + _CLAIM)
    bulk_city = "'ct', n.city_code, " if city else ""
    too_long = (
        f"""IF octet_length(msg) > {MAX_PAYLOAD} THEN
    SELECT json_build_object('k', 'incident', 'op', 'UPDATE', 'bulk', true, {bulk_city}'c', n.community_code,
                             'n', 1)::text INTO msg FROM incidents n WHERE n.id = iid;
  END IF;
  """
        if city
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION wangge_live_claim() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  iid bigint;
  claimed boolean;
  until timestamptz;
  msg text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    iid := OLD.incident_id; claimed := false; until := NULL;
  ELSE
    iid := NEW.incident_id; claimed := NEW.expires_at > now(); until := NEW.expires_at;
  END IF;
  SELECT json_build_object('k', 'incident', 'op', 'UPDATE', 'rows', json_build_array({row}))::text
    INTO msg FROM incidents n LEFT JOIN grids g ON g.id = n.grid_id WHERE n.id = iid;
  {too_long}IF msg IS NOT NULL THEN
    PERFORM pg_notify('{CHANNEL}', msg);
  END IF;
  RETURN NULL;
END
$fn$;
"""


_OPEN = "i.status IN ('submitted', 'assigned', 'accepted', 'in_progress', 'escalated', 'department_accepted')"
_DUE = (
    "(CASE WHEN i.status IN ('escalated', 'department_accepted') "
    "AND i.department_due_at IS NOT NULL THEN i.department_due_at ELSE i.due_at END)"
)
# the views of migration 0005_maps; ``{city}`` is the last column (or nothing)
VIEWS = {
    "grids": """SELECT g.id, g.code, g.name, g.community_code, c.district_code, g.plan_id,
                  g.households, g.buildings, g.worker_id, g.geom{city}
           FROM public.grids g JOIN public.communities c ON c.code = g.community_code
           WHERE g.active""",
    "communities": """SELECT c.code AS id, c.code, c.name, c.name_en, c.district_code, c.street_code,
                  (SELECT count(*) FROM public.grids g
                   WHERE g.community_code = c.code AND g.active) AS grids,
                  c.geom{city}
           FROM public.communities c""",
    "buildings": """SELECT b.id, b.code, b.name, b.community_code, b.grid_id, g.code AS grid_code,
                  b.households, b.floors, b.geom{city}
           FROM public.buildings b LEFT JOIN public.grids g ON g.id = b.grid_id""",
    "incidents": f"""SELECT i.id, i.item_code, s.category, i.channel, i.status,
                   ({_OPEN}) AS open, ({_OPEN} AND {_DUE} < now()) AS overdue,
                   i.grid_id, i.community_code, i.department_code,
                   i.created_at, i.due_at, i.closed_at, i.location AS geom{{city}}
            FROM public.incidents i LEFT JOIN public.service_items s ON s.code = i.item_code
            WHERE i.location IS NOT NULL AND i.duplicate_of IS NULL""",
}
VIEW_CITY = {"grids": "g", "communities": "c", "buildings": "b", "incidents": "i"}


def upgrade() -> None:
    """Name the city in every live message and in every published view."""
    for kind, (_table, row, extra) in ROWS.items():
        op.execute(_function(kind, row, extra, city=True))
    op.execute(_claim_function(city=True))
    for name, body in VIEWS.items():
        city = f", {VIEW_CITY[name]}.city_code"
        op.execute(f"CREATE OR REPLACE VIEW ogc.{name} AS {body.format(city=city)}")


def downgrade() -> None:
    """Back to the messages and views of migrations 0009, 0026 and 0005."""
    for name, body in VIEWS.items():
        comment = op.get_bind().exec_driver_sql(f"SELECT obj_description('ogc.{name}'::regclass)").scalar()
        op.execute(f"DROP VIEW ogc.{name}")
        op.execute(f"CREATE VIEW ogc.{name} AS {body.format(city='')}")
        if comment:
            op.execute(f"COMMENT ON VIEW ogc.{name} IS '{comment}'")
    op.execute(_claim_function(city=False))
    for kind, (_table, row, extra) in ROWS.items():
        op.execute(_function(kind, row, extra, city=False))
