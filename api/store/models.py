"""Table declarations (SQLAlchemy 2 + GeoAlchemy2).

These classes are the single source of the schema; Alembic migrations in
``migrations/versions`` create them on PostGIS. Every table that grows with a
city carries ``city_code`` (the 6-digit administrative code of the city, e.g.
``340500`` for Ma'anshan). The tables that grow with cities and time are
partitioned by city and, for history, by month (``api/store/partitions.py``,
migration ``0030_partitions``): their primary and unique keys include the
partition keys, and foreign keys to ``incidents`` are ``(incident_id, city_code)``.
All geometries are WGS84 (EPSG:4326); distances and areas are measured in a
metric projection at query time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SRID = 4326

#: Roles a person can hold in the field.
PERSON_ROLES = (
    "window_worker",
    "grid_worker",
    "volunteer",
    "rider",
    "police",
    "department_staff",
)
#: Roles an API token can carry.
TOKEN_ROLES = ("admin", "planner", "dispatcher", "worker", "department", "reporter")
PLAN_STATUSES = ("draft", "active", "retired")
INCIDENT_STATUSES = (
    "submitted",
    "assigned",
    "accepted",
    "in_progress",
    "resolved",
    "escalated",
    "department_accepted",
    "verified",
    "closed",
)
CHANNELS = ("window", "mini_program", "phone", "patrol", "open311")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Base(DeclarativeBase):
    """The declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _now_key() -> Any:
    """Declare a ``now()``-defaulted time that is part of the primary key (the month partition key)."""
    return mapped_column(DateTime(timezone=True), server_default=func.now(), primary_key=True)


# --------------------------------------------------------------------------- areas


class AdminArea(Base):
    """City, district/county and street office (街道) boundaries."""

    __tablename__ = "admin_areas"
    __table_args__ = (CheckConstraint(f"level IN {_in(('city', 'district', 'street'))}", name="level"),)

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("admin_areas.code"))
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))


class Community(Base):
    """A community (社区) with its committee; code = 6 district + 3 street + 3 community."""

    __tablename__ = "communities"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str] = mapped_column(ForeignKey("admin_areas.code"), index=True)
    street_code: Mapped[str | None] = mapped_column(ForeignKey("admin_areas.code"), index=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))


class Plan(Base):
    """A grid plan of one community: draft, active (at most one) or retired."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(PLAN_STATUSES)}", name="status"),
        Index(
            "uq_plans_one_active",
            "community_code",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The token that drew the draft (its owner; ``api_tokens.id``, kept like ``audit_log.token_id``
    #: without a foreign key); NULL for drafts made from the command line.
    owner_token_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    #: Raised by every change (edit, undo, publish): a change sent for an older version is refused.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    updated_at: Mapped[dt.datetime] = _now()


class Grid(Base):
    """A grid (网格) of a plan; code = 12-digit community code + 3-digit grid number."""

    __tablename__ = "grids"
    __table_args__ = (
        UniqueConstraint("plan_id", "code", name="uq_grids_plan_code"),
        # Locating a point searches active grids only: a partial GiST index keeps it small.
        Index(
            "ix_grids_active_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(15), index=True)
    name: Mapped[str] = mapped_column(Text)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    #: Denormalised from the plan's status so that locating a point needs no join.
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    households: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    buildings: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))


#: Where a building's household count comes from (``buildings.households_source``).
HOUSEHOLD_SOURCES = ("estimated", "registry", "attribute")


class Building(Base):
    """A building with its footprint; ``grid_id`` is its grid in the active plan."""

    __tablename__ = "buildings"
    __table_args__ = (
        CheckConstraint(f"households_source IN {_in(HOUSEHOLD_SOURCES)}", name="households_source"),
        UniqueConstraint("city_code", "code", name="uq_buildings_city_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: Unique per city (``uq_buildings_city_code``, migration 0029_cities): two cities may both have a B0001.
    code: Mapped[str] = mapped_column(String(32))
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    households: Mapped[int] = mapped_column(Integer)
    floors: Mapped[int] = mapped_column(SmallInteger)
    households_estimated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: Where ``households`` comes from: ``estimated`` (footprint × floors), ``registry`` (the resident
    #: registry) or ``attribute`` (the imported file, the demo) (migration 0022_households_source).
    households_source: Mapped[str] = mapped_column(String(16), server_default=text("'attribute'"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))
    #: A point inside the footprint (ST_PointOnSurface), used for assignment to grids.
    point: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    #: What the building is (``walkup``, ``highrise``, ``villa``, ``school``, ``shop`` ...); NULL = unknown
    #: (migration 0012_building_kind).
    kind: Mapped[str | None] = mapped_column(String(32))


class PlanAssignment(Base):
    """Which grid of a plan each building falls in (all plans, drafts included)."""

    __tablename__ = "plan_assignments"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)


class BuildingUnit(Base):
    """A unit (单元, an entrance/staircase) of a building with its households (migration 0028_building_units).

    Stored by ``wangge import units`` from the resident registry; a redraw with ``oversize =
    "split_units"`` plans each unit of a building above the maximum like a building.
    """

    __tablename__ = "building_units"
    __table_args__ = (
        CheckConstraint("households >= 0", name="households"),
        UniqueConstraint("building_id", "label", name="uq_building_units_building_label"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(Text)
    #: Order of the unit along the building (the file's order, natural sort of the labels).
    seq: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    entrance: Mapped[Any | None] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    source: Mapped[str] = mapped_column(String(16), server_default=text("'registry'"))


class PlanUnitAssignment(Base):
    """Which grid of a plan holds each unit of a building split by its units (0028_building_units)."""

    __tablename__ = "plan_unit_assignments"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("building_units.id", ondelete="CASCADE"), primary_key=True
    )
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)


class Resident(Base):
    """A resident household of special concern (must-visit: elderly alone, disabled, hardship)."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), index=True)
    room: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    id_number: Mapped[str | None] = mapped_column(String(32))
    #: e.g. ``elderly_alone``, ``disabled``, ``low_income`` (低保), ``bedridden``.
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    must_visit: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    visit_every_days: Mapped[int] = mapped_column(Integer, server_default=text("30"))


