"""The monitor"s alerts (one row per alert key: status, stage, what was notified, acks) and silences.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("alert",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("key", sa.String(length=255), nullable=False),
    sa.Column("rule", sa.String(length=64), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("severity", sa.Integer(), nullable=False),
    sa.Column("route", sa.String(length=16), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("fix", sa.Text(), nullable=False),
    sa.Column("endpoints", sa.JSON(), nullable=False),
    sa.Column("labels", sa.JSON(), nullable=False),
    sa.Column("owner", sa.Text(), nullable=True),
    sa.Column("team", sa.Text(), nullable=True),
    sa.Column("stage", sa.String(length=32), nullable=False),
    sa.Column("notified_stage", sa.String(length=32), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acked_by", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    sa.UniqueConstraint("key", name=op.f("uq_alert_key"))
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_rule"), ["rule"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_status"), ["status"], unique=False)

    op.create_table("silence",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("matchers", sa.JSON(), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.Text(), nullable=False),
    sa.Column("comment", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_silence"))
    )
    with op.batch_alter_table("silence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_silence_ends_at"), ["ends_at"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("silence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_silence_ends_at"))

    op.drop_table("silence")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_status"))
        batch_op.drop_index(batch_op.f("ix_alert_rule"))

    op.drop_table("alert")
