"""foundation schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 09:12:20.538349
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostGIS for geometry, pgRouting for walking distances over the street network.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
    op.create_geospatial_table('admin_areas',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("level IN ('city', 'district', 'street')", name=op.f('ck_admin_areas_level')),
    sa.ForeignKeyConstraint(['parent_code'], ['admin_areas.code'], name=op.f('fk_admin_areas_parent_code_admin_areas')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_admin_areas'))
    )
    op.create_geospatial_index('idx_admin_areas_geom', 'admin_areas', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_admin_areas_city_code'), 'admin_areas', ['city_code'], unique=False)
    op.create_table('departments',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('time_limit_hours', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_departments'))
    )
    op.create_geospatial_table('streets',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.BigInteger(), nullable=True),
    sa.Column('target', sa.BigInteger(), nullable=True),
    sa.Column('length_m', sa.Float(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_streets'))
    )
    op.create_geospatial_index('idx_streets_geom', 'streets', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_streets_city_code'), 'streets', ['city_code'], unique=False)
    op.create_index(op.f('ix_streets_source'), 'streets', ['source'], unique=False)
    op.create_index(op.f('ix_streets_target'), 'streets', ['target'], unique=False)
    op.create_geospatial_table('communities',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=True),
    sa.Column('district_code', sa.String(length=12), nullable=False),
    sa.Column('street_code', sa.String(length=12), nullable=True),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['district_code'], ['admin_areas.code'], name=op.f('fk_communities_district_code_admin_areas')),
    sa.ForeignKeyConstraint(['street_code'], ['admin_areas.code'], name=op.f('fk_communities_street_code_admin_areas')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_communities'))
    )
    op.create_geospatial_index('idx_communities_geom', 'communities', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_communities_city_code'), 'communities', ['city_code'], unique=False)
    op.create_index(op.f('ix_communities_district_code'), 'communities', ['district_code'], unique=False)
    op.create_index(op.f('ix_communities_street_code'), 'communities', ['street_code'], unique=False)
    op.create_table('service_items',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('department_code', sa.String(length=32), nullable=True),
    sa.Column('time_limit_hours', sa.Integer(), nullable=False),
    sa.Column('on_the_spot', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('high_frequency', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['department_code'], ['departments.code'], name=op.f('fk_service_items_department_code_departments')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_service_items'))
    )
    op.create_geospatial_table('people',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('role', sa.String(length=24), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('department_code', sa.String(length=32), nullable=True),
    sa.Column('skills', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('party_member', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('on_duty', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('capacity', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('shift_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('position', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('position_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('window_worker', 'grid_worker', 'volunteer', 'rider', 'police', 'department_staff')", name=op.f('ck_people_role')),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name=op.f('fk_people_community_code_communities')),
    sa.ForeignKeyConstraint(['department_code'], ['departments.code'], name=op.f('fk_people_department_code_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people'))
    )
    op.create_geospatial_index('idx_people_position', 'people', ['position'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_people_city_code'), 'people', ['city_code'], unique=False)
    op.create_index(op.f('ix_people_community_code'), 'people', ['community_code'], unique=False)
    op.create_index(op.f('ix_people_role'), 'people', ['role'], unique=False)
    op.create_table('plans',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('figures', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'active', 'retired')", name=op.f('ck_plans_status')),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name=op.f('fk_plans_community_code_communities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plans'))
    )
    op.create_index(op.f('ix_plans_city_code'), 'plans', ['city_code'], unique=False)
    op.create_index(op.f('ix_plans_community_code'), 'plans', ['community_code'], unique=False)
    op.create_index('uq_plans_one_active', 'plans', ['community_code'], unique=True, postgresql_where=sa.text("status = 'active'"))
    op.create_table('api_tokens',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('district_code', sa.String(length=12), nullable=True),
    sa.Column('department_code', sa.String(length=32), nullable=True),
    sa.Column('person_id', sa.BigInteger(), nullable=True),
    sa.Column('label', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('admin', 'planner', 'dispatcher', 'worker', 'department', 'reporter')", name=op.f('ck_api_tokens_role')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_api_tokens_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_geospatial_table('grids',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('plan_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('worker_id', sa.BigInteger(), nullable=True),
    sa.Column('households', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('buildings', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name=op.f('fk_grids_community_code_communities')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_grids_plan_id_plans'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['worker_id'], ['people.id'], name=op.f('fk_grids_worker_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grids')),
    sa.UniqueConstraint('plan_id', 'code', name='uq_grids_plan_code')
    )
    op.create_geospatial_index('idx_grids_geom', 'grids', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_grids_city_code'), 'grids', ['city_code'], unique=False)
    op.create_index(op.f('ix_grids_code'), 'grids', ['code'], unique=False)
    op.create_index(op.f('ix_grids_community_code'), 'grids', ['community_code'], unique=False)
    op.create_index(op.f('ix_grids_plan_id'), 'grids', ['plan_id'], unique=False)
    op.create_index(op.f('ix_grids_worker_id'), 'grids', ['worker_id'], unique=False)
    op.create_table('points_ledger',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('ref', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_points_ledger_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_points_ledger'))
    )
    op.create_index(op.f('ix_points_ledger_person_id'), 'points_ledger', ['person_id'], unique=False)
    op.create_geospatial_table('position_history',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('person_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_position_history_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_position_history'))
    )
    op.create_index('ix_position_history_person_at', 'position_history', ['person_id', 'at'], unique=False)
    op.create_geospatial_table('buildings',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('grid_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('floors', sa.SmallInteger(), nullable=False),
    sa.Column('households_estimated', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('point', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name=op.f('fk_buildings_community_code_communities')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_buildings_grid_id_grids')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buildings')),
    sa.UniqueConstraint('code', name=op.f('uq_buildings_code'))
    )
    op.create_geospatial_index('idx_buildings_geom', 'buildings', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_index('idx_buildings_point', 'buildings', ['point'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_buildings_city_code'), 'buildings', ['city_code'], unique=False)
    op.create_index(op.f('ix_buildings_community_code'), 'buildings', ['community_code'], unique=False)
    op.create_index(op.f('ix_buildings_grid_id'), 'buildings', ['grid_id'], unique=False)
    op.create_geospatial_table('incidents',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('item_code', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('reporter_name', sa.Text(), nullable=True),
    sa.Column('reporter_phone', sa.String(length=32), nullable=True),
    sa.Column('reporter_token_id', sa.BigInteger(), nullable=True),
    sa.Column('location', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('input_crs', sa.String(length=16), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('located', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('grid_id', sa.BigInteger(), nullable=True),
    sa.Column('community_code', sa.String(length=12), nullable=True),
    sa.Column('assignee_id', sa.BigInteger(), nullable=True),
    sa.Column('department_code', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('duplicate_of', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('department_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('on_the_spot', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.CheckConstraint("channel IN ('window', 'mini_program', 'phone', 'patrol', 'open311')", name=op.f('ck_incidents_channel')),
    sa.CheckConstraint("status IN ('submitted', 'assigned', 'accepted', 'in_progress', 'resolved', 'escalated', 'department_accepted', 'verified', 'closed')", name=op.f('ck_incidents_status')),
    sa.ForeignKeyConstraint(['assignee_id'], ['people.id'], name=op.f('fk_incidents_assignee_id_people')),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name=op.f('fk_incidents_community_code_communities')),
    sa.ForeignKeyConstraint(['department_code'], ['departments.code'], name=op.f('fk_incidents_department_code_departments')),
    sa.ForeignKeyConstraint(['duplicate_of'], ['incidents.id'], name=op.f('fk_incidents_duplicate_of_incidents')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_incidents_grid_id_grids')),
    sa.ForeignKeyConstraint(['item_code'], ['service_items.code'], name=op.f('fk_incidents_item_code_service_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_incidents_idempotency_key'))
    )
    op.create_geospatial_index('idx_incidents_location', 'incidents', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_incidents_assignee_id'), 'incidents', ['assignee_id'], unique=False)
    op.create_index(op.f('ix_incidents_city_code'), 'incidents', ['city_code'], unique=False)
    op.create_index(op.f('ix_incidents_community_code'), 'incidents', ['community_code'], unique=False)
    op.create_index('ix_incidents_created', 'incidents', ['city_code', 'created_at'], unique=False)
    op.create_index(op.f('ix_incidents_department_code'), 'incidents', ['department_code'], unique=False)
    op.create_index(op.f('ix_incidents_grid_id'), 'incidents', ['grid_id'], unique=False)
    op.create_index(op.f('ix_incidents_item_code'), 'incidents', ['item_code'], unique=False)
    op.create_index(op.f('ix_incidents_status'), 'incidents', ['status'], unique=False)
    op.create_table('party_orgs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('community_code', sa.String(length=12), nullable=False),
    sa.Column('grid_id', sa.BigInteger(), nullable=True),
    sa.Column('secretary_id', sa.BigInteger(), nullable=True),
    sa.CheckConstraint("tier IN ('committee', 'branch', 'group')", name=op.f('ck_party_orgs_tier')),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name=op.f('fk_party_orgs_community_code_communities')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_party_orgs_grid_id_grids')),
    sa.ForeignKeyConstraint(['parent_id'], ['party_orgs.id'], name=op.f('fk_party_orgs_parent_id_party_orgs')),
    sa.ForeignKeyConstraint(['secretary_id'], ['people.id'], name=op.f('fk_party_orgs_secretary_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_party_orgs')),
    sa.UniqueConstraint('code', name=op.f('uq_party_orgs_code'))
    )
    op.create_index(op.f('ix_party_orgs_city_code'), 'party_orgs', ['city_code'], unique=False)
    op.create_index(op.f('ix_party_orgs_community_code'), 'party_orgs', ['community_code'], unique=False)
    op.create_index(op.f('ix_party_orgs_grid_id'), 'party_orgs', ['grid_id'], unique=False)
    op.create_index(op.f('ix_party_orgs_parent_id'), 'party_orgs', ['parent_id'], unique=False)
    op.create_geospatial_table('incident_events',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('incident_id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_events_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_events'))
    )
    op.create_index(op.f('ix_incident_events_incident_id'), 'incident_events', ['incident_id'], unique=False)
    op.create_table('party_group_buildings',
    sa.Column('group_id', sa.BigInteger(), nullable=False),
    sa.Column('building_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['building_id'], ['buildings.id'], name=op.f('fk_party_group_buildings_building_id_buildings')),
    sa.ForeignKeyConstraint(['group_id'], ['party_orgs.id'], name=op.f('fk_party_group_buildings_group_id_party_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'building_id', name=op.f('pk_party_group_buildings'))
    )
    op.create_table('party_members',
    sa.Column('org_id', sa.BigInteger(), nullable=False),
    sa.Column('person_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Text(), server_default=sa.text("'member'"), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['party_orgs.id'], name=op.f('fk_party_members_org_id_party_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_party_members_person_id_people')),
    sa.PrimaryKeyConstraint('org_id', 'person_id', name=op.f('pk_party_members'))
    )
    op.create_table('plan_assignments',
    sa.Column('plan_id', sa.BigInteger(), nullable=False),
    sa.Column('building_id', sa.BigInteger(), nullable=False),
    sa.Column('grid_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['building_id'], ['buildings.id'], name=op.f('fk_plan_assignments_building_id_buildings')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_plan_assignments_grid_id_grids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_plan_assignments_plan_id_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id', 'building_id', name=op.f('pk_plan_assignments'))
    )
    op.create_index(op.f('ix_plan_assignments_grid_id'), 'plan_assignments', ['grid_id'], unique=False)
    op.create_table('ratings',
    sa.Column('incident_id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('good', sa.Boolean(), nullable=False),
    sa.Column('score', sa.SmallInteger(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_ratings_score')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_ratings_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_ratings'))
    )
    op.create_table('residents',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('building_id', sa.BigInteger(), nullable=False),
    sa.Column('room', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('flags', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('must_visit', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('visit_every_days', sa.Integer(), server_default=sa.text('30'), nullable=False),
    sa.ForeignKeyConstraint(['building_id'], ['buildings.id'], name=op.f('fk_residents_building_id_buildings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_residents'))
    )
    op.create_index(op.f('ix_residents_building_id'), 'residents', ['building_id'], unique=False)
    op.create_index(op.f('ix_residents_city_code'), 'residents', ['city_code'], unique=False)
    op.create_geospatial_table('visits',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('building_id', sa.BigInteger(), nullable=False),
    sa.Column('resident_id', sa.BigInteger(), nullable=True),
    sa.Column('worker_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checklist', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('position', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.ForeignKeyConstraint(['building_id'], ['buildings.id'], name=op.f('fk_visits_building_id_buildings')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_visits_resident_id_residents')),
    sa.ForeignKeyConstraint(['worker_id'], ['people.id'], name=op.f('fk_visits_worker_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits'))
    )
    op.create_index(op.f('ix_visits_at'), 'visits', ['at'], unique=False)
    op.create_index(op.f('ix_visits_building_id'), 'visits', ['building_id'], unique=False)
    op.create_index(op.f('ix_visits_city_code'), 'visits', ['city_code'], unique=False)
    op.create_index(op.f('ix_visits_resident_id'), 'visits', ['resident_id'], unique=False)
    op.create_index(op.f('ix_visits_worker_id'), 'visits', ['worker_id'], unique=False)
    # Locating a point searches active grids only: a partial GiST index keeps it small.
    op.execute("CREATE INDEX ix_grids_active_geom ON grids USING gist (geom) WHERE active")


def downgrade() -> None:
    op.drop_index(op.f('ix_visits_worker_id'), table_name='visits')
    op.drop_index(op.f('ix_visits_resident_id'), table_name='visits')
    op.drop_index(op.f('ix_visits_city_code'), table_name='visits')
    op.drop_index(op.f('ix_visits_building_id'), table_name='visits')
    op.drop_index(op.f('ix_visits_at'), table_name='visits')
    op.drop_geospatial_table('visits')
    op.drop_index(op.f('ix_residents_city_code'), table_name='residents')
    op.drop_index(op.f('ix_residents_building_id'), table_name='residents')
    op.drop_table('residents')
    op.drop_table('ratings')
    op.drop_index(op.f('ix_plan_assignments_grid_id'), table_name='plan_assignments')
    op.drop_table('plan_assignments')
    op.drop_table('party_members')
    op.drop_table('party_group_buildings')
    op.drop_index(op.f('ix_incident_events_incident_id'), table_name='incident_events')
    op.drop_geospatial_table('incident_events')
    op.drop_index(op.f('ix_party_orgs_parent_id'), table_name='party_orgs')
    op.drop_index(op.f('ix_party_orgs_grid_id'), table_name='party_orgs')
    op.drop_index(op.f('ix_party_orgs_community_code'), table_name='party_orgs')
    op.drop_index(op.f('ix_party_orgs_city_code'), table_name='party_orgs')
    op.drop_table('party_orgs')
    op.drop_index(op.f('ix_incidents_status'), table_name='incidents')
    op.drop_index(op.f('ix_incidents_item_code'), table_name='incidents')
    op.drop_index(op.f('ix_incidents_grid_id'), table_name='incidents')
    op.drop_index(op.f('ix_incidents_department_code'), table_name='incidents')
    op.drop_index('ix_incidents_created', table_name='incidents')
    op.drop_index(op.f('ix_incidents_community_code'), table_name='incidents')
    op.drop_index(op.f('ix_incidents_city_code'), table_name='incidents')
    op.drop_index(op.f('ix_incidents_assignee_id'), table_name='incidents')
    op.drop_geospatial_index('idx_incidents_location', table_name='incidents', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('incidents')
    op.drop_index(op.f('ix_buildings_grid_id'), table_name='buildings')
    op.drop_index(op.f('ix_buildings_community_code'), table_name='buildings')
    op.drop_index(op.f('ix_buildings_city_code'), table_name='buildings')
    op.drop_geospatial_index('idx_buildings_point', table_name='buildings', postgresql_using='gist', column_name='point')
    op.drop_geospatial_index('idx_buildings_geom', table_name='buildings', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('buildings')
    op.drop_index('ix_position_history_person_at', table_name='position_history')
    op.drop_geospatial_table('position_history')
    op.drop_index(op.f('ix_points_ledger_person_id'), table_name='points_ledger')
    op.drop_table('points_ledger')
    op.drop_index(op.f('ix_grids_worker_id'), table_name='grids')
    op.drop_index(op.f('ix_grids_plan_id'), table_name='grids')
    op.drop_index(op.f('ix_grids_community_code'), table_name='grids')
    op.drop_index(op.f('ix_grids_code'), table_name='grids')
    op.drop_index(op.f('ix_grids_city_code'), table_name='grids')
    op.drop_geospatial_index('idx_grids_geom', table_name='grids', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('grids')
    op.drop_table('api_tokens')
    op.drop_index('uq_plans_one_active', table_name='plans', postgresql_where=sa.text("status = 'active'"))
    op.drop_index(op.f('ix_plans_community_code'), table_name='plans')
    op.drop_index(op.f('ix_plans_city_code'), table_name='plans')
    op.drop_table('plans')
    op.drop_index(op.f('ix_people_role'), table_name='people')
    op.drop_index(op.f('ix_people_community_code'), table_name='people')
    op.drop_index(op.f('ix_people_city_code'), table_name='people')
    op.drop_geospatial_index('idx_people_position', table_name='people', postgresql_using='gist', column_name='position')
    op.drop_geospatial_table('people')
    op.drop_table('service_items')
    op.drop_index(op.f('ix_communities_street_code'), table_name='communities')
    op.drop_index(op.f('ix_communities_district_code'), table_name='communities')
    op.drop_index(op.f('ix_communities_city_code'), table_name='communities')
    op.drop_geospatial_index('idx_communities_geom', table_name='communities', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('communities')
    op.drop_index(op.f('ix_streets_target'), table_name='streets')
    op.drop_index(op.f('ix_streets_source'), table_name='streets')
    op.drop_index(op.f('ix_streets_city_code'), table_name='streets')
    op.drop_geospatial_index('idx_streets_geom', table_name='streets', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('streets')
    op.drop_table('departments')
    op.drop_index(op.f('ix_admin_areas_city_code'), table_name='admin_areas')
    op.drop_geospatial_index('idx_admin_areas_geom', table_name='admin_areas', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('admin_areas')
