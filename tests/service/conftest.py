"""A vault with customers and one principal per role, served by a real uvicorn server on a free
loopback port (started here, stopped at the end), and an httpx client for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from vault import Order, OrderItem, Vault
from vault.service import ServiceConfig
from vault.service.server import RunningServer, running
from vault.session import Session

ROLES = ("admin", "support", "marketing", "analyst", "auditor", "connector")
PHONE = "13800138000"


def role_purpose(vault: Vault, role: str) -> str:
    """A purpose the role may act for (so that a test exercises the action rule)."""
    purposes = vault.policy.roles[role].purposes
    return "administration" if "*" in purposes else sorted(purposes)[0]


@dataclass
class World:
    vault: Vault
    admin: Session
    customer_id: str
    tokens: dict[str, str]
    server: RunningServer
    http: httpx.Client

    def headers(self, role: str, purpose: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        chosen = purpose or role_purpose(self.vault, role)
        headers["X-Vault-Purpose"] = chosen
        return headers

    def session(self, role: str, purpose: str | None = None) -> Session:
        return self.vault.session(
            self.tokens[role], purpose=purpose or role_purpose(self.vault, role)
        )


@pytest.fixture
def service_config() -> ServiceConfig:
    return ServiceConfig(rate=0)  # tests that need the rate limit make their own


@pytest.fixture
def world(initialised: tuple[Vault, str], service_config: ServiceConfig) -> Iterator[World]:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    customer_id = admin.add_customer(
        {
            "name": "张三",
            "phone": PHONE,
            "email": "zhang@example.cn",
            "id_number": "11010519491231002X",
        },
        source="t",
        identities=[("youzan", "yz_1")],
    )
    admin.tag_customers([customer_id], "vip", source="t")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    admin.record_order(
        Order(
            platform="youzan",
            shop="s1",
            order_id="E1",
            status="completed",
            currency="CNY",
            total_amount=16_800,
            created_at=at,
            updated_at=at,
            paid_at=at,
            items=[
                OrderItem(product_id="tea-1", product_name="龙井", quantity=1, unit_price=16_800)
            ],
            customer_id=customer_id,
        ),
        source="t",
    )
    tokens = {role: admin.add_principal(f"p-{role}", [role]) for role in ROLES}
    tokens["root"] = token
    with (
        running(vault, service_config) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield World(vault, admin, customer_id, tokens, server, http)
