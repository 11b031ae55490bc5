"""Scheduled maintenance's reminders per tier: each audience row may carry its customer's own
reminder offsets (``[policy.default] maintenance_remind``); null: the window's.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("maintenance_audience") as batch:
        batch.add_column(sa.Column("remind_s", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("maintenance_audience") as batch:
        batch.drop_column("remind_s")
