"""Customers' incident page links: a customer's links issued before ``revoked_before`` are
refused (``page revoke``); the next message carries a fresh one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_revocations",
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("revoked_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("page_revocations")
