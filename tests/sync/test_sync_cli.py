"""`vault connectors`, `vault sync`, `vault import`, `vault customer duplicates|merge|unmerge`:
each run as a command, its result checked through the library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sync_toyshop
from click.testing import CliRunner, Result

from vault import Vault
from vault.cli import cli
from vault.session import Session

TOKENS: dict[Path, str] = {}


def run(home: Path, *args: str, ok: bool = True) -> Result:
    env = {"VAULT_TOKEN": TOKENS.get(home, ""), "VAULT_PURPOSE": "administration"}
    result = CliRunner().invoke(cli, ["--home", str(home), *args], env=env)
    if ok:
        assert result.exit_code == 0, (result.output, result.stderr)
    return result


@pytest.fixture
def cli_home(home: Path, db_url: str) -> Path:
    result = run(home, "init", "--db", db_url, "--json")
    TOKENS[home] = json.loads(result.stdout)["admin_token"]
    return home


def library(home: Path) -> tuple[Vault, Session]:
    vault = Vault.open(home)
    return vault, vault.session(TOKENS[home], purpose="administration")


def test_connectors_list_shows_the_file_importer_and_its_capabilities(cli_home: Path) -> None:
    listed = json.loads(run(cli_home, "connectors", "list", "--json").stdout)
    entry = next(c for c in listed["connectors"] if c["name"] == "file_import")
    assert entry["plugin"] == "file_import" and entry["pulls"] == ["customers"]
    assert "name" in run(cli_home, "connectors", "list").stdout  # the table


def test_configure_sync_and_status_never_print_the_secret(
    cli_home: Path, toyshop: sync_toyshop.ToyShopSandbox
) -> None:
    pairs = [f"{k}={v}" for k, v in toyshop.settings().items()]
    configured = run(cli_home, "connectors", "configure", "toyshop", *pairs, "--json")
    assert toyshop.client_secret not in configured.stdout
    shown = run(cli_home, "connectors", "show", "toyshop", "--json")
    assert toyshop.client_secret not in shown.stdout
    synced = run(cli_home, "sync", "toyshop", "--json")
    entry = json.loads(synced.stdout)
    report = entry["report"]
    assert report["created"] == 60 and report["principal"] == "connector-toyshop"
    assert entry["last_run"]["status"] == "ok" and entry["last_run"]["id"] == report["run_id"]
    assert toyshop.client_secret not in synced.stdout + synced.stderr
    summary = run(cli_home, "sync", "toyshop").stdout
    assert "pulled 0" in summary
    status = json.loads(run(cli_home, "sync", "status", "--json").stdout)
    assert status[0]["connector"] == "toyshop" and status[0]["last_run"]["status"] == "ok"
    assert set(status[0]) == set(entry) and status[0]["report"] is None  # one shape
    vault, admin = library(cli_home)
    with vault:
        assert admin.find_by_identity("toyshop", toyshop.customers[0]["id"]) is not None


def test_import_then_duplicates_merge_and_unmerge_from_the_command_line(
    cli_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "客户.csv"
    path.write_bytes(
        "姓名,手机号码,邮箱\n张伟,13800138000,zw@example.cn\n李娜,139,bad\n".encode("gb18030")
    )
    result = run(cli_home, "import", str(path))
    assert "created 1" in result.stdout and "rejected 1" in result.stdout
    assert "gb18030" in result.stdout and ".rejects.csv" in result.stdout
    vault, admin = library(cli_home)
    with vault:
        (first,) = admin.find_customers("phone", "13800138000", purpose="administration")
        second = admin.add_customer({"name": "张伟", "phone": "13800138000"}, source="cli")
    dry = json.loads(run(cli_home, "import", str(path), "--dry-run", "--json").stdout)
    assert dry["dry_run"] is True and dry["queued_for_review"] == 1
    merged = json.loads(run(cli_home, "customer", "merge", first, second, "--json").stdout)
    assert merged["merged"] == second
    assert json.loads(run(cli_home, "customer", "duplicates", "--json").stdout) == []
    assert "is back" in run(cli_home, "customer", "unmerge", second).stdout
    vault, admin = library(cli_home)
    with vault:
        assert admin.get_customer(second, purpose="administration").get("name") == "张伟"
        assert admin.audit_verify().ok


def test_a_connector_error_is_one_line_and_exit_status_1(cli_home: Path) -> None:
    result = run(cli_home, "sync", "nope", ok=False)
    assert result.exit_code == 1 and "no connector named 'nope'" in result.stderr
