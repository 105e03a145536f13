"""``vault demo``: the whole product at work on synthetic customers, in a fresh folder.

Each capability adds its step here, so the first command a new user runs shows everything.
"""

from __future__ import annotations

import random
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vault.consent.demo import consent_and_export_step
from vault.errors import AccessDenied
from vault.records import NewCustomer, Order, OrderItem
from vault.segments.demo import segments_step
from vault.serialise import customer_to_json
from vault.service.demo import http_step
from vault.sync.demo import demo_file_import, demo_shop_sync
from vault.synthetic import SyntheticCustomer, generate_customers
from vault.vault import Vault

Echo = Callable[[str], None]
PRODUCTS = [
    ("tea-001", "西湖龙井 250g", "tea", 16_800),
    ("tea-002", "安溪铁观音 500g", "tea", 12_900),
    ("cup-010", "青花瓷茶杯 4只装", "tableware", 8_900),
    ("set-020", "功夫茶具套装", "tableware", 45_900),
]


def vault_command() -> str:
    """How to run ``vault`` from the user's shell as it is now: plain ``vault`` when that is
    the one on PATH, else the path of this environment's script (a venv not activated), else
    ``python -m vault.cli``. The demo's "try next" lines must run as printed."""
    here = Path(sys.executable).parent / "vault"
    on_path = shutil.which("vault")
    if here.is_file():
        if on_path is not None and Path(on_path).resolve() == here.resolve():
            return "vault"
        return shlex.quote(str(here))
    if on_path is not None:
        return "vault"
    return f"{shlex.quote(sys.executable)} -m vault.cli"


def fresh_directory(base: Path) -> Path:
    for n in range(1, 10_000):
        candidate = base / f"vault-demo-{n}"
        if not candidate.exists():
            return candidate
    raise RuntimeError("no free vault-demo-N folder name")


def differently_written(phone: str) -> str:
    """``13800138000`` → ``+86 138-0013-8000``: the lookup must not care."""
    return f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"


def _record(person: SyntheticCustomer, index: int) -> NewCustomer:
    identities = [("youzan", f"yz_demo_{index:06d}")] if index % 3 == 0 else []
    return NewCustomer(
        fields={
            "name": person.name,
            "phone": person.phone,
            "email": person.email,
            "id_number": person.id_number,
            "address": person.address,
            "birthday": person.birthday,
            "gender": person.gender,
        },
        identities=identities,
    )


def run_demo(directory: Path | None, *, count: int, seed: int, echo: Echo) -> Path:
    home = directory or fresh_directory(Path.cwd())
    echo(f"1. Creating a vault in {home} (SQLite file + local master key file) …")
    vault, token = Vault.init(home)
    with vault:
        echo(f"   admin token (shown once): {token}")
        admin = vault.session(token, purpose="administration")

        people = list(generate_customers(count, seed=seed))
        echo(f"2. Loading {count} synthetic customers: every personal field sealed with the")
        echo("   customer's own AES-256-GCM data key, phone/email/ID number blind-indexed …")
        started = time.perf_counter()
        ids = admin.add_customers((_record(p, i) for i, p in enumerate(people)), source="demo")
        elapsed = time.perf_counter() - started
        echo(f"   {len(ids)} customers in {elapsed:.2f}s")

        rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
        now = datetime.now(UTC).replace(microsecond=0)
        for n, customer_id in enumerate(rng.sample(ids, min(len(ids), 40))):
            product_id, product_name, category, price = rng.choice(PRODUCTS)
            quantity = rng.randint(1, 3)
            created = now - timedelta(days=rng.randint(1, 400))
            admin.record_order(
                Order(
                    platform="youzan",
                    shop="demo-shop",
                    order_id=f"E2026{n:06d}",
                    status="completed",
                    currency="CNY",
                    total_amount=price * quantity,
                    created_at=created,
                    paid_at=created,
                    updated_at=created,
                    items=[
                        OrderItem(
                            product_id=product_id,
                            product_name=product_name,
                            quantity=quantity,
                            unit_price=price,
                            category=category,
                        )
                    ],
                    customer_id=customer_id,
                ),
                source="demo",
            )
        echo("   and 40 orders (purchase history, amounts in fen).")

        target = rng.randrange(len(people))
        written = differently_written(people[target].phone)
        echo(f"3. Finding a customer by phone written as {written!r} (blind index, no decryption):")
        found = admin.find_customers("phone", written)
        assert found == [ids[target]], "the demo lookup must find its customer"
        data = customer_to_json(admin.get_customer(found[0]))
        echo(f"   customer {data['id']}")
        for name in ("name", "phone", "email", "id_number", "address"):
            echo(f"     {name:<10} {data['fields'][name]['value']}")

        status = admin.key_status()
        echo(
            f"4. Master key version {status.active_version} wraps "
            f"{status.versions[-1].data_keys} data keys; `vault keys rotate` rewraps them."
        )

        support_token = admin.add_principal("support-agent", ["support"])
        support = vault.session(support_token, purpose="customer_service")
        seen = customer_to_json(support.get_customer(found[0]))
        echo("5. A support agent (role `support`, purpose customer_service) sees the same customer")
        echo("   with contact data masked and the ID number hidden:")
        for name in ("name", "phone", "email", "address", "id_number"):
            value = seen["fields"].get(name, {}).get("value", "(hidden)")
            echo(f"     {name:<10} {value}")
        try:
            support.get_customer(found[0], purpose="marketing_sms")
        except AccessDenied as refused:
            echo(f"   Reading it for marketing is refused (and audited): {refused.reason}.")

        demo_file_import(admin, home, people[0].phone, echo, step="6.")
        consent_and_export_step(admin, ids, home, echo, seed=seed, step="7.")
        demo_shop_sync(admin, echo, step="8.")
        segments_step(vault, admin, echo, step="9.")
        http_step(vault, support_token, token, written, echo, step="10.")

        report = admin.audit_verify()
        checkpoint = admin.audit_checkpoint()
        echo(
            f"11. Every access above is on the hash-chained audit log: {report.events} events "
            f"verified; checkpoint at event {checkpoint.seq} signed with Ed25519."
        )

    vault_cmd = vault_command()
    echo("")
    echo(f"The vault lives in {home}. Try next:")
    echo(f"  export VAULT_HOME={shlex.quote(str(home))} VAULT_TOKEN={token}")
    for line in (
        f"customer find --phone {shlex.quote(written)} --purpose customer_service",
        f"customer show {ids[target]} --purpose customer_service --json",
        "customer list --limit 5 --purpose administration",
        f"keys rotate && {vault_cmd} keys status",
        f"audit query --action read --limit 5 && {vault_cmd} audit verify",
    ):
        echo(f"  {vault_cmd} {line}")
    echo(f"  VAULT_TOKEN={support_token} \\")
    echo(f"    {vault_cmd} customer show {ids[target]} --purpose customer_service")
    return home
