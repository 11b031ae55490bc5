"""Credit approval: who approved a credit, a person's adjustment (who, when, why, and the engine's
own figure), and what the customer was told (``announced_*``: the amount and offer a queued
resolution or credit notice stated; ``corrects``: the amount an announced correction replaced).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
_COLUMNS = (
    ("approved_by", sa.String(200)),
    ("adjusted_by", sa.String(200)),
    ("adjusted_at", TS),
    ("adjust_reason", sa.Text()),
    ("computed_amount", sa.String(40)),
    ("announced_at", TS),
    ("announced_amount", sa.String(40)),
    ("announced_goodwill", sa.Text()),
    ("corrects", sa.String(40)),
)


def upgrade() -> None:
    with op.batch_alter_table("credits") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credits") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
