"""The fleet's trust stores: each host's newest snapshot (``tlsward.truststores/1``), its stores and their roots,
so that drift across hosts can be shown.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("truststore_host",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("host", sa.Text(), nullable=False),
    sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("searched", sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_truststore_host")),
    sa.UniqueConstraint("host", name=op.f("uq_truststore_host_host"))
    )
    op.create_table("truststore",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("host_id", sa.Integer(), nullable=False),
    sa.Column("store_key", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("version", sa.Text(), nullable=False),
    sa.Column("clients", sa.Text(), nullable=False),
    sa.Column("root_count", sa.Integer(), nullable=False),
    sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("problem", sa.Text(), nullable=False),
    sa.Column("notes", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["host_id"], ["truststore_host.id"], name=op.f("fk_truststore_host_id"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_truststore")),
    sa.UniqueConstraint("host_id", "store_key", name="uq_truststore_host_store_key")
    )
    with op.batch_alter_table("truststore", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_truststore_kind"), ["kind"], unique=False)

    op.create_table("truststore_root",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("truststore_id", sa.Integer(), nullable=False),
    sa.Column("sha256", sa.String(length=64), nullable=False),
    sa.Column("spki_sha256", sa.String(length=64), nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),
    sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
    sa.Column("organization", sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(["truststore_id"], ["truststore.id"], name=op.f("fk_truststore_root_truststore_id"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_truststore_root"))
    )
    with op.batch_alter_table("truststore_root", schema=None) as batch_op:
        batch_op.create_index("ix_truststore_root_store_sha256", ["truststore_id", "sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_truststore_root_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_truststore_root_not_after"), ["not_after"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("truststore_root", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_truststore_root_not_after"))
        batch_op.drop_index(batch_op.f("ix_truststore_root_sha256"))
        batch_op.drop_index("ix_truststore_root_store_sha256")

    op.drop_table("truststore_root")
    with op.batch_alter_table("truststore", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_truststore_kind"))

    op.drop_table("truststore")
    op.drop_table("truststore_host")
