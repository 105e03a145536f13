"""The test fixtures' migrated template (tests/conftest.py) gives what the migrations give."""

from __future__ import annotations

import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, TemplateMigrate
from vault import Vault
from vault.store import migrate
from vault.store.engine import make_engine
from vault.store.schema import metadata


def test_a_vault_made_from_the_template_matches_the_models_at_head(home: Path, db_url: str) -> None:
    vault, _ = Vault.init(home, db_url=db_url)
    vault.close()
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_a_recycled_postgres_schema_holds_nothing_of_the_test_before(
    tmp_path: Path, pg_schema_url: str, template_migrate: TemplateMigrate
) -> None:
    first, token = Vault.init(tmp_path / "first", db_url=pg_schema_url)
    with first:
        admin = first.session(token, purpose="administration")
        admin.add_customer({"name": "张三", "phone": "+8613800138000"}, source="test")
    schema = make_url(pg_schema_url).query["options"].removeprefix("-csearch_path=")
    admin_engine = create_engine(PG_URL)
    try:
        assert template_migrate.recycle(admin_engine, schema)
        second_schema = f"t_{uuid.uuid4().hex[:16]}"
        with admin_engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{second_schema}"'))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={second_schema}"})
        second_url = url.render_as_string(hide_password=False)
        second, second_token = Vault.init(tmp_path / "second", db_url=second_url)
        with second:
            session = second.session(second_token, purpose="administration")
            assert session.list_customers().customer_ids == []
            report = session.audit_verify()
            assert report.ok and report.events <= 2, report  # the new vault's own events only
    finally:
        with admin_engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{second_schema}" CASCADE'))
        admin_engine.dispose()
