"""What customers send back: ``inbound`` (every reply, auto-reply, bounce and text message, stored
as received, then classified and matched) and ``inbound_sends`` (the escalations,
acknowledgements and personal answers sent because of them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(12), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("parse_note", sa.Text(), nullable=False),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("round_id", BigId, nullable=True),
        sa.Column("customer_id", sa.String(200), nullable=True),
        sa.Column("delivery_id", BigId, nullable=True),
        sa.Column("matched_by", sa.String(10), nullable=False),
        sa.Column("unmatched_reason", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("sentiment", sa.Float(), nullable=True),
        sa.Column("label", sa.String(10), nullable=True),
        sa.Column("needs_person", sa.Integer(), nullable=False),
        sa.Column("escalated_at", TS, nullable=True),
        sa.Column("escalation", sa.JSON(), nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("responded_at", TS, nullable=True),
        sa.Column("bounce", sa.JSON(), nullable=True),
        sa.Column("processed_at", TS, nullable=True),
        sa.UniqueConstraint("digest", name="uq_inbound_digest"),
    )
    op.create_index("ix_inbound_incident", "inbound", ["incident_id", "received_at"])
    op.create_index("ix_inbound_status", "inbound", ["status", "id"])
    op.create_index("ix_inbound_received", "inbound", ["received_at"])
    op.create_table(
        "inbound_sends",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("inbound_id", BigId, nullable=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("to", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("dedup", sa.String(200), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.UniqueConstraint("dedup", name="uq_inbound_sends_dedup"),
    )
    op.create_index("ix_inbound_sends_due", "inbound_sends", ["status", "next_attempt_at"])
    op.create_index("ix_inbound_sends_inbound", "inbound_sends", ["inbound_id"])


def downgrade() -> None:
    op.drop_table("inbound_sends")
    op.drop_table("inbound")
