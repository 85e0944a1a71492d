"""Client TLS telemetry from access logs (``tlsward logs ingest``): requests per endpoint, hour, protocol and
cipher; the clients of the non-TLS-1.3 ones (top K per key plus "other"); malformed lines per source; and each
log file's checkpoint, written with the counts so that ingest is exactly-once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("clientlog_mix",
    sa.Column("endpoint", sa.Text(), nullable=False),
    sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("protocol", sa.String(length=16), nullable=False),
    sa.Column("cipher", sa.String(length=128), nullable=False),
    sa.Column("requests", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("endpoint", "bucket_start", "protocol", "cipher", name=op.f("pk_clientlog_mix"))
    )
    with op.batch_alter_table("clientlog_mix", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clientlog_mix_bucket_start"), ["bucket_start"], unique=False)

    op.create_table("clientlog_client",
    sa.Column("endpoint", sa.Text(), nullable=False),
    sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("protocol", sa.String(length=16), nullable=False),
    sa.Column("cipher", sa.String(length=128), nullable=False),
    sa.Column("network", sa.Text(), nullable=False),
    sa.Column("user_agent", sa.Text(), nullable=False),
    sa.Column("requests", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("endpoint", "bucket_start", "protocol", "cipher", "network", "user_agent",
                            name=op.f("pk_clientlog_client"))
    )
    with op.batch_alter_table("clientlog_client", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clientlog_client_bucket_start"), ["bucket_start"], unique=False)

    op.create_table("clientlog_malformed",
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("count", sa.BigInteger(), nullable=False),
    sa.Column("samples", sa.JSON(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("source", name=op.f("pk_clientlog_malformed"))
    )
    op.create_table("clientlog_checkpoint",
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("inode", sa.BigInteger(), nullable=False),
    sa.Column("offset", sa.BigInteger(), nullable=False),
    sa.Column("line", sa.BigInteger(), nullable=False),
    sa.Column("fingerprint", sa.String(length=64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("source", name=op.f("pk_clientlog_checkpoint"))
    )


def downgrade() -> None:
    op.drop_table("clientlog_checkpoint")
    op.drop_table("clientlog_malformed")
    with op.batch_alter_table("clientlog_client", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clientlog_client_bucket_start"))

    op.drop_table("clientlog_client")
    with op.batch_alter_table("clientlog_mix", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clientlog_mix_bucket_start"))

    op.drop_table("clientlog_mix")
