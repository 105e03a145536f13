"""Segment logs: the closed purchase logs imported with ``vault import-orders`` and the day
after each one's last order, the as-of day recency is measured to in a vault holding only them.

Times need no migration: every time column stays ``DateTime(timezone=True)`` in the database;
``vault.store.types.UTCDateTime`` normalises to UTC before SQLite writes the digits.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_logs",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_segment_logs")),
    )


def downgrade() -> None:
    op.drop_table("segment_logs")
