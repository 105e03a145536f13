"""One CLI: one time format (RFC 3339 with offset) in text and JSON, `--json` on every command
that prints, `-` for standard input/output where a file is taken, and an erasure that asks
before it destroys anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from vault import Vault
from vault.cli import cli

ANY_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}[^\s\",)]*")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
NO_OUTPUT_TO_SHAPE = {"demo", "sandbox", "serve"}  # a walkthrough, a server, a server


def run(home: Path, token: str, *args: str, ok: bool = True, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), *args],
        env={"VAULT_TOKEN": token, "VAULT_PURPOSE": "administration"},
        input=stdin,
    )
    if ok:
        assert result.exit_code == 0, (result.output, result.stderr)
    return result


@pytest.fixture
def cli_vault(initialised: tuple[Vault, str], home: Path) -> tuple[Path, str, str]:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    customer_id = admin.add_customer(
        {"name": "张三", "phone": "13800138000"}, source="t", identities=[("youzan", "yz_1")]
    )
    admin.grant_consent(customer_id, "marketing_sms", source="web-form")
    return home, token, customer_id


def test_every_time_printed_is_rfc3339_with_an_offset(cli_vault: tuple[Path, str, str]) -> None:
    home, token, customer_id = cli_vault
    outputs = []
    for args in (
        ["customer", "show", customer_id],
        ["principal", "list"],
        ["keys", "status"],
        ["consent", "show", customer_id],
        ["audit", "query"],
    ):
        outputs.append(run(home, token, *args).stdout)
        outputs.append(run(home, token, *args, "--json").stdout)
    run(home, token, "dsar", "erase", customer_id, "--reason", "T-1", "--yes")
    outputs.append(run(home, token, "dsar", "erasure-status", customer_id).stdout)
    outputs.append(run(home, token, "dsar", "erasure-status", customer_id, "--json").stdout)
    times = [t for text in outputs for t in ANY_TIME.findall(text)]
    assert len(times) > 20
    assert [t for t in times if not RFC3339.fullmatch(t)] == []


def test_text_customer_show_lists_identities(cli_vault: tuple[Path, str, str]) -> None:
    home, token, customer_id = cli_vault
    assert (
        "identity           youzan:yz_1" in run(home, token, "customer", "show", customer_id).stdout
    )


def test_every_command_that_prints_takes_json() -> None:
    missing = []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        elif path[0] not in NO_OUTPUT_TO_SHAPE and "as_json" not in {
            p.name for p in command.params
        }:
            missing.append(" ".join(path))

    walk(cli, [])
    assert missing == []


def test_json_of_public_key_dsar_export_and_tagging(
    cli_vault: tuple[Path, str, str], tmp_path: Path
) -> None:
    home, token, customer_id = cli_vault
    key = json.loads(run(home, token, "audit", "public-key", "--json").stdout)
    assert key["algorithm"] == "Ed25519" and len(key["public_key"]) == 64
    out = tmp_path / "dsar.json"
    summary = json.loads(
        run(home, token, "dsar", "export", customer_id, "-o", str(out), "--json").stdout
    )
    assert summary["fields"] == 2 and summary["output"] == str(out)
    assert json.loads(out.read_text())["customer"]["id"] == customer_id
    to_stdout = run(home, token, "dsar", "export", customer_id, "-o", "-").stdout
    assert json.loads(to_stdout)["customer"]["id"] == customer_id
    tagged = json.loads(run(home, token, "customer", "tag", customer_id, "vip", "--json").stdout)
    assert tagged["tagged"] == 1


def test_a_checkpoint_can_be_verified_from_standard_input(
    cli_vault: tuple[Path, str, str],
) -> None:
    home, token, _ = cli_vault
    checkpoint = run(home, token, "audit", "checkpoint").stdout
    result = run(home, token, "audit", "verify", "--checkpoint", "-", "--json", stdin=checkpoint)
    assert json.loads(result.stdout)["checkpoints"] >= 1


def test_erase_without_a_terminal_needs_yes(cli_vault: tuple[Path, str, str]) -> None:
    home, token, customer_id = cli_vault
    refused = run(home, token, "dsar", "erase", customer_id, "--reason", "T-2", ok=False)
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        "Error: erasing cannot be undone: pass --yes to erase without a terminal to confirm on"
    ]
    assert "张三" in run(home, token, "customer", "show", customer_id).stdout  # untouched


def test_erase_on_a_terminal_asks_first(
    cli_vault: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vault.cli.dsar

    home, token, customer_id = cli_vault
    monkeypatch.setattr(vault.cli.dsar, "on_terminal", lambda: True)
    declined = run(
        home, token, "dsar", "erase", customer_id, "--reason", "T-3", ok=False, stdin="n\n"
    )
    assert declined.exit_code == 1 and "cannot be undone" in declined.stderr
    assert "张三" in run(home, token, "customer", "show", customer_id).stdout
    run(home, token, "dsar", "erase", customer_id, "--reason", "T-3", stdin="y\n")
    gone = run(home, token, "customer", "show", customer_id, ok=False)
    assert gone.exit_code == 1 and "NotFound" in gone.stderr


def test_group_add_and_group_list_ask_for_the_same_things(
    cli_vault: tuple[Path, str, str],
) -> None:
    home, token, _ = cli_vault
    env = {"VAULT_TOKEN": token}  # no VAULT_PURPOSE: neither command needs one
    for args in (
        ["group", "add", "tea", "--rule", "'tea' in categories"],
        ["group", "list"],
        ["group", "add", "tea2", "--rule", "'tea' in categories", "--purpose", "administration"],
        ["group", "list", "--purpose", "administration"],
    ):
        result = CliRunner().invoke(cli, ["--home", str(home), *args], env=env)
        assert result.exit_code == 0, (args, result.output, result.stderr)