# --------------------------------------------------------------------------- people & party


class Department(Base):
    """A city department that answers when the community blows the whistle."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    time_limit_hours: Mapped[int] = mapped_column(Integer)


class Person(Base):
    """Anyone who works in the field or at the window."""

    __tablename__ = "people"
    __table_args__ = (CheckConstraint(f"role IN {_in(PERSON_ROLES)}", name="role"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    #: not indexed: six values, and every position report would write the index (0036_people_write_path)
    role: Mapped[str] = mapped_column(String(24))
    community_code: Mapped[str | None] = mapped_column(ForeignKey("communities.code"), index=True)
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    party_member: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    on_duty: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    capacity: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    shift_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: indexed on the spheroid only (``ix_people_position_geog`` below; 0036_people_write_path)
    position: Mapped[Any | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=True
    )
    position_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The transaction that last wrote the row (trigger of migration 0034_people_index; read
    #: by the in-process people index, :mod:`api.services.dispatch.people_index`).
    change_xid: Mapped[int | None] = mapped_column(BigInteger, index=True, info={"written_by": "trigger"})
    #: The transaction that last changed what the live feed shows of the row besides its
    #: position (trigger of migration 0037_people_moves_unannounced; a move alone is not announced).
    live_xid: Mapped[int | None] = mapped_column(BigInteger, info={"written_by": "trigger"})
    #: The transaction that last changed what the people index holds of the row besides its
    #: position: a catch-up reads the rest of a row written since only when this is new to it
    #: (triggers of migration 0038_people_fields_stamp).
    fields_xid: Mapped[int | None] = mapped_column(BigInteger, info={"written_by": "trigger"})


class PositionPing(Base):
    """Position history of a person (kept for a configurable period)."""

    __tablename__ = "position_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))

    __table_args__ = (
        Index("ix_position_history_person_at", "person_id", "at"),
        {"postgresql_partition_by": "LIST (city_code)"},
    )


class PartyOrg(Base):
    """One tier of the party organisation: committee (community), branch (grid), group (buildings)."""

    __tablename__ = "party_orgs"
    __table_args__ = (
        CheckConstraint(f"tier IN {_in(('committee', 'branch', 'group'))}", name="tier"),
        UniqueConstraint("city_code", "code", name="uq_party_orgs_city_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    tier: Mapped[str] = mapped_column(String(16))
    #: Unique per city (``uq_party_orgs_city_code``, migration 0029_cities).
    code: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("party_orgs.id"), index=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    #: For a branch: the grid it mirrors (active plan).
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    secretary_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


class PartyGroupBuilding(Base):
    """The buildings a building party group (楼栋党小组) covers."""

    __tablename__ = "party_group_buildings"

    group_id: Mapped[int] = mapped_column(ForeignKey("party_orgs.id", ondelete="CASCADE"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), primary_key=True)


class PartyMember(Base):
    """A party member attached to a grid branch or building group."""

    __tablename__ = "party_members"

    org_id: Mapped[int] = mapped_column(ForeignKey("party_orgs.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    position: Mapped[str] = mapped_column(Text, server_default=text("'member'"))


# --------------------------------------------------------------------------- catalogue & cases


class ServiceItem(Base):
    """An item of the service catalogue (清单之外无事项)."""

    __tablename__ = "service_items"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    time_limit_hours: Mapped[int] = mapped_column(Integer)
    on_the_spot: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    high_frequency: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    description: Mapped[str | None] = mapped_column(Text)
    # --- added by migration 0019 (publication)
    #: Cases of this item are published on Open311 (rounded place, masked text); private by default.
    public: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class Incident(Base):
    """A resident's matter (事项), from intake to close."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(INCIDENT_STATUSES)}", name="status"),
        CheckConstraint(f"channel IN {_in(CHANNELS)}", name="channel"),
        Index("ix_incidents_created", "city_code", "created_at"),
        UniqueConstraint("idempotency_key", "city_code", name="uq_incidents_idempotency_key"),
        ForeignKeyConstraint(
            ["duplicate_of", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_incidents_duplicate_of_incidents",
        ),
        ForeignKeyConstraint(
            ["likely_duplicate_of", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_incidents_likely_duplicate_of_incidents",
        ),
        {"postgresql_partition_by": "LIST (city_code)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True, index=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("service_items.code"), index=True)
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    reporter_token_id: Mapped[int | None] = mapped_column(BigInteger)
    location: Mapped[Any | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=True), nullable=True
    )
    input_crs: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(Text)
    located: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    community_code: Mapped[str | None] = mapped_column(ForeignKey("communities.code"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    status: Mapped[str] = mapped_column(String(24), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    duplicate_of: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _now()
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    department_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    on_the_spot: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # --- added by migration 0002 (incidents)
    #: SHA-256 of the intake body sent with an Idempotency-Key (a retry must match it).
    request_hash: Mapped[str | None] = mapped_column(String(64))
    #: Flagged at intake: same item within radius and time of this open case (until merged).
    likely_duplicate_of: Mapped[int | None] = mapped_column(BigInteger)
    # --- added by migration 0019 (publication)
    #: Staff decision to publish (true) or hide (false) this case on Open311; NULL: the item's rule.
    public: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class IncidentEvent(Base):
    """The event log of an incident: who did what, when and where."""

    __tablename__ = "incident_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_incident_events_incident_id_incidents",
        ),
        {"postgresql_partition_by": "LIST (city_code)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(BigInteger)  # served by ix_incident_events_incident_at
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    at: Mapped[dt.datetime] = _now_key()
    actor: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    geom: Mapped[Any | None] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=True)


class Rating(Base):
    """The resident's rating (好差评) of a resolved incident: one per case."""

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint("score BETWEEN 1 AND 5", name="score"),
        ForeignKeyConstraint(
            ["incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_ratings_incident_id_incidents",
        ),
    )

    incident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    city_code: Mapped[str] = mapped_column(String(6))
    good: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = _now()


class Visit(Base):
    """A grid worker's household visit (入户走访)."""

    __tablename__ = "visits"
    __table_args__ = {"postgresql_partition_by": "LIST (city_code)"}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True, index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True, index=True)
    checklist: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    notes: Mapped[str | None] = mapped_column(Text)
    position: Mapped[Any | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=True
    )


class PointsEntry(Base):
    """Append-only points ledger (服务换积分、积分兑服务)."""

    __tablename__ = "points_ledger"
    __table_args__ = {"postgresql_partition_by": "LIST (city_code)"}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    at: Mapped[dt.datetime] = _now_key()
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(Text)


class Street(Base):
    """A street segment of the network (noded; ``source``/``target`` for pgRouting)."""

    __tablename__ = "streets"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[int | None] = mapped_column(BigInteger, index=True)
    target: Mapped[int | None] = mapped_column(BigInteger, index=True)
    length_m: Mapped[float] = mapped_column(Float)
    geom: Mapped[Any] = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True))


class ApiToken(Base):
    """A bearer token; only its SHA-256 hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(f"role IN {_in(TOKEN_ROLES)}", name="role"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    community_code: Mapped[str | None] = mapped_column(String(12))
    district_code: Mapped[str | None] = mapped_column(String(12))
    department_code: Mapped[str | None] = mapped_column(String(32))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    #: The city the token is confined to (6-digit code); NULL: a national/provincial token
    #: that sees every city (migration 0029_cities).
    city_code: Mapped[str | None] = mapped_column(String(6), index=True)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: may be sent as ``?access_token=`` where a route allows it (QGIS; migration 0010_trust)
    query_allowed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class ConsoleSession(Base):
    """A signed-in browser session of the console (migration 0008_sessions).

    The cookie carries a random secret; only its SHA-256 hash is stored (``id``).
    A session acts with its token's role and scope, and dies with the token
    (revoked or expired) or when it ends (logout, expiry).
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(8), server_default=text("'zh-CN'"))
    created_at: Mapped[dt.datetime] = _now()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class FieldAction(Base):
    """An action a field worker's device synced, done exactly once (migration 0025_field).

    ``key`` is ``<token id>:<the device's idempotency key>``; ``result`` is the first
    answer, returned again when the device sends the same key.
    """

    __tablename__ = "field_actions"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    done_at: Mapped[dt.datetime] = _now()
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


