"""The database schema (SQLAlchemy Core). Changed only together with an Alembic migration.

``tests/store/test_migrations.py`` compares these tables with what the migrations build, so the
two cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from vault.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

CUSTOMER_ID_MAX = 36  # a UUID
CUSTOMER_ID = String(CUSTOMER_ID_MAX)
SOURCE = String(64)
TS = UTCDateTime()  # every time column: an instant, the same on SQLite and PostgreSQL

master_keys = Table(
    "master_keys",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("source", String(16), nullable=False),
    Column("check_value", LargeBinary, nullable=False),
    Column("salt", LargeBinary, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("retired_at", TS, nullable=True),
)

system_keys = Table(
    "system_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_version", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", CUSTOMER_ID, primary_key=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("dek_version", Integer, nullable=False),
    Column("wrapped_dek", LargeBinary, nullable=True),  # NULL once crypto-shredded
    Column("kek_version", Integer, nullable=True, index=True),
    Column("erased_at", TS, nullable=True),
)

customer_fields = Table(
    "customer_fields",
    metadata,
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("field", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),  # sealed if the field is encrypted
    Column("blind_index", LargeBinary, nullable=True),
    Column("masked", Boolean, nullable=False),
    Column("source", SOURCE, nullable=False),
    Column("observed_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # Only searchable values have an index entry; SQLite clusters the rows by primary key.
    Index(
        "ix_customer_fields_lookup",
        "field",
        "blind_index",
        sqlite_where=text("blind_index IS NOT NULL"),
        postgresql_where=text("blind_index IS NOT NULL"),
    ),
    sqlite_with_rowid=False,
)

customer_identities = Table(
    "customer_identities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("platform", String(32), nullable=False),
    Column("external_index", LargeBinary, nullable=False),
    Column("external_id", LargeBinary, nullable=False),  # sealed
    Column("source", SOURCE, nullable=False),
    Column("observed_at", TS, nullable=False),
    UniqueConstraint("platform", "external_index"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("platform", String(32), nullable=False),
    Column("shop", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_amount", BigInteger, nullable=False),  # integer minor units
    Column("created_at", TS, nullable=False),
    Column("paid_at", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
    Column("refunded_at", TS, nullable=True),
    Column("source", SOURCE, nullable=False),
    UniqueConstraint("platform", "shop", "order_id"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "order_pk", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("line_no", Integer, nullable=False),
    Column("product_id", String(128), nullable=False),
    Column("product_name", String(500), nullable=False),
    Column("category", String(128), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(32), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("text", LargeBinary, nullable=True),  # sealed
    Column("source", SOURCE, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)

customer_tags = Table(
    "customer_tags",
    metadata,
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag_id", Integer, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("source", SOURCE, nullable=False),
    Column("created_at", TS, nullable=False),
)

customer_groups = Table(
    "customer_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("rule", Text, nullable=True),  # NULL: a manual group
    Column("created_at", TS, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column(
        "group_id", Integer, ForeignKey("customer_groups.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("added_at", TS, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # person | service
    Column("roles", Text, nullable=False),  # comma-separated role names
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
)

# --- audit log (migration 0002) -----------------------------------------------------------------

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", TS, nullable=False, index=True),
    Column("actor", String(128), nullable=False, index=True),
    Column("action", String(32), nullable=False, index=True),
    Column("purpose", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("customer_count", Integer, nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("body", LargeBinary, nullable=False),  # the canonical record; the hash covers it
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    # HMAC of ``hash`` under a key derived from the signing key (migration 0009); NULL before it
    Column("mac", LargeBinary, nullable=True),
)

audit_event_customers = Table(
    "audit_event_customers",
    metadata,
    Column("customer_id", CUSTOMER_ID, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", LargeBinary, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("head_hash", LargeBinary, nullable=False),
    Column("at", String(32), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

# --- consent, erasure, suppression (migration 0003) ---------------------------------------------

consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", CUSTOMER_ID, nullable=False, index=True),
    Column("purpose", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # granted | withdrawn
    Column("at", TS, nullable=False),  # when the customer granted or withdrew
    Column("recorded_at", TS, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("evidence", String(256), nullable=True),  # a reference, never a copy of PII
    Column("recorded_by", String(128), nullable=False),
)

consent_state = Table(
    "consent_state",
    metadata,
    Column("customer_id", CUSTOMER_ID, primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("at", TS, nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("event_id", Integer, nullable=False),
    Index("ix_consent_state_purpose_state", "purpose", "state"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(64), nullable=False),  # phone | email | id_number | identity:<platform>
    Column("digest", LargeBinary, nullable=False),
    Column("erased_at", TS, nullable=False),
    Index("ix_suppressions_lookup", "kind", "digest"),
)

erasure_requests = Table(
    "erasure_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", CUSTOMER_ID, nullable=False, index=True),  # the tombstone id
    Column("system", String(64), nullable=False),
    Column("external_id", LargeBinary, nullable=True),  # sealed under the erasure key
    Column("requested_at", TS, nullable=False),
    Column("status", String(16), nullable=False),  # pending | done | failed
    Column("done_at", TS, nullable=True),
    Column("detail", String(256), nullable=True),
)

# --- connectors and the sync engine (migration 0004) --------------------------------------------

connector_settings = Table(
    "connector_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),  # JSON of the settings, AES-GCM sealed
    Column("principal", String(128), nullable=False),  # the connector's service principal
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("stream", String(32), primary_key=True),
    Column("cursor", Text, nullable=False),  # the connector's own JSON; never PII
    Column("complete", Boolean, nullable=False),  # the stream was caught up at this cursor
    Column("batches", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("connector", String(64), nullable=False, index=True),
    Column("principal", String(128), nullable=False),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
    Column("status", String(16), nullable=False),  # running | ok | failed | dry-run
    Column("full", Boolean, nullable=False),
    Column("counts", Text, nullable=False),  # JSON of the report's counts
    Column("error", String(512), nullable=True),  # error type and message: never a value
)

customer_sources = Table(
    "customer_sources",
    metadata,
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("source", SOURCE, primary_key=True),
    Column("fields", Text, nullable=False),  # comma-separated field names this source gave
    Column("first_seen_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
)

duplicate_reviews = Table(
    "duplicate_reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_a", CUSTOMER_ID, nullable=False, index=True),
    Column("customer_b", CUSTOMER_ID, nullable=False, index=True),
    Column("reason", String(128), nullable=False),  # which identifiers they share: never values
    Column("source", SOURCE, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("status", String(16), nullable=False),  # open | merged | dismissed
    Column("resolved_at", TS, nullable=True),
    Column("resolved_by", String(128), nullable=True),
    UniqueConstraint("customer_a", "customer_b"),
)

merge_records = Table(
    "merge_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("survivor_id", CUSTOMER_ID, nullable=False, index=True),
    Column("merged_id", CUSTOMER_ID, nullable=False, index=True),
    Column("merged_at", TS, nullable=False),
    Column("merged_by", String(128), nullable=False),
    Column("snapshot", LargeBinary, nullable=False),  # sealed under the survivor's data key
    Column("undone_at", TS, nullable=True),
    Column("undone_by", String(128), nullable=True),
)

platform_handles = Table(
    "platform_handles",
    metadata,
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("field", String(64), primary_key=True),
    Column("platform", String(32), primary_key=True),
    Column("handle", LargeBinary, nullable=False),  # the platform's ciphertext, sealed again
    Column("observed_at", TS, nullable=False),
)

push_state = Table(
    "push_state",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", LargeBinary, nullable=False),  # keyed hash of what was last pushed
    Column("pushed_at", TS, nullable=False),
)

# --- pushed values (migration 0007) -------------------------------------------------------------

pushed_values = Table(
    "pushed_values",
    metadata,
    # What the vault last pushed to a connected system, per customer and field, as a keyed hash
    # (vault.sync.echoes): a value the system returns that matches it is the vault's own echo.
    # Keyed by customer first, so an erasure's delete by customer_id and a page's lookup by
    # (customer_id IN ..., connector) both use the primary key.
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("connector", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("digest", LargeBinary, nullable=False),
    Column("pushed_at", TS, nullable=False),
)

# --- platform decryption (migration 0006) -------------------------------------------------------

platform_decrypt_usage = Table(
    "platform_decrypt_usage",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("scene", String(32), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD in UTC
    Column("calls", Integer, nullable=False),  # requests that reached the platform
    Column("decrypted", Integer, nullable=False),  # values the platform decrypted
    Column("denied", Integer, nullable=False),  # requests the vault refused (no call made)
    Column("updated_at", TS, nullable=False),
)

# --- segments (migration 0005) ------------------------------------------------------------------

customer_segments = Table(
    "customer_segments",
    metadata,
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("first_day", Date, nullable=False),  # purchase days in the segment rules' time zone
    Column("last_day", Date, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("purchase_days", Integer, nullable=False),
    Column("total_amount", BigInteger, nullable=False),  # minor units
    Column("first_day_amount", BigInteger, nullable=False),
    Column("r_score", SmallInteger, nullable=True),
    Column("f_score", SmallInteger, nullable=True),
    Column("m_score", SmallInteger, nullable=True),
    Column("tier", String(64), nullable=True, index=True),
    Column("stage", String(64), nullable=True, index=True),
    Column("as_of", Date, nullable=False),  # the day recency was measured to
    Column("updated_at", TS, nullable=False),
)

customer_regions = Table(
    "customer_regions",
    metadata,
    Column(
        "customer_id",
        CUSTOMER_ID,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Derived from the address when it is written; the address itself stays sealed.
    Column("province_code", String(2), nullable=False),
    Column("city_code", String(4), nullable=True),
)

segment_cuts = Table(
    "segment_cuts",
    metadata,
    Column("metric", String(1), primary_key=True),  # r | f | m
    Column("position", SmallInteger, primary_key=True, autoincrement=False),  # 1..4
    Column("value", BigInteger, nullable=False),
    Column("computed_at", TS, nullable=False),
)

# A closed purchase log imported with `vault import-orders` (migration 0008): recency in a vault
# holding only such logs is measured to the day after the log's last order (vault.segments).
segment_logs = Table(
    "segment_logs",
    metadata,
    Column("source", SOURCE, primary_key=True),  # the orders' source, e.g. import:online-retail
    Column("last_day", Date, nullable=False),  # the last order's day in the rules' time zone
    Column("as_of", Date, nullable=False),  # the day after it
    Column("recorded_at", TS, nullable=False),
)

Index("ix_group_members_customer_id", group_members.c.customer_id)
