"""Contact flags: a contact a provider refused for good (Twilio 21211 invalid number, 21610
opted out) is skipped by later rounds until the customer's contact changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact_flags",
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("channel", sa.String(100), primary_key=True),
        sa.Column("contact", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("incident_id", BigId, nullable=True),
        sa.Column("flagged_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("contact_flags")
