"""Initial inventory schema: endpoint, certificate, sighting, observation.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('certificate',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('issuer', sa.Text(), nullable=False),
    sa.Column('serial', sa.Text(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sans', sa.JSON(), nullable=False),
    sa.Column('key_type', sa.String(length=32), nullable=False),
    sa.Column('key_bits', sa.Integer(), nullable=False),
    sa.Column('signature_algorithm', sa.Text(), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_certificate'))
    )
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificate_issuer'), ['issuer'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificate_not_after'), ['not_after'], unique=False)

    op.create_table('endpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('host', sa.Text(), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('scheme', sa.String(length=32), nullable=False),
    sa.Column('sni', sa.Text(), nullable=True),
    sa.Column('owner', sa.Text(), nullable=True),
    sa.Column('team', sa.Text(), nullable=True),
    sa.Column('environment', sa.Text(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('probe_interval_s', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint')),
    sa.UniqueConstraint('target', name=op.f('uq_endpoint_target'))
    )
    with op.batch_alter_table('endpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoint_team'), ['team'], unique=False)

    op.create_table('observation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('failure_kind', sa.String(length=64), nullable=True),
    sa.Column('version', sa.String(length=16), nullable=True),
    sa.Column('cipher', sa.Text(), nullable=True),
    sa.Column('handshake_ms', sa.Float(), nullable=True),
    sa.Column('chain', sa.JSON(), nullable=False),
    sa.Column('finding_ids', sa.JSON(), nullable=False),
    sa.Column('worst_severity', sa.Integer(), nullable=True),
    sa.Column('probe_id', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoint.id'], name=op.f('fk_observation_endpoint_id'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_observation')),
    sa.UniqueConstraint('probe_id', name=op.f('uq_observation_probe_id'))
    )
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.create_index('ix_observation_endpoint_time', ['endpoint_id', 'observed_at'], unique=False)

    op.create_table('sighting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_sha256', sa.String(length=64), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=True),
    sa.Column('file_path', sa.Text(), nullable=True),
    sa.Column('config_path', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('CAST(endpoint_id IS NOT NULL AS INTEGER) + CAST(file_path IS NOT NULL AS INTEGER) '
                       '+ CAST(config_path IS NOT NULL AS INTEGER) = 1', name=op.f('ck_sighting_one_source')),
    sa.ForeignKeyConstraint(['certificate_sha256'], ['certificate.sha256'],
                            name=op.f('fk_sighting_certificate_sha256'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoint.id'], name=op.f('fk_sighting_endpoint_id'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sighting')),
    sa.UniqueConstraint('certificate_sha256', 'source', name='uq_sighting_certificate_source')
    )
    with op.batch_alter_table('sighting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sighting_endpoint_id'), ['endpoint_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sighting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sighting_endpoint_id'))

    op.drop_table('sighting')
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.drop_index('ix_observation_endpoint_time')

    op.drop_table('observation')
    with op.batch_alter_table('endpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_team'))
        batch_op.drop_index(batch_op.f('ix_endpoint_owner'))

    op.drop_table('endpoint')
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_not_after'))
        batch_op.drop_index(batch_op.f('ix_certificate_issuer'))

    op.drop_table('certificate')
