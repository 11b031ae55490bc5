"""Indexes for the ``/metrics`` scrape: the promise-margin histogram counts each round's
deliveries between two send times (``round_id, sent_at``), and deliveries by outcome is an
index-only scan of ``channel, status``. Without them a scrape reads the whole deliveries table
(every daemon of a cluster, every scrape interval).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_round_sent", "deliveries", ["round_id", "sent_at"])
    op.create_index("ix_deliveries_outcome", "deliveries", ["channel", "status"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_outcome", table_name="deliveries")
    op.drop_index("ix_deliveries_round_sent", table_name="deliveries")
