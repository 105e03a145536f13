"""Every role × every operation, allowed or denied exactly as the policy files say."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vault import AccessDenied, NewCustomer, Order, Vault
from vault.audit import AuditQuery
from vault.cli import cli
from vault.session import Session

ROLES = ("admin", "support", "marketing", "analyst", "auditor", "connector")


def role_purpose(vault: Vault, role: str) -> str:
    """A purpose the role may act for (so the test exercises the action rule, not the purpose)."""
    purposes = vault.policy.roles[role].purposes
    return "administration" if "*" in purposes else sorted(purposes)[0]


def order(customer_id: str) -> Order:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return Order(
        platform="youzan",
        shop="s",
        order_id=f"o-{customer_id}",
        status="paid",
        currency="CNY",
        total_amount=100,
        created_at=now,
        updated_at=now,
        customer_id=customer_id,
    )


OPERATIONS: dict[str, tuple[str, Callable[[Session, str], Any]]] = {
    "get_customer": ("read", lambda s, c: s.get_customer(c)),
    "list_customers": ("read", lambda s, c: s.list_customers()),
    "orders_of": ("read", lambda s, c: s.orders_of(c)),
    "find_customers": ("search", lambda s, c: s.find_customers("phone", "13800138000")),
    "find_by_identity": ("search", lambda s, c: s.find_by_identity("youzan", "yz_1")),
    "add_customer": ("write", lambda s, c: s.add_customer({"name": "新客户"}, source="t")),
    "update_customer": ("write", lambda s, c: s.update_customer(c, {"note": "x"}, source="t")),
    "record_order": ("write", lambda s, c: s.record_order(order(c), source="t")),
    "tag_customers": ("write", lambda s, c: s.tag_customers([c], "vip", source="t")),
    "add_customers": (
        "import",
        lambda s, c: s.add_customers([NewCustomer(fields={"name": "批量"})], source="t"),
    ),
    "key_status": ("keys", lambda s, c: s.key_status()),
    "list_principals": ("principals", lambda s, c: s.list_principals()),
    "audit_query": ("audit", lambda s, c: s.audit_query(AuditQuery(limit=5))),
    "audit_verify": ("audit", lambda s, c: s.audit_verify()),
}


SEARCHED_FIELD = {"find_customers": "phone", "find_by_identity": "platform_id"}


def test_search_by_a_field_the_role_cannot_see_is_denied(world: World) -> None:
    with pytest.raises(AccessDenied, match="field 'id_number' is hidden"):
        world.sessions["support"].find_customers("id_number", "11010519491231002X")


@dataclass
class World:
    vault: Vault
    customer_id: str
    tokens: dict[str, str]
    sessions: dict[str, Session]


@pytest.fixture
def world(initialised: tuple[Vault, str]) -> World:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    customer_id = admin.add_customer(
        {"name": "张三", "phone": "13800138000"}, source="t", identities=[("youzan", "yz_1")]
    )
    tokens = {role: admin.add_principal(f"p-{role}", [role]) for role in ROLES}
    sessions = {
        role: vault.session(tokens[role], purpose=role_purpose(vault, role)) for role in ROLES
    }
    return World(vault, customer_id, tokens, sessions)


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_is_allowed_or_denied_as_the_policy_says(world: World, role: str) -> None:
    session = world.sessions[role]
    policy = world.vault.policy
    for name, (action, call) in OPERATIONS.items():
        expected = policy.decide((role,), action, session.purpose).allowed
        searched = SEARCHED_FIELD.get(name)
        if searched is not None:  # a search also needs the field to be visible to the role
            expected = expected and policy.view((role,), searched, session.purpose) != "hidden"
        if expected:
            call(session, world.customer_id)
        else:
            with pytest.raises(AccessDenied) as refused:
                call(session, world.customer_id)
            assert refused.value.action == action, name
            assert f"p-{role}" in str(refused.value)


def test_a_purpose_the_role_lacks_is_denied(world: World) -> None:
    with pytest.raises(AccessDenied, match="purpose 'marketing_sms'"):
        world.sessions["support"].get_customer(world.customer_id, purpose="marketing_sms")


def test_reading_without_a_purpose_is_denied(initialised: tuple[Vault, str]) -> None:
    vault, token = initialised
    session = vault.session(token)  # no purpose
    with pytest.raises(AccessDenied, match="a purpose is required"):
        session.list_customers()


def test_an_unknown_purpose_is_denied(world: World) -> None:
    with pytest.raises(AccessDenied, match="unknown purpose 'gossip'"):
        world.sessions["admin"].get_customer(world.customer_id, purpose="gossip")


CLI_OPERATIONS = {
    "read": ["customer", "list", "--json"],
    "search": ["customer", "find", "--phone", "13800138000", "--json"],
    "write": ["customer", "add", "--name", "新客户"],
    "keys": ["keys", "status", "--json"],
    "principals": ["principal", "list", "--json"],
    "audit": ["audit", "query", "--limit", "3", "--json"],
}


@pytest.mark.parametrize("role", ROLES)
def test_the_cli_enforces_the_same_matrix(world: World, home: Path, role: str) -> None:
    purpose = role_purpose(world.vault, role)
    for action, args in CLI_OPERATIONS.items():
        expected = world.vault.policy.decide((role,), action, purpose).allowed
        result = CliRunner().invoke(
            cli,
            ["--home", str(home), *args],
            env={"VAULT_TOKEN": world.tokens[role], "VAULT_PURPOSE": purpose},
        )
        if expected:
            assert result.exit_code == 0, (role, action, result.stderr)
        else:
            assert result.exit_code == 1, (role, action, result.output)
            assert "AccessDenied" in result.stderr and "Traceback" not in result.stderr
