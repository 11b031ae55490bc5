"""Service recovery: credits per customer, feedback (NPS), follow-up scheduling.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("follow_up_due", TS, nullable=True))
    op.create_table(
        "credits",
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("goodwill", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("approved_at", TS, nullable=True),
    )
    op.create_table(
        "feedback",
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("credits")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("follow_up_due")
