"""Endpoint current state: the newest observation, the newest successful one, and its leaf, denormalized onto
the endpoint row so that ``inventory list`` filters and the exporter stay fast at 100,000 endpoints.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_observation_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_success_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_success", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("leaf_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("leaf_not_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_endpoint_last_success"), ["last_success"], unique=False)
        batch_op.create_index(batch_op.f("ix_endpoint_leaf_sha256"), ["leaf_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_endpoint_leaf_not_after"), ["leaf_not_after"], unique=False)
    # Backfill from the history written before 0003 (the same statements the store runs after each write).
    first = "json_extract(o.chain, '$[0]')" if op.get_bind().dialect.name == "sqlite" else "(o.chain->>0)"
    newest = ("SELECT o.id FROM observation o WHERE o.endpoint_id = endpoint.id {extra} "
              "ORDER BY o.observed_at DESC, o.id DESC LIMIT 1")
    # Constant SQL: the only interpolated parts are the two literals above.
    op.execute(f"UPDATE endpoint SET last_observation_id = ({newest.format(extra='')}), "  # noqa: S608
               f"last_success_id = ({newest.format(extra='AND o.success')})")
    op.execute("UPDATE endpoint SET last_success = (SELECT o.success FROM observation o "  # noqa: S608
               "WHERE o.id = endpoint.last_observation_id), "
               f"leaf_sha256 = (SELECT {first} FROM observation o WHERE o.id = endpoint.last_success_id)")
    op.execute("UPDATE endpoint SET leaf_not_after = (SELECT c.not_after FROM certificate c "
               "WHERE c.sha256 = endpoint.leaf_sha256)")


def downgrade() -> None:
    with op.batch_alter_table("endpoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoint_leaf_not_after"))
        batch_op.drop_index(batch_op.f("ix_endpoint_leaf_sha256"))
        batch_op.drop_index(batch_op.f("ix_endpoint_last_success"))
        batch_op.drop_column("leaf_not_after")
        batch_op.drop_column("leaf_sha256")
        batch_op.drop_column("last_success")
        batch_op.drop_column("last_success_id")
        batch_op.drop_column("last_observation_id")