# --------------------------------------------------------------------------- dispatch (migration 0003)

TASK_STATUSES = ("open", "offered", "accepted", "completed", "cancelled", "expired")
OFFER_OUTCOMES = ("pending", "accepted", "declined", "expired", "withdrawn")

#: Straight-line nearest queries order by spheroid distance through this expression index.
Index(
    "ix_people_position_geog",
    func.geography(Person.__table__.c.position),
    postgresql_using="gist",
)


class Task(Base):
    """A micro-grid task (微网格任务) offered to the nearest available volunteer or rider."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(TASK_STATUSES)}", name="status"),
        CheckConstraint(f"role IN {_in(PERSON_ROLES)}", name="role"),
        CheckConstraint("points >= 0", name="points"),
        CheckConstraint(
            "status <> 'offered' OR (offered_to IS NOT NULL AND offer_expires_at IS NOT NULL)",
            name="offered_has_person",
        ),
        CheckConstraint(
            "status NOT IN ('accepted', 'completed') OR assignee_id IS NOT NULL",
            name="accepted_has_assignee",
        ),
        Index("ix_tasks_offered_to_open", "offered_to", postgresql_where=text("status = 'offered'")),
        Index("ix_tasks_assignee_open", "assignee_id", postgresql_where=text("status = 'accepted'")),
        Index("ix_tasks_offer_expiry", "offer_expires_at", postgresql_where=text("status = 'offered'")),
        Index("ix_tasks_status_created", "status", "created_at"),
        ForeignKeyConstraint(
            ["incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_tasks_incident_id_incidents",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    community_code: Mapped[str | None] = mapped_column(ForeignKey("communities.code"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    input_crs: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(24))
    skill: Mapped[str | None] = mapped_column(Text)
    points: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    deadline: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    incident_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(16))
    offered_to: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    offer_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completion_position: Mapped[Any | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=True
    )
    completion_distance_m: Mapped[float | None] = mapped_column(Float)


class TaskOffer(Base):
    """One offer of a task to one person, and how it ended (a person is offered a task once)."""

    __tablename__ = "task_offers"
    __table_args__ = (
        CheckConstraint(f"outcome IN {_in(OFFER_OUTCOMES)}", name="outcome"),
        UniqueConstraint("task_id", "person_id", name="uq_task_offers_task_person"),
        Index(
            "uq_task_offers_one_pending",
            "task_id",
            unique=True,
            postgresql_where=text("outcome = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    offered_at: Mapped[dt.datetime] = _now()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    distance_m: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    responded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)


class Reward(Base):
    """A service in the rewards catalogue that points buy (积分兑服务)."""

    __tablename__ = "rewards"
    __table_args__ = (CheckConstraint("points > 0", name="points"),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class Redemption(Base):
    """Points spent on a reward; the matching ledger entry has ``ref = 'redemption:<id>'``."""

    __tablename__ = "redemptions"
    __table_args__ = (CheckConstraint("points > 0", name="points"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    reward_code: Mapped[str] = mapped_column(ForeignKey("rewards.code"))
    quantity: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    points: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_by: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = _now()


class IncidentReporter(Base):
    """Every reporter an incident must keep informed (its own and those of merged duplicates)."""

    __tablename__ = "incident_reporters"
    __table_args__ = (
        ForeignKeyConstraint(
            ["incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_incident_reporters_incident_id_incidents",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["source_incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_incident_reporters_source_incident_id_incidents",
            ondelete="CASCADE",
        ),
    )

    incident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: The incident the reporter originally reported (the incident itself, or a merged duplicate).
    source_incident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: The cases' city (a merge joins cases of one city only).
    city_code: Mapped[str] = mapped_column(String(6))
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    reporter_token_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    added_at: Mapped[dt.datetime] = _now()


class IncidentDaily(Base):
    """KPI counts per city, Beijing day, community, grid, item, department (migration 0029), kept by triggers.

    Statement-level triggers on ``incidents`` and ``ratings`` keep it equal to a recount of
    the cases (merged duplicates excluded) in the transaction that changes them; ``''`` is
    no community and ``0`` no grid. Read by :mod:`api.store.sql.metrics` and the dashboard.
    """

    __tablename__ = "incident_daily"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    community_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: the department the case is with (``''``: none)
    department_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer)
    on_the_spot: Mapped[int] = mapped_column(Integer)
    ratings: Mapped[int] = mapped_column(Integer)
    good: Mapped[int] = mapped_column(Integer)
    score_sum: Mapped[int] = mapped_column(BigInteger)
    resolved: Mapped[int] = mapped_column(Integer)
    within_limit: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    #: microseconds from intake to close, summed over the closed cases (exact)
    close_us: Mapped[int] = mapped_column(BigInteger)
    open: Mapped[int] = mapped_column(Integer)
    #: escalated to the department (``escalated_at`` set), of those resolved, resolved by its limit, open
    escalated: Mapped[int] = mapped_column(Integer)
    esc_resolved: Mapped[int] = mapped_column(Integer)
    esc_on_time: Mapped[int] = mapped_column(Integer)
    esc_open: Mapped[int] = mapped_column(Integer)


class IncidentCell(Base):
    """Located cases per city, Beijing day, community, item and heat cell (migration 0033), kept by triggers.

    ``iy``/``ix`` index cells of ``api.store.sql.maps.HEAT_CELL`` degrees (``floor(lat / cell)``,
    ``floor(lon / cell)``); merged duplicates are not counted; ``''`` is no community. The
    statement-level triggers on ``incidents`` keep it equal to a recount in the transaction
    that changes the cases. Read by the heatmaps of the coverage page and the dashboard.
    """

    __tablename__ = "incident_cells"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    community_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    iy: Mapped[int] = mapped_column(Integer, primary_key=True)
    ix: Mapped[int] = mapped_column(Integer, primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer)


# Indexes of migration 0002 on the incident tables declared above.
# The cases a report can be a likely duplicate of, by place (migration 0039_open_cases_by_place)
Index(
    "ix_incidents_open_location",
    Incident.__table__.c.location,
    postgresql_using="gist",
    postgresql_where=text("status NOT IN ('resolved', 'verified', 'closed') AND duplicate_of IS NULL"),
)
Index(
    "ix_incidents_duplicate_of",
    Incident.__table__.c.duplicate_of,
    postgresql_where=text("duplicate_of IS NOT NULL"),
)
# only the rows that have one: a new case (no department, seldom a likely duplicate) writes neither
# (migration 0035_intake_triggers)
Index(
    "ix_incidents_department_code",
    Incident.__table__.c.department_code,
    postgresql_where=text("department_code IS NOT NULL"),
)
Index(
    "ix_incidents_likely_duplicate_of",
    Incident.__table__.c.likely_duplicate_of,
    postgresql_where=text("likely_duplicate_of IS NOT NULL"),
)
Index("ix_incident_events_incident_at", IncidentEvent.__table__.c.incident_id, IncidentEvent.__table__.c.at)
# migration 0029: the latest case and the partial days at a KPI window's edges, by creation time alone
Index("ix_incidents_created_at", Incident.__table__.c.created_at)


# --------------------------------------------------------------------------- planning (migration 0004)

IMPORT_KINDS = ("communities", "buildings", "grids", "streets", "households", "units")
IMPORT_STATUSES = ("running", "done", "failed")


class ImportRun(Base):
    """One import of a file: progress is committed with every batch, so a killed run resumes.

    A rerun of the same file (same kind, community and SHA-256) continues after
    ``rows_done``; a finished one is not imported twice unless forced.
    """

    __tablename__ = "import_runs"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(IMPORT_KINDS)}", name="kind"),
        CheckConstraint(f"status IN {_in(IMPORT_STATUSES)}", name="status"),
        Index("ix_import_runs_key", "kind", "community_code", "checksum"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    community_code: Mapped[str | None] = mapped_column(String(12))
    file_name: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'running'"))
    rows_total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: What the run found: invalid geometries, repairs made, households estimated, plan created.
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PlanEdit(Base):
    """The edit history of a draft plan (move, merge, split), with the figures after each edit."""

    __tablename__ = "plan_edits"
    __table_args__ = (UniqueConstraint("plan_id", "seq", name="uq_plan_edits_plan_seq"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    actor: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = _now()
    #: The plan's version this edit produced (migration 0008).
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    #: The plan's figures before the edit (restored by an undo).
    figures_before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    undone_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(Text)


class PlanEditGrid(Base):
    """A grid of a draft as it was before one edit, with its buildings: what an undo restores."""

    __tablename__ = "plan_edit_grids"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    edit_id: Mapped[int] = mapped_column(ForeignKey("plan_edits.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(15))
    name: Mapped[str] = mapped_column(Text)
    households: Mapped[int] = mapped_column(Integer)
    buildings: Mapped[int] = mapped_column(Integer)
    building_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    #: Units of split buildings the grid held (``building_units.id``; migration 0028_building_units).
    unit_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))


PLAN_JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")


class PlanJob(Base):
    """A redraw run in the background for the planner console (migration 0016): progress, cancel, outcome."""

    __tablename__ = "plan_jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(PLAN_JOB_STATUSES)}", name="status"),
        UniqueConstraint("owner_token_id", "idempotency_key", name="uq_plan_jobs_owner_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_token_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    communities: Mapped[list[str]] = mapped_column(ARRAY(String(12)))
    street_code: Mapped[str | None] = mapped_column(String(12))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'queued'"))
    stage: Mapped[str | None] = mapped_column(String(32))
    done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: every stage passed, in order (``[{"stage", "done", "total"}]``)
    stages: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: one entry per community: ``{"community", "status", "plan_id", "error"}``
    outcomes: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------- trust (audit)


class AuditEntry(Base):
    """Append-only audit log: who, when, from where, what, before/after.

    UPDATE, DELETE and TRUNCATE are refused by a trigger (migration 0006).
    Personal fields in ``before``/``after`` are stored masked; ``changed`` lists
    the keys whose values changed (compared before masking).
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity", "entity_id"),
        {"postgresql_partition_by": "LIST (city_code)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    #: The city the entry belongs to (``000000``: none, e.g. system and CLI actors).
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True, server_default=text("'000000'"))
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()"), primary_key=True, index=True
    )
    actor: Mapped[str] = mapped_column(Text)
    token_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str | None] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    changed: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    status: Mapped[int | None] = mapped_column(SmallInteger)


