"""intake triggers: an intake's live message may be sent after its commit, off the commit path.

Measured on the full demo city under load (``bench/intake.py``, issue 15 goal 4): the
intake's statement-level triggers cost little each (live message, daily summary, heat
cells: 40–60 µs of PostgreSQL CPU apiece, one statement at a time), but every transaction
that calls ``NOTIFY`` takes PostgreSQL's one notification-queue lock at pre-commit and
holds it until its commit record is flushed, so concurrent intakes committed one after
another (sampled backends: two thirds waiting on ``Lock: object``, the rest on ``WALSync``)
and group commit never grouped them.

``wangge_live_incident()`` (migrations ``0009_notify`` and ``0031_city_scope``) now leaves
out the notification of an ``INSERT`` when the transaction set ``wangge.live_deferred`` to
``on`` (``set_config(..., true)``: that transaction only). The intake statement sets it only
on an autocommit connection whose server sends the very message itself once the statement
has committed (:class:`api.store.live_send.LiveSender`, one ``pg_notify`` statement for
every message queued meanwhile). Every other writer (the workflow, merges, imports, the
console's window intake, COPY) is announced by the trigger from its own transaction, as
before. The function's body is otherwise the one installed: the upgrade inserts the guard
into ``pg_get_functiondef``'s text and the downgrade takes it out again.

Fewer index entries per intake: ``ix_incident_events_incident_id`` is dropped (every query
by case is served by ``ix_incident_events_incident_at``, whose first column it is), and
``ix_incidents_department_code`` and ``ix_incidents_likely_duplicate_of`` hold only the rows
that have one (``= value`` implies ``IS NOT NULL``, so every lookup still uses them; a new case
has no department and seldom a likely duplicate).

Revision ID: 0035_intake_triggers
Revises: 0034_people_index
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0035_intake_triggers"
down_revision: str | Sequence[str] | None = "0034_people_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "wangge_live_incident()"
#: the first lines of the body: an INSERT whose message the writing server sends after commit
GUARD = (
    "\n  -- 0035_intake_triggers: the intake's server sends this INSERT's message after its commit\n"
    "  IF TG_OP = 'INSERT' AND current_setting('wangge.live_deferred', true) = 'on' THEN\n"
    "    RETURN NULL;\n"
    "  END IF;"
)
_BEGIN = "\nBEGIN"
#: index -> column of ``incidents`` now indexed only where it is set
PARTIAL = {
    "ix_incidents_department_code": "department_code",
    "ix_incidents_likely_duplicate_of": "likely_duplicate_of",
}


def _definition() -> str:
    body = op.get_bind().exec_driver_sql(f"SELECT pg_get_functiondef('{FUNCTION}'::regprocedure)").scalar()
    assert isinstance(body, str)
    return body


def upgrade() -> None:
    """Let the intake's own server announce its INSERT after the commit; fewer index entries."""
    body = _definition()
    assert GUARD not in body and _BEGIN in body, "wangge_live_incident() is not 0031's"
    op.execute(body.replace(_BEGIN, _BEGIN + GUARD, 1))
    op.drop_index("ix_incident_events_incident_id", table_name="incident_events")
    for name, column in PARTIAL.items():
        op.drop_index(name, table_name="incidents")
        op.create_index(name, "incidents", [column], postgresql_where=text(f"{column} IS NOT NULL"))


def downgrade() -> None:
    """Back to the trigger announcing every INSERT itself, and the full indexes."""
    for name, column in PARTIAL.items():
        op.drop_index(name, table_name="incidents")
        op.create_index(name, "incidents", [column])
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id"])
    op.execute(_definition().replace(GUARD, "", 1))
