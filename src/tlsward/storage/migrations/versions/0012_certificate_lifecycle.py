"""Certificate lifecycle: the history of renewals and deploys of managed certificates (outcome, fingerprints,
reason, step timings), from which the monitor raises cert.deploy_failed / cert.renewal_failed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("certificate_renewal",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("certificate", sa.String(length=255), nullable=False),
    sa.Column("source", sa.String(length=16), nullable=False),
    sa.Column("outcome", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("old_sha256", sa.String(length=64), nullable=True),
    sa.Column("new_sha256", sa.String(length=64), nullable=True),
    sa.Column("new_not_after", sa.DateTime(timezone=True), nullable=True),
    sa.Column("endpoints", sa.JSON(), nullable=False),
    sa.Column("steps", sa.JSON(), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_renewal"))
    )
    with op.batch_alter_table("certificate_renewal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificate_renewal_certificate"), ["certificate"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_renewal_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificate_renewal_started_at"), ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("certificate_renewal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_renewal_started_at"))
        batch_op.drop_index(batch_op.f("ix_certificate_renewal_outcome"))
        batch_op.drop_index(batch_op.f("ix_certificate_renewal_certificate"))

    op.drop_table("certificate_renewal")
