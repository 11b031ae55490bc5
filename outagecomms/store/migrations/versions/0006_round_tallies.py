"""``round_tallies``: the /metrics figures of each settled round, counted once, so a scrape of a
store with millions of deliveries reads a row per round instead of every delivery. The scrape no
longer counts deliveries by outcome over the whole table, so ``ix_deliveries_outcome`` goes
(it cost an index update on every status change of every delivery).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "round_tallies",
        sa.Column("round_id", BigId, sa.ForeignKey("rounds.id"), primary_key=True),
        sa.Column("bounds", sa.String(200), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("ranges", sa.Text(), nullable=True),
        sa.Column("extra", sa.Integer(), nullable=False),
        sa.Column("margin_sum", sa.Float(), nullable=False),
    )
    op.drop_index("ix_deliveries_outcome", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_outcome", "deliveries", ["channel", "status"])
    op.drop_table("round_tallies")
