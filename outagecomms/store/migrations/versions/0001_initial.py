"""Initial schema: customers, incidents, audience, rounds, deliveries (the outbox), events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("slack_webhook", sa.Text, nullable=False),
        sa.Column("teams_webhook", sa.Text, nullable=False),
        sa.Column("webhook_url", sa.Text, nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("monthly_fee", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("components", sa.JSON, nullable=False),
        sa.Column("regions", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(32), nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("account_manager", sa.String(320), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("components", sa.JSON, nullable=False),
        sa.Column("regions", sa.JSON, nullable=False),
        sa.Column("selector", sa.JSON, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("declared_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("commander", sa.String(200), nullable=False),
        sa.Column("update_every_s", sa.Float, nullable=False),
        sa.Column("next_update_due", TS, nullable=True),
        sa.Column("ack_due", TS, nullable=False),
        sa.Column("reminded_for", TS, nullable=True),
        sa.Column("audience_size", sa.Integer, nullable=False),
        sa.Column("skipped", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_table(
        "audience",
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("channel", sa.String(100), primary_key=True),
    )
    op.create_table(
        "rounds",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("due_by", TS, nullable=True),
        sa.Column("promised_next_by", TS, nullable=True),
        sa.UniqueConstraint("incident_id", "seq", name="uq_rounds_incident_seq"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("round_id", BigId, sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("provider_id", sa.String(500), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("content", sa.LargeBinary, nullable=True),
        sa.UniqueConstraint(
            "incident_id", "round_id", "customer_id", "channel", name="uq_deliveries_key"
        ),
    )
    op.create_index("ix_deliveries_claim", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_customer", "deliveries", ["incident_id", "customer_id"])
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_events_incident", "events", ["incident_id", "at"])


def downgrade() -> None:
    for name in ("events", "deliveries", "rounds", "audience", "incidents", "customers"):
        op.drop_table(name)
