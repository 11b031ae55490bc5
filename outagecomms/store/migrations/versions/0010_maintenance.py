"""Scheduled maintenance: ``maintenance`` (the windows, ``MNT-<id>``), its audience, its notices
(one row per announcement, update, reminder, start, completion or cancellation, unique per key)
and their deliveries (one per notice, customer and channel).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "maintenance",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("selector", sa.JSON(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("remind_s", sa.JSON(), nullable=False),
        sa.Column("audience_size", sa.Integer(), nullable=False),
        sa.Column("commander", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("told_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("cancelled_at", TS, nullable=True),
        sa.Column("overrun_reminded_at", TS, nullable=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_maintenance_status", "maintenance", ["status", "starts_at"])
    op.create_table(
        "maintenance_audience",
        sa.Column("maintenance_id", BigId, sa.ForeignKey("maintenance.id"), primary_key=True),
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("channel", sa.String(100), primary_key=True),
    )
    op.create_table(
        "maintenance_notices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("maintenance_id", BigId, sa.ForeignKey("maintenance.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("previous_starts_at", TS, nullable=True),
        sa.Column("previous_ends_at", TS, nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.UniqueConstraint("maintenance_id", "key", name="uq_maintenance_notices_key"),
        sa.UniqueConstraint("maintenance_id", "seq", name="uq_maintenance_notices_seq"),
    )
    op.create_table(
        "maintenance_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("maintenance_id", BigId, sa.ForeignKey("maintenance.id"), nullable=False),
        sa.Column("notice_id", BigId, sa.ForeignKey("maintenance_notices.id"), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(500), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.UniqueConstraint(
            "notice_id", "customer_id", "channel", name="uq_maintenance_deliveries_key"
        ),
    )
    op.create_index(
        "ix_maintenance_deliveries_claim", "maintenance_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("maintenance_deliveries")
    op.drop_table("maintenance_notices")
    op.drop_table("maintenance_audience")
    op.drop_index("ix_maintenance_status", table_name="maintenance")
    op.drop_table("maintenance")
