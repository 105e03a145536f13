"""The CLI is a thin layer: each test runs a command, then checks the result through the library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vault import Vault
from vault.cli import cli
from vault.crypto.keysource import FileKeySource
from vault.session import Session
from vault.store.keystore import SYSTEM_KEY_NAMES

TOKENS: dict[Path, str] = {}


def run(home: Path, *args: str, ok: bool = True, token: str | None = None) -> Result:
    env = {"VAULT_TOKEN": token or TOKENS.get(home, ""), "VAULT_PURPOSE": "administration"}
    result = CliRunner().invoke(cli, ["--home", str(home), *args], env=env)
    if ok:
        assert result.exit_code == 0, (result.output, result.stderr)
    return result


@pytest.fixture
def cli_home(home: Path, db_url: str) -> Path:
    result = run(home, "init", "--db", db_url, "--json")
    token = json.loads(result.stdout)["admin_token"]
    assert token.startswith("vt_") and len(token) > 40
    TOKENS[home] = token
    return home


def library(home: Path) -> Session:
    """The same vault through the library, as the same admin."""
    return Vault.open(home).session(TOKENS[home], purpose="administration")


def test_init_prints_an_admin_token_once_and_stores_only_its_hash(home: Path, db_url: str) -> None:
    result = run(home, "init", "--db", db_url)
    token = result.stdout.split("Admin token")[1].split()[-1]
    with Vault.open(home) as vault, vault._engine.connect() as connection:
        from sqlalchemy import select

        from vault.store.schema import principals

        stored = connection.execute(select(principals.c.token_hash)).scalar_one()
    assert token.encode() not in stored and len(stored) == 32


def test_init_twice_is_refused(cli_home: Path) -> None:
    result = run(cli_home, "init", ok=False)
    assert result.exit_code == 1 and "already a vault" in result.stderr


def test_add_then_show_and_find_by_another_phone_format(cli_home: Path) -> None:
    customer_id = run(
        cli_home,
        "customer",
        "add",
        "--name",
        "张三",
        "--phone",
        "138 0013 8000",
        "--email",
        "Zhang@QQ.com",
        "--set",
        "address=北京市东城区东华门街道1号",
        "--identity",
        "youzan:yz_open_1",
    ).stdout.strip()
    assert library(cli_home).get_customer(customer_id).get("email") == "zhang@qq.com"
    shown = json.loads(run(cli_home, "customer", "show", customer_id, "--json").stdout)
    assert shown["fields"]["name"]["value"] == "张三"
    assert shown["fields"]["phone"]["source"] == "cli"
    for args in (
        ["--phone", "+86 138-0013-8000"],
        ["--email", "zhang@qq.com"],
        ["--platform", "youzan", "--external-id", "yz_open_1"],
    ):
        found = json.loads(run(cli_home, "customer", "find", *args, "--json").stdout)
        assert [c["id"] for c in found] == [customer_id]
    assert "No customer found" in run(cli_home, "customer", "find", "--phone", "13900000000").stdout


def test_list_json_pages(cli_home: Path) -> None:
    ids = [run(cli_home, "customer", "add", "--name", f"客户{i}").stdout.strip() for i in range(3)]
    first = json.loads(run(cli_home, "customer", "list", "--limit", "2", "--json").stdout)
    second = json.loads(
        run(
            cli_home, "customer", "list", "--limit", "2", "--after", first["next_after"], "--json"
        ).stdout
    )
    assert sorted(first["customer_ids"] + second["customer_ids"]) == sorted(ids)
    assert second["next_after"] is None


def test_update_records_new_provenance(cli_home: Path) -> None:
    customer_id = run(cli_home, "customer", "add", "--phone", "13800138000").stdout.strip()
    run(
        cli_home,
        "customer",
        "update",
        customer_id,
        "--set",
        "phone=13900139000",
        "--source",
        "phone-call",
    )
    phone = library(cli_home).get_customer(customer_id).fields["phone"]
    assert (phone.value, phone.source) == ("+8613900139000", "phone-call")


def test_keys_rotate_and_status_json(cli_home: Path) -> None:
    customer_id = run(cli_home, "customer", "add", "--name", "张三").stdout.strip()
    report = json.loads(run(cli_home, "keys", "rotate", "--json").stdout)
    assert report["to_version"] == 2 and report["rewrapped"] == 1 + len(SYSTEM_KEY_NAMES)
    status = json.loads(run(cli_home, "keys", "status", "--json").stdout)
    assert status["active_version"] == 2 and status["rotation_in_progress"] is False
    assert [v["data_keys"] for v in status["versions"]] == [0, 1]
    assert library(cli_home).get_customer(customer_id).get("name") == "张三"


def test_invalid_value_is_one_line_without_the_value(cli_home: Path) -> None:
    result = run(cli_home, "customer", "add", "--phone", "555-not-a-phone", ok=False)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "Error: InvalidValue: invalid value for field 'phone': not a phone number"
    )
    assert "555" not in result.stderr and "Traceback" not in result.stderr


def test_wrong_master_key_exits_non_zero_and_writes_nothing(cli_home: Path) -> None:
    run(cli_home, "customer", "add", "--name", "张三")
    os.unlink(cli_home / "master.key")
    FileKeySource(cli_home / "master.key").create(1)
    result = run(cli_home, "customer", "add", "--name", "李四", ok=False)
    assert result.exit_code == 1 and "wrong master key" in result.stderr
    result = run(cli_home, "customer", "list", "--json", ok=False)
    assert result.exit_code == 1


def test_real_process_prints_no_traceback_unless_debug(tmp_path: Path) -> None:
    env = {**os.environ, "VAULT_HOME": str(tmp_path / "nowhere")}
    command = [sys.executable, "-m", "vault.cli", "customer", "list"]
    plain = subprocess.run(command, capture_output=True, text=True, env=env)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.splitlines()[0].startswith("Error: ConfigError: no vault at")
    debug = subprocess.run(
        [*command[:3], "--debug", *command[3:]], capture_output=True, text=True, env=env
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def audit_events(home: Path, operation: str) -> list[dict[str, object]]:
    from vault.audit import AuditQuery

    events = library(home).audit_query(AuditQuery(action="write"))
    return [e for e in events if e["details"].get("operation") == operation]


def test_tag_and_untag_many_ids_and_a_file_one_audit_event_per_batch(
    cli_home: Path, tmp_path: Path
) -> None:
    ids = [run(cli_home, "customer", "add", "--name", f"客户{i}").stdout.strip() for i in range(5)]
    result = run(cli_home, "customer", "tag", *ids[:3], "vip", "--json")
    assert json.loads(result.stdout) == {
        "tag": "vip",
        "customers": 3,
        "tagged": 3,
        "unchanged": 0,
    }
    listing = tmp_path / "ids.txt"
    listing.write_text("# the rest\n" + "\n".join(ids) + "\n\n")
    result = run(cli_home, "customer", "tag", "--file", str(listing), "vip", "--batch-size", "2")
    assert result.stdout.strip() == "Tagged 2 of 5 customers vip (3 had it)."
    session = library(cli_home)
    assert all("vip" in session.get_customer(cid).tags for cid in ids)
    assert [e["customers"]["count"] for e in audit_events(cli_home, "tag")] == [3, 2, 2, 1]

    stdin = CliRunner().invoke(
        cli,
        ["--home", str(cli_home), "customer", "untag", "--file", "-", "vip", "--json"],
        input="\n".join(ids[1:]) + "\n",
        env={"VAULT_TOKEN": TOKENS[cli_home]},
    )
    assert stdin.exit_code == 0, stdin.output
    assert json.loads(stdin.stdout)["untagged"] == 4
    session = library(cli_home)
    assert ["vip" in session.get_customer(cid).tags for cid in ids] == [True] + [False] * 4
    assert [e["customers"]["count"] for e in audit_events(cli_home, "untag")] == [4]


def test_tagging_an_unknown_id_fails_its_batch_and_tags_none_of_it(cli_home: Path) -> None:
    known = run(cli_home, "customer", "add", "--name", "张三").stdout.strip()
    result = run(cli_home, "customer", "tag", known, "no-such-customer", "vip", ok=False)
    assert result.exit_code == 1 and "no customer for that reference" in result.stderr
    assert "no-such-customer" not in result.stderr  # a non-id is never echoed (issue 14)
    assert "vip" not in library(cli_home).get_customer(known).tags
    result = run(cli_home, "customer", "tag", "vip", ok=False)
    assert result.exit_code == 2 and "give customer ids" in result.stderr