# --------------------------------------------------------------------------- maps (migration 0005)

#: Visit gaps on the maps: a building's last visit by an index-only backward scan.
Index("ix_visits_building_at", Visit.building_id, Visit.at)


# --------------------------------------------------------------------------- intake (migration 0023_intake)

#: Photo types a resident report may carry.
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


class ReportTicket(Base):
    """The key a resident follows a public report with; only the secret's SHA-256 is stored."""

    __tablename__ = "report_tickets"

    __table_args__ = (
        ForeignKeyConstraint(
            ["incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_report_tickets_incident_id_incidents",
            ondelete="CASCADE",
        ),
    )

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    city_code: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[dt.datetime] = _now()


class IncidentPhoto(Base):
    """The optional photo of a report (size-limited, kept in the store of record)."""

    __tablename__ = "incident_photos"
    __table_args__ = (
        CheckConstraint("size > 0 AND size <= 1000000", name="size"),
        CheckConstraint(f"content_type IN {_in(PHOTO_TYPES)}", name="content_type"),
        ForeignKeyConstraint(
            ["incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_incident_photos_incident_id_incidents",
            ondelete="CASCADE",
        ),
    )

    incident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    city_code: Mapped[str] = mapped_column(String(6))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = _now()


# --------------------------------------------------------------------------- desk claims (migration 0013)


class IncidentClaim(Base):
    """A dispatcher's claim on a case (调度台认领): who handles it, until when.

    One row per case at most; an expired row counts as no claim and is replaced by
    the next claim. The holder is the token (two sessions of one token are one holder).
    """

    __tablename__ = "incident_claims"
    __table_args__ = (
        ForeignKeyConstraint(
            ["incident_id", "city_code"],
            ["incidents.id", "incidents.city_code"],
            name="fk_incident_claims_incident_id_incidents",
            ondelete="CASCADE",
        ),
    )

    incident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    city_code: Mapped[str] = mapped_column(String(6))
    token_id: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[dt.datetime] = _now()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
