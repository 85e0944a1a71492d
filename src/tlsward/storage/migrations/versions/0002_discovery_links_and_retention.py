"""Discovery and retention: endpoint.connect, endpoint_file (config -> certificate file links), file_problem,
and the observation columns that let history be downsampled without skewing success rates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("file_problem",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("line", sa.Integer(), nullable=True),
    sa.Column("finding_id", sa.String(length=64), nullable=False),
    sa.Column("severity", sa.Integer(), nullable=False),
    sa.Column("evidence", sa.Text(), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_file_problem")),
    sa.UniqueConstraint("path", "finding_id", name="uq_file_problem_path_finding")
    )
    with op.batch_alter_table("file_problem", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_file_problem_path"), ["path"], unique=False)

    op.create_table("endpoint_file",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("endpoint_id", sa.Integer(), nullable=False),
    sa.Column("server", sa.String(length=16), nullable=False),
    sa.Column("config_path", sa.Text(), nullable=False),
    sa.Column("config_line", sa.Integer(), nullable=False),
    sa.Column("certificate_path", sa.Text(), nullable=False),
    sa.Column("key_path", sa.Text(), nullable=True),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["endpoint_id"], ["endpoint.id"], name=op.f("fk_endpoint_file_endpoint_id"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_file")),
    sa.UniqueConstraint("endpoint_id", "certificate_path", name="uq_endpoint_file_endpoint_path")
    )
    with op.batch_alter_table("endpoint_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_endpoint_file_endpoint_id"), ["endpoint_id"], unique=False)

    with op.batch_alter_table("endpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("connect", sa.Text(), nullable=True))

    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("samples", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("successes", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("resolution", sa.String(length=8), server_default="raw", nullable=False))
        batch_op.create_index("ix_observation_resolution_time", ["resolution", "observed_at"], unique=False)
    # Rows written before 0002 are raw probes: one sample each, a success when the probe succeeded.
    op.execute("UPDATE observation SET successes = CASE WHEN success THEN 1 ELSE 0 END")



def downgrade() -> None:
    with op.batch_alter_table("observation", schema=None) as batch_op:
        batch_op.drop_index("ix_observation_resolution_time")
        batch_op.drop_column("resolution")
        batch_op.drop_column("successes")
        batch_op.drop_column("samples")

    with op.batch_alter_table("endpoint", schema=None) as batch_op:
        batch_op.drop_column("connect")

    with op.batch_alter_table("endpoint_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoint_file_endpoint_id"))

    op.drop_table("endpoint_file")
    with op.batch_alter_table("file_problem", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_file_problem_path"))

    op.drop_table("file_problem")
