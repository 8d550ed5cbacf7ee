"""dispatch: tasks, task offers, rewards catalogue, redemptions; append-only ledger

Revision ID: 0003
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "('window_worker', 'grid_worker', 'volunteer', 'rider', 'police', 'department_staff')"
STATUSES = "('open', 'offered', 'accepted', 'completed', 'cancelled', 'expired')"
OUTCOMES = "('pending', 'accepted', 'declined', 'expired', 'withdrawn')"

#: The starting rewards catalogue (服务换积分、积分兑服务): services that points buy.
REWARDS = [
    ("haircut", "社区爱心理发一次", "Community haircut", 50, "社区志愿服务站"),
    ("appliance_repair", "小家电维修一次", "Small appliance repair", 80, "社区便民服务点"),
    ("canteen_meal", "社区食堂午餐券", "Community canteen lunch voucher", 30, "社区长者食堂"),
    ("health_check", "基础健康体检一次", "Basic health check-up", 200, "社区卫生服务中心"),
    ("housekeeping_2h", "家政保洁服务2小时", "Housekeeping, 2 hours", 150, "合作家政公司"),
    ("bus_card_topup", "公交卡充值20元", "Bus card top-up, 20 yuan", 100, "市公交公司"),
    ("library_pass", "图书馆借阅季卡", "Library pass, one quarter", 60, "市图书馆"),
    ("e_bike_safety_check", "电动车安全检测一次", "E-bike safety check", 40, "社区便民服务点"),
    ("tailoring", "缝补服务一次", "Mending and tailoring", 20, "社区志愿服务站"),
    ("legal_consult", "法律咨询一次", "Legal consultation", 120, "社区法律顾问"),
]


def upgrade() -> None:
    # Straight-line nearest: KNN on the spheroid through a geography expression index.
    op.execute(
        "CREATE INDEX ix_people_position_geog ON people USING gist (geography(position))"
    )
    op.create_geospatial_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "location",
            Geometry(geometry_type="POINT", srid=4326, spatial_index=False,
                     from_text="ST_GeomFromEWKT", name="geometry", nullable=False),
            nullable=False,
        ),
        sa.Column("input_crs", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("skill", sa.Text(), nullable=True),
        sa.Column("points", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("offered_to", sa.BigInteger(), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "completion_position",
            Geometry(geometry_type="POINT", srid=4326, spatial_index=False,
                     from_text="ST_GeomFromEWKT", name="geometry"),
            nullable=True,
        ),
        sa.Column("completion_distance_m", sa.Float(), nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_tasks_status")),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_tasks_role")),
        sa.CheckConstraint("points >= 0", name=op.f("ck_tasks_points")),
        sa.CheckConstraint(
            "status <> 'offered' OR (offered_to IS NOT NULL AND offer_expires_at IS NOT NULL)",
            name=op.f("ck_tasks_offered_has_person"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('accepted', 'completed') OR assignee_id IS NOT NULL",
            name=op.f("ck_tasks_accepted_has_assignee"),
        ),
        sa.ForeignKeyConstraint(["community_code"], ["communities.code"],
                                name=op.f("fk_tasks_community_code_communities")),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_tasks_grid_id_grids")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_tasks_incident_id_incidents")),
        sa.ForeignKeyConstraint(["offered_to"], ["people.id"], name=op.f("fk_tasks_offered_to_people")),
        sa.ForeignKeyConstraint(["assignee_id"], ["people.id"],
                                name=op.f("fk_tasks_assignee_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_tasks_idempotency_key")),
    )
    op.create_geospatial_index("idx_tasks_location", "tasks", ["location"], unique=False,
                               postgresql_using="gist", postgresql_ops={})
    op.create_index(op.f("ix_tasks_city_code"), "tasks", ["city_code"], unique=False)
    op.create_index(op.f("ix_tasks_community_code"), "tasks", ["community_code"], unique=False)
    op.create_index(op.f("ix_tasks_grid_id"), "tasks", ["grid_id"], unique=False)
    op.create_index(op.f("ix_tasks_incident_id"), "tasks", ["incident_id"], unique=False)
    op.create_index("ix_tasks_offered_to_open", "tasks", ["offered_to"], unique=False,
                    postgresql_where=sa.text("status = 'offered'"))
    op.create_index("ix_tasks_assignee_open", "tasks", ["assignee_id"], unique=False,
                    postgresql_where=sa.text("status = 'accepted'"))
    op.create_index("ix_tasks_offer_expiry", "tasks", ["offer_expires_at"], unique=False,
                    postgresql_where=sa.text("status = 'offered'"))
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at"], unique=False)

    op.create_table(
        "task_offers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), server_default=sa.text("'pending'"),
                  nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(f"outcome IN {OUTCOMES}", name=op.f("ck_task_offers_outcome")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_task_offers_task_id_tasks"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"],
                                name=op.f("fk_task_offers_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_offers")),
        sa.UniqueConstraint("task_id", "person_id", name="uq_task_offers_task_person"),
    )
    op.create_index(op.f("ix_task_offers_task_id"), "task_offers", ["task_id"], unique=False)
    op.create_index(op.f("ix_task_offers_person_id"), "task_offers", ["person_id"], unique=False)
    op.create_index("uq_task_offers_one_pending", "task_offers", ["task_id"], unique=True,
                    postgresql_where=sa.text("outcome = 'pending'"))

    rewards = op.create_table(
        "rewards",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_rewards_points")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_rewards")),
    )
    op.bulk_insert(
        rewards,
        [
            {"code": c, "name": n, "name_en": e, "points": p, "provider": pr, "active": True}
            for c, n, e, p, pr in REWARDS
        ],
    )

    op.create_table(
        "redemptions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("reward_code", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_redemptions_points")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"],
                                name=op.f("fk_redemptions_person_id_people")),
        sa.ForeignKeyConstraint(["reward_code"], ["rewards.code"],
                                name=op.f("fk_redemptions_reward_code_rewards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_redemptions_idempotency_key")),
    )
    op.create_index(op.f("ix_redemptions_person_id"), "redemptions", ["person_id"], unique=False)

    # tasks and offers are a hot queue: keep planner statistics fresh as they grow, so the
    # load subqueries keep using the partial indexes instead of scanning.
    for table in ("tasks", "task_offers"):
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_analyze_scale_factor = 0.02, "
            "autovacuum_analyze_threshold = 200)"
        )

    # The points ledger is append-only: corrections are new entries, never edits.
    # (TRUNCATE, used by `wangge demo --replace`, is a table-level operation and stays allowed.)
    op.execute(
        """
        CREATE FUNCTION wangge_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'points_ledger is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER points_ledger_append_only BEFORE UPDATE OR DELETE ON points_ledger "
        "FOR EACH ROW EXECUTE FUNCTION wangge_ledger_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS points_ledger_append_only ON points_ledger")
    op.execute("DROP FUNCTION IF EXISTS wangge_ledger_append_only()")
    op.drop_index(op.f("ix_redemptions_person_id"), table_name="redemptions")
    op.drop_table("redemptions")
    op.drop_table("rewards")
    op.drop_index("uq_task_offers_one_pending", table_name="task_offers")
    op.drop_index(op.f("ix_task_offers_person_id"), table_name="task_offers")
    op.drop_index(op.f("ix_task_offers_task_id"), table_name="task_offers")
    op.drop_table("task_offers")
    op.drop_index("ix_tasks_status_created", table_name="tasks")
    op.drop_index("ix_tasks_offer_expiry", table_name="tasks")
    op.drop_index("ix_tasks_assignee_open", table_name="tasks")
    op.drop_index("ix_tasks_offered_to_open", table_name="tasks")
    op.drop_index(op.f("ix_tasks_incident_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_grid_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_community_code"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_city_code"), table_name="tasks")
    op.drop_geospatial_index("idx_tasks_location", table_name="tasks", column_name="location")
    op.drop_geospatial_table("tasks")
    op.execute("DROP INDEX IF EXISTS ix_people_position_geog")
