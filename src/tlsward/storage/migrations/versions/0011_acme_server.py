"""ACME server state: accounts, orders, authorizations, challenges, issued certificates, EAB keys.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("acme_account",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("jwk", sa.Text(), nullable=False),
    sa.Column("thumbprint", sa.String(length=64), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("contact", sa.JSON(), nullable=False),
    sa.Column("eab_kid", sa.String(length=128), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_account")),
    sa.UniqueConstraint("thumbprint", name=op.f("uq_acme_account_thumbprint"))
    )
    op.create_table("acme_certificate",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("account_id", sa.String(length=32), nullable=False),
    sa.Column("order_id", sa.String(length=32), nullable=False),
    sa.Column("serial", sa.String(length=64), nullable=False),
    sa.Column("aki", sa.String(length=128), nullable=False),
    sa.Column("fullchain_pem", sa.Text(), nullable=False),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
    sa.Column("identifiers", sa.JSON(), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revocation_reason", sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_certificate")),
    sa.UniqueConstraint("serial", name=op.f("uq_acme_certificate_serial"))
    )
    with op.batch_alter_table("acme_certificate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acme_certificate_account_id"), ["account_id"], unique=False)

    op.create_table("acme_eab_key",
    sa.Column("kid", sa.String(length=128), nullable=False),
    sa.Column("hmac_key", sa.LargeBinary(), nullable=False),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("account_id", sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint("kid", name=op.f("pk_acme_eab_key"))
    )
    op.create_table("acme_order",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("account_id", sa.String(length=32), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("identifiers", sa.JSON(), nullable=False),
    sa.Column("authz_ids", sa.JSON(), nullable=False),
    sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
    sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
    sa.Column("certificate_id", sa.String(length=32), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("replaces", sa.String(length=255), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["acme_account.id"], name=op.f("fk_acme_order_account_id"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_order"))
    )
    with op.batch_alter_table("acme_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acme_order_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acme_order_replaces"), ["replaces"], unique=False)

    op.create_table("acme_authorization",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("account_id", sa.String(length=32), nullable=False),
    sa.Column("order_id", sa.String(length=32), nullable=False),
    sa.Column("identifier_type", sa.String(length=8), nullable=False),
    sa.Column("identifier_value", sa.Text(), nullable=False),
    sa.Column("wildcard", sa.Boolean(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["order_id"], ["acme_order.id"], name=op.f("fk_acme_authorization_order_id"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_authorization"))
    )
    with op.batch_alter_table("acme_authorization", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acme_authorization_order_id"), ["order_id"], unique=False)

    op.create_table("acme_challenge",
    sa.Column("id", sa.String(length=40), nullable=False),
    sa.Column("authz_id", sa.String(length=32), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("type", sa.String(length=16), nullable=False),
    sa.Column("token", sa.String(length=64), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(["authz_id"], ["acme_authorization.id"],
                            name=op.f("fk_acme_challenge_authz_id"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_challenge"))
    )
    with op.batch_alter_table("acme_challenge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acme_challenge_authz_id"), ["authz_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("acme_challenge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_challenge_authz_id"))

    op.drop_table("acme_challenge")
    with op.batch_alter_table("acme_authorization", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_authorization_order_id"))

    op.drop_table("acme_authorization")
    with op.batch_alter_table("acme_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_order_replaces"))
        batch_op.drop_index(batch_op.f("ix_acme_order_account_id"))

    op.drop_table("acme_order")
    op.drop_table("acme_eab_key")
    with op.batch_alter_table("acme_certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_certificate_account_id"))

    op.drop_table("acme_certificate")
    op.drop_table("acme_account")
