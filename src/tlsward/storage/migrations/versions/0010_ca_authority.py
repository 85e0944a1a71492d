"""Internal CA: issued certificates, revocations and CRL numbers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("ca_authority",
    sa.Column("key_id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("crl_number", sa.BigInteger(), nullable=False),
    sa.Column("crl_this_update", sa.DateTime(timezone=True), nullable=True),
    sa.Column("crl_next_update", sa.DateTime(timezone=True), nullable=True),
    sa.Column("crl_der", sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint("key_id", name=op.f("pk_ca_authority"))
    )
    op.create_table("ca_certificate",
    sa.Column("authority", sa.String(length=64), nullable=False),
    sa.Column("serial", sa.String(length=40), nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),
    sa.Column("names", sa.JSON(), nullable=False),
    sa.Column("profile", sa.String(length=16), nullable=False),
    sa.Column("key_type", sa.String(length=32), nullable=False),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("requester", sa.Text(), nullable=False),
    sa.Column("sha256", sa.String(length=64), nullable=False),
    sa.Column("der", sa.LargeBinary(), nullable=False),
    sa.Column("replaces", sa.String(length=40), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revocation_reason", sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(["authority"], ["ca_authority.key_id"], name=op.f("fk_ca_certificate_authority")),
    sa.PrimaryKeyConstraint("authority", "serial", name=op.f("pk_ca_certificate"))
    )
    # Partial: only revoked rows, so that an issuance (a row with revoked_at NULL) writes no page of it.
    op.create_index(op.f("ix_ca_certificate_revoked_at"), "ca_certificate", ["revoked_at"], unique=False,
                    sqlite_where=sa.text("revoked_at IS NOT NULL"), postgresql_where=sa.text("revoked_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index(op.f("ix_ca_certificate_revoked_at"), table_name="ca_certificate")
    op.drop_table("ca_certificate")
    op.drop_table("ca_authority")
