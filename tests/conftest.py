"""Shared fixtures. Every test that touches the store runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``VAULT_TEST_PG_URL`` (default: the local server, database ``test``); each
test gets a schema of its own. Where PostgreSQL is unreachable the PostgreSQL variants skip with
the reason, except under ``CI=true``, where they fail: CI never silently skips them.

A new vault is not migrated step by step in every test: each worker runs the migrations once per
database kind, into a template, and ``Vault.init`` copies the template into the test's empty
database (SQLite: the backup API copies the migrated file; PostgreSQL: the template schema's dump
is replayed into the test's schema). The migrations themselves are tested in
``tests/store/test_migrations.py``, which calls ``vault.store.migrate`` directly.
``VAULT_TEST_MIGRATE=1`` turns the copy off.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

import vault.vault as vault_module
from vault import Vault
from vault.session import Session
from vault.store import migrate
from vault.store.engine import make_engine

PG_URL = os.environ.get("VAULT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


@cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as error:
        where = make_url(PG_URL).render_as_string()
        return f"PostgreSQL at {where} is unreachable: {type(error).__name__}"
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI requires PostgreSQL: {reason}")
    pytest.skip(reason)


class TemplateMigrate:
    """Stands in for ``vault.store.migrate`` inside ``vault.vault``: ``upgrade`` of an empty
    database to head copies this worker's migrated template instead of running the migrations.

    SQLite: the backup API copies a migrated file into the test's database. PostgreSQL: a
    migrated schema of this worker's pool is renamed to the test's (empty) schema; the pool is
    refilled when a test ends by emptying its schema (the template's rows put back) and renaming
    it back, or, when the pool is empty, by replaying the template's dump. Anything else (a
    partial upgrade, a database that holds tables) runs the real migrations.
    """

    require_current = staticmethod(migrate.require_current)

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._sqlite: Path | None = None
        self._pg: _PostgresTemplate | bool | None = None
        self._pool: list[str] = []

    def upgrade(self, engine: Engine, revision: str = "head") -> None:
        if revision != "head" or inspect(engine).get_table_names():
            migrate.upgrade(engine, revision)
        elif engine.dialect.name == "sqlite":
            self._copy_sqlite(engine)
        elif engine.dialect.name == "postgresql" and (template := self._postgres()) is not None:
            self._copy_postgres(engine, template)
        else:
            migrate.upgrade(engine, revision)

    def _copy_sqlite(self, engine: Engine) -> None:
        if self._sqlite is None:
            path = self.workdir / "template.db"
            template = make_engine(f"sqlite:///{path}")
            migrate.upgrade(template)
            template.dispose()
            self._sqlite = path
        source = sqlite3.connect(self._sqlite)
        try:
            with engine.connect() as connection:
                source.backup(connection.connection.driver_connection)  # type: ignore[arg-type]
        finally:
            source.close()

    def _postgres(self) -> _PostgresTemplate | None:
        if self._pg is None:
            self._pg = _PostgresTemplate.dump() or False
        return self._pg or None

    def _copy_postgres(self, engine: Engine, template: _PostgresTemplate) -> None:
        with engine.begin() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            driver: Any = connection.connection.driver_connection
            if self._pool:
                pooled = self._pool.pop()
                driver.execute(
                    f'DROP SCHEMA "{schema}"; ALTER SCHEMA "{pooled}" RENAME TO "{schema}"'
                )
            else:
                driver.execute(template.script.replace("{schema}", schema))

    def recycle(self, admin: Engine, schema: str) -> bool:
        """Empty ``schema`` back to the template and keep it in the pool; False when it is not
        a vault schema at head (a migration test's) or cannot be emptied now."""
        template = self._pg if isinstance(self._pg, _PostgresTemplate) else None
        if template is None:
            return False
        try:
            with admin.begin() as connection:
                connection.execute(text("SET LOCAL lock_timeout = '2s'"))
                tables = connection.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    ),
                    {"s": schema},
                ).scalars()
                if set(tables) != set(template.tables):
                    return False
                if _shape(connection, schema) != template.shape:
                    return False  # a test changed a column, or added a trigger: dropped
                version = connection.execute(
                    text(f'SELECT version_num FROM "{schema}".alembic_version')  # noqa: S608
                ).scalar_one_or_none()
                if version != migrate.head_revision():
                    return False
                pooled = f"pool_{uuid.uuid4().hex[:16]}"
                driver: Any = connection.connection.driver_connection
                driver.execute(template.reset.replace("{schema}", schema))
                driver.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{pooled}"')
        except Exception:
            return False
        self._pool.append(pooled)
        return True

    def close(self) -> None:
        if not self._pool:
            return
        admin = create_engine(PG_URL)
        with admin.begin() as connection:
            for schema in self._pool:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class _PostgresTemplate:
    """The migrated schema as SQL (its name a ``{schema}`` placeholder): the whole ``script``,
    its ``tables`` and the ``reset`` that empties a used copy back to the template's rows."""

    def __init__(self, script: str, shape: str) -> None:
        self.script = script
        self.shape = shape  # what a used copy must still be to go back to the pool
        self.tables = re.findall(r"^CREATE TABLE \{schema\}\.(\w+) \(", script, re.MULTILINE)
        rows = [
            line
            for line in script.splitlines()
            if line.startswith(("INSERT INTO ", "SELECT pg_catalog.setval("))
        ]
        self.reset = "\n".join(
            [
                "SET LOCAL session_replication_role = replica;",  # no FK order to respect
                *(f"DELETE FROM {{schema}}.{table};" for table in self.tables),  # noqa: S608
                *rows,
            ]
        )

    @classmethod
    def dump(cls) -> _PostgresTemplate | None:
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            return None
        schema = f"vault_template_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
            template = make_engine(url.render_as_string(hide_password=False))
            migrate.upgrade(template)
            template.dispose()
            with admin.connect() as connection:
                shape = _shape(connection, schema)
            libpq = make_url(PG_URL).set(drivername="postgresql")
            dumped = subprocess.run(
                [
                    pg_dump,
                    "--schema",
                    schema,
                    "--inserts",
                    "--no-owner",
                    "--no-privileges",
                    "--dbname",
                    libpq.render_as_string(hide_password=False),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        if dumped.returncode != 0:
            return None
        # Left out: psql meta-commands (pg_dump 15.14+ writes \restrict), session settings
        # (they would outlive the copy on a pooled connection) and the schema, which exists.
        kept = [
            line
            for line in dumped.stdout.splitlines()
            if not re.match(r"(SET |SELECT pg_catalog.set_config|CREATE SCHEMA |\\)", line)
        ]
        return cls("\n".join(kept).replace(schema, "{schema}"), shape)


_SHAPE = text(
    """
    SELECT string_agg(replace(item, :s, '{schema}'), '|' ORDER BY item) FROM (
      SELECT 'c:' || table_name || '.' || column_name || ':' || data_type || ':'
             || is_nullable::text || ':' || coalesce(column_default, '') AS item
        FROM information_schema.columns WHERE table_schema = :s
      UNION ALL SELECT 'r:' || c.relname || ':' || c.relkind::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s
      UNION ALL SELECT 'i:' || indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = :s
      UNION ALL SELECT 'k:' || conname || ':' || pg_get_constraintdef(k.oid) FROM pg_constraint k
        JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = :s
      UNION ALL SELECT 'f:' || p.proname::text || ':' || md5(p.prosrc) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s
      UNION ALL SELECT 't:' || t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :s AND NOT t.tgisinternal
    ) AS items
    """
)


def _shape(connection: Any, schema: str) -> str:
    """The schema's columns, relations, indexes, constraints, functions and triggers, as one
    string with the schema's name taken out: a pooled copy must match the template's."""
    return str(connection.execute(_SHAPE, {"s": schema}).scalar_one() or "")


@pytest.fixture(scope="session")
def template_migrate() -> Iterator[TemplateMigrate]:
    workdir = Path(tempfile.mkdtemp(prefix="vault-template-"))
    migrator = TemplateMigrate(workdir)
    try:
        yield migrator
    finally:
        migrator.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg_schema_url(template_migrate: TemplateMigrate) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty PostgreSQL schema, dropped (or, when a vault
    was made in it, emptied into the template pool) afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        if not template_migrate.recycle(admin, schema):
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _init_copies_the_migrated_template(
    template_migrate: TemplateMigrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Vault.init`` (also through the CLI in this process) copies the migrated template."""
    if os.environ.get("VAULT_TEST_MIGRATE") != "1":
        monkeypatch.setattr(vault_module, "migrate", template_migrate)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def initialised(home: Path, db_url: str) -> Iterator[tuple[Vault, str]]:
    """A new vault and its admin token."""
    vault, token = Vault.init(home, db_url=db_url)
    try:
        yield vault, token
    finally:
        vault.close()


@pytest.fixture
def vault(initialised: tuple[Vault, str]) -> Vault:
    return initialised[0]


@pytest.fixture
def admin(initialised: tuple[Vault, str]) -> Session:
    """The first admin's session, acting for the administration purpose."""
    vault, token = initialised
    return vault.session(token, purpose="administration")


@pytest.fixture
def full_pull_orders(db_url: str) -> int:
    """Orders in a connector's "full pull of 20,000 orders" test.

    The 20,000 of the issue run on SQLite. On PostgreSQL the same test runs at 4,000 (or
    ``VAULT_TEST_PG_FULL_PULL``): the engine's per-record cost makes 20,000 there take longer
    than the rest of the suite together, and what the test proves (every order once, statuses
    applied, an incremental pull of the recent window only) does not depend on the size.
    """
    if db_url.startswith("postgresql"):
        return int(os.environ.get("VAULT_TEST_PG_FULL_PULL", "4000"))
    return 20_000
