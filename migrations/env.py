"""Alembic environment. The vault passes its engine in ``config.attributes['engine']``; the
``alembic`` command line takes the URL from ``VAULT_DB_URL`` (or ``sqlalchemy.url``)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Engine

from vault.store.engine import make_engine
from vault.store.schema import metadata

config = context.config


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    url = os.environ.get("VAULT_DB_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set VAULT_DB_URL to the database to migrate")
    return make_engine(url)


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
