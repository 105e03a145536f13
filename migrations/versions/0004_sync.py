"""Connectors and the sync engine: settings, cursors, runs, provenance by source, duplicate
reviews, reversible merges, platform handles, push state.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
CUSTOMER_ID = sa.String(length=36)


def _customer_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["customer_id"],
        ["customers.id"],
        name=op.f(f"fk_{table}_customer_id_customers"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "connector_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connector_settings")),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("connector", "stream", name=op.f("pk_sync_cursors")),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("error", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_runs_connector"), ["connector"], unique=False)
    op.create_table(
        "customer_sources",
        sa.Column("customer_id", CUSTOMER_ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        _customer_fk("customer_sources"),
        sa.PrimaryKeyConstraint("customer_id", "source", name=op.f("pk_customer_sources")),
    )
    op.create_table(
        "duplicate_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_a", CUSTOMER_ID, nullable=False),
        sa.Column("customer_b", CUSTOMER_ID, nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_reviews")),
        sa.UniqueConstraint(
            "customer_a", "customer_b", name=op.f("uq_duplicate_reviews_customer_a_customer_b")
        ),
    )
    with op.batch_alter_table("duplicate_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_duplicate_reviews_customer_a"), ["customer_a"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_duplicate_reviews_customer_b"), ["customer_b"], unique=False
        )
    op.create_table(
        "merge_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survivor_id", CUSTOMER_ID, nullable=False),
        sa.Column("merged_id", CUSTOMER_ID, nullable=False),
        sa.Column("merged_at", TS, nullable=False),
        sa.Column("merged_by", sa.String(length=128), nullable=False),
        sa.Column("snapshot", sa.LargeBinary(), nullable=False),
        sa.Column("undone_at", TS, nullable=True),
        sa.Column("undone_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_records")),
    )
    with op.batch_alter_table("merge_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_merge_records_survivor_id"), ["survivor_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_merge_records_merged_id"), ["merged_id"], unique=False)
    op.create_table(
        "platform_handles",
        sa.Column("customer_id", CUSTOMER_ID, nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("handle", sa.LargeBinary(), nullable=False),
        sa.Column("observed_at", TS, nullable=False),
        _customer_fk("platform_handles"),
        sa.PrimaryKeyConstraint(
            "customer_id", "field", "platform", name=op.f("pk_platform_handles")
        ),
    )
    op.create_table(
        "push_state",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("customer_id", CUSTOMER_ID, nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("pushed_at", TS, nullable=False),
        _customer_fk("push_state"),
        sa.PrimaryKeyConstraint("connector", "customer_id", name=op.f("pk_push_state")),
    )


def downgrade() -> None:
    op.drop_table("push_state")
    op.drop_table("platform_handles")
    with op.batch_alter_table("merge_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merge_records_merged_id"))
        batch_op.drop_index(batch_op.f("ix_merge_records_survivor_id"))
    op.drop_table("merge_records")
    with op.batch_alter_table("duplicate_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_reviews_customer_b"))
        batch_op.drop_index(batch_op.f("ix_duplicate_reviews_customer_a"))
    op.drop_table("duplicate_reviews")
    op.drop_table("customer_sources")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_runs_connector"))
    op.drop_table("sync_runs")
    op.drop_table("sync_cursors")
    op.drop_table("connector_settings")
