"""`vault audit query` pages through the log: it used to stop silently at 1,000 rows, oldest
first, with no way to the rest, to the newest, or to the pushes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner, Result

from vault import Vault
from vault.access.policy import ACTIONS
from vault.audit import AuditEvent, AuditQuery
from vault.cli import cli
from vault.cli._core import AUDIT_ACTIONS
from vault.session import Session


def run(home: Path, token: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], env={"VAULT_TOKEN": token})
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def seqs(result: Result) -> list[int]:
    return [int(line.split()[0]) for line in result.stdout.splitlines()]


def test_query_pages_with_after_and_before_and_says_more_on_stderr(
    initialised: tuple[Vault, str], home: Path
) -> None:
    vault, token = initialised
    admin = vault.session(token)
    for i in range(7):
        admin.add_customer({"name": f"客户{i}"}, source="t")  # events 1..7
    first = run(home, token, "audit", "query", "--limit", "3")
    assert seqs(first) == [1, 2, 3]
    assert first.stderr.strip() == "(more: --after 3)"
    second = run(home, token, "audit", "query", "--limit", "3", "--after", "3")
    assert seqs(second) == [4, 5, 6] and "--after 6" in second.stderr
    # the queries are events 8, 9, 10 (each logged after it ran); a last page has no hint
    last = run(home, token, "audit", "query", "--limit", "3", "--after", "6", "--before", "10")
    assert seqs(last) == [7, 8, 9] and last.stderr == ""
    newest = run(home, token, "audit", "query", "--limit", "2", "--newest-first")
    assert seqs(newest) == [10, 9] and newest.stderr.strip() == "(more: --before 9)"
    page = json.loads(
        run(
            home,
            token,
            "audit",
            "query",
            "--limit",
            "2",
            "--newest-first",
            "--before",
            "5",
            "--json",
        ).stdout
    )
    assert [e["seq"] for e in page["events"]] == [4, 3]
    assert (page["more"], page["next_before"], page["next_after"]) == (True, 3, None)


def test_library_pages_the_same_way(admin: Session) -> None:
    for i in range(5):
        admin.add_customer({"name": f"客户{i}"}, source="t")
    query = AuditQuery(action="write", limit=2)
    seen: list[int] = []
    page = admin.audit_page(query)
    while True:
        seen.extend(e["seq"] for e in page.events)
        if not page.more:
            break
        page = admin.audit_page(replace(query, after=page.next_after))
    assert seen == [1, 2, 3, 4, 5]
    newest = admin.audit_page(replace(query, newest_first=True))
    assert [e["seq"] for e in newest.events] == [5, 4] and newest.next_before == 4


def test_help_lists_every_action_and_pushes_are_found_as_such(
    initialised: tuple[Vault, str], home: Path
) -> None:
    assert set(AUDIT_ACTIONS) == {*ACTIONS, "authenticate"}
    help_text = run(home, "", "audit", "query", "--help").stdout
    for action in (*ACTIONS, "authenticate", "push"):
        assert action in help_text
    vault, token = initialised
    admin = vault.session(token)
    admin._record(AuditEvent(action="sync", details={"operation": "pull", "connector": "crm"}))
    admin._record(AuditEvent(action="sync", details={"operation": "push", "connector": "crm"}))
    admin._record(  # the words of a push, but in free text: not a push
        AuditEvent(action="sync", reason='"operation":"push"', details={"operation": "pull"})
    )
    for args in (["--action", "push"], ["--action", "sync", "--operation", "push"]):
        page = json.loads(run(home, token, "audit", "query", *args, "--json").stdout)
        assert [e["details"]["operation"] for e in page["events"]] == ["push"]
    table = run(home, token, "audit", "query", "--action", "push").stdout
    assert len(table.splitlines()) == 1 and " push " in table


def test_table_shows_each_field_clear_or_masked(initialised: tuple[Vault, str], home: Path) -> None:
    vault, token = initialised
    admin = vault.session(token)
    customer_id = admin.add_customer({"name": "张三", "phone": "13800138000"}, source="t")
    admin.add_principal("agent", ["support"], kind="person")
    support = admin.add_principal("agent2", ["support"], kind="person")
    vault.session(support, purpose="customer_service").get_customer(customer_id)
    line = run(home, token, "audit", "query", "--actor", "agent2", "--action", "read").stdout
    assert "phone(masked)" in line and "name(clear)" in line, line


def test_export_events_also_say_clear_or_masked(initialised: tuple[Vault, str], home: Path) -> None:
    import io

    vault, token = initialised
    admin = vault.session(token)
    admin.add_customer({"name": "张三", "phone": "13800138000"}, source="t")
    admin.export("customer_service", io.BytesIO(), fields=["name", "phone"])
    line = run(home, token, "audit", "query", "--action", "export").stdout
    assert "name(clear),phone(clear)" in line, line
