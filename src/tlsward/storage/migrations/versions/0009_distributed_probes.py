"""Distributed probing: each endpoint's zone (the workers that probe it), worker heartbeats, the scheduler's view
of each zone (queue depth, pending, lag) and the scheduler lease.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zone", sa.String(length=63), server_default="default", nullable=False))
        batch_op.create_index(batch_op.f("ix_endpoint_zone"), ["zone"], unique=False)

    op.create_table("probe_worker",
    sa.Column("name", sa.String(length=255), nullable=False),
    sa.Column("zone", sa.String(length=63), nullable=False),
    sa.Column("hostname", sa.Text(), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("concurrency", sa.Integer(), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("probes", sa.BigInteger(), server_default="0", nullable=False),
    sa.Column("failures", sa.BigInteger(), server_default="0", nullable=False),
    sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("name", name=op.f("pk_probe_worker"))
    )
    with op.batch_alter_table("probe_worker", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_probe_worker_zone"), ["zone"], unique=False)
        batch_op.create_index(batch_op.f("ix_probe_worker_last_seen"), ["last_seen"], unique=False)

    op.create_table("probe_zone",
    sa.Column("zone", sa.String(length=63), nullable=False),
    sa.Column("endpoints", sa.Integer(), nullable=False),
    sa.Column("workers", sa.Integer(), nullable=False),
    sa.Column("slots", sa.Integer(), nullable=False),
    sa.Column("queue_depth", sa.Integer(), nullable=False),
    sa.Column("pending", sa.Integer(), nullable=False),
    sa.Column("outstanding", sa.Integer(), nullable=False),
    sa.Column("oldest_due_s", sa.Float(), nullable=False),
    sa.Column("lag_p50_s", sa.Float(), nullable=False),
    sa.Column("lag_p95_s", sa.Float(), nullable=False),
    sa.Column("enqueued", sa.BigInteger(), nullable=False),
    sa.Column("done", sa.BigInteger(), nullable=False),
    sa.Column("resent", sa.BigInteger(), nullable=False),
    sa.Column("abandoned", sa.BigInteger(), nullable=False),
    sa.Column("down_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("zone", name=op.f("pk_probe_zone"))
    )
    op.create_table("scheduler_lease",
    sa.Column("name", sa.String(length=64), nullable=False),
    sa.Column("holder", sa.Text(), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_lease"))
    )


def downgrade() -> None:
    op.drop_table("scheduler_lease")
    op.drop_table("probe_zone")
    with op.batch_alter_table("probe_worker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_probe_worker_last_seen"))
        batch_op.drop_index(batch_op.f("ix_probe_worker_zone"))

    op.drop_table("probe_worker")
    with op.batch_alter_table("endpoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoint_zone"))
        batch_op.drop_column("zone")
