"""The CLI starts quickly: `vault --help` and a one-customer command load only what they use.

Every command used to import FastAPI, uvicorn and Alembic (1.3-2.2 s a call: tagging 20
customers took 93 s). The sets below are pinned in a fresh process, because the test process
itself has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault.store import migrate
from vault.store.engine import make_engine

NEVER_AT_START = ("fastapi", "uvicorn", "alembic", "openpyxl", "httpx", "pydantic")
NOT_FOR_HELP = (*NEVER_AT_START, "sqlalchemy", "structlog", "rich", "cryptography")

PROBE = """
import json, sys
from vault.cli import main
sys.argv = ["vault", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
sys.stdout.flush()
print("\\n" + json.dumps({"exit": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def imported_by(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run `vault ARGS` in a new interpreter; its exit status and the top-level packages loaded."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    last = json.loads(result.stdout.strip().splitlines()[-1])
    return last["exit"], set(last["modules"])


def test_help_loads_neither_the_store_nor_the_service() -> None:
    code, modules = imported_by("--help")
    assert code == 0
    assert modules.isdisjoint(NOT_FOR_HELP), sorted(modules & set(NOT_FOR_HELP))
    code, modules = imported_by("customer", "tag", "--help")
    assert code == 0
    assert modules.isdisjoint(NOT_FOR_HELP), sorted(modules & set(NOT_FOR_HELP))


def test_a_simple_command_loads_no_service_no_migrations_no_http(home: Path, db_url: str) -> None:
    from vault import Vault

    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        customer_id = vault.session(token).add_customer({"name": "张三"}, source="t")
    env = {"VAULT_HOME": str(home), "VAULT_TOKEN": token}
    code, modules = imported_by("customer", "tag", customer_id, "vip", env=env)
    assert code == 0
    assert modules.isdisjoint(NEVER_AT_START), sorted(modules & set(NEVER_AT_START))
    with Vault.open(home) as vault:
        assert (
            "vip" in vault.session(token, purpose="administration").get_customer(customer_id).tags
        )


def test_constants_repeated_for_start_up_match_their_source() -> None:
    from vault.cli import segments as cli_segments
    from vault.cli import serve as cli_serve
    from vault.segments.importer import FORMATS
    from vault.service import config

    assert cli_segments.ORDER_LOG_FORMATS == FORMATS

    assert cli_serve.DEFAULT_RATE == config.DEFAULT_RATE
    assert cli_serve.DEFAULT_BURST == config.DEFAULT_BURST
    assert cli_serve.DEFAULT_MAX_BODY_BYTES == config.DEFAULT_MAX_BODY_BYTES


def test_quick_schema_check_agrees_with_alembic(db_url: str) -> None:
    from alembic.runtime.migration import MigrationContext

    assert migrate.head_revision() == migrate._alembic_head()
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) is None
        for revision in ("0001", "0005", "head"):
            migrate.upgrade(engine, revision)
            with engine.connect() as connection:
                expected = MigrationContext.configure(connection).get_current_revision()
            assert migrate.current_revision(engine) == expected
        migrate.require_current(engine)
        migrate.downgrade(engine, "0006")
        with pytest.raises(migrate.MigrationRequired, match="at revision 0006"):
            migrate.require_current(engine)
    finally:
        engine.dispose()
