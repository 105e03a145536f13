"""Run the Alembic migrations that ship with the vault (``migrations/``).

Opening a vault only asks whether the schema is current; that check reads the revision ids from
the migration files and the ``alembic_version`` row with SQLAlchemy, without importing Alembic
(about a third of a second of every CLI command). Alembic runs when a schema changes: ``vault
init``, ``vault migrate`` and the tests. ``tests/store/test_migrations.py`` checks that both
answers agree.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Engine, String, column, inspect, select, table

from vault.errors import MigrationRequired

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps
_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(None|[\"']([^\"']+)[\"'])", re.MULTILINE)


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


@cache
def head_revision() -> str:
    """The newest revision of the shipped migrations: the one no other revision follows.

    Read from the ``revision = ...`` and ``down_revision = ...`` lines of the files; a layout
    that is not one straight line of plain revisions (a merge, a branch) is left to Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in files("migrations").joinpath("versions").iterdir():
        if not path.name.endswith(".py"):
            continue
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return _alembic_head()
        revisions.add(revision.group(1))
        if down.group(2) is not None:
            parents.add(down.group(2))
    heads = revisions - parents
    if len(heads) != 1 or not parents <= revisions:
        return _alembic_head()
    return heads.pop()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for a database Alembic never touched)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        version_num = column("version_num", String)
        statement = select(version_num).select_from(table(VERSION_TABLE))
        versions: list[str] = list(connection.execute(statement).scalars())
    if len(versions) > 1:  # branches: not a layout the vault ships; let Alembic say
        raise MigrationRequired(
            f"database schema has several heads ({', '.join(sorted(versions))}); "
            "run `vault migrate`"
        )
    return versions[0] if versions else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def require_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code was written for."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise MigrationRequired(
            f"database schema is at revision {current or 'none'}, this vault needs {head}"
        )
