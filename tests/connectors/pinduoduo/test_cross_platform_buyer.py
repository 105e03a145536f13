"""One person across two Taobao shops, Pinduoduo and a CSV import ends as one customer.

The sandboxes share their buyer pool (``vault.synthetic.generate_customers(n, seed=...)``), so
buyer *i* of one seed is the same person on both platforms. Taobao links the buyer to the
import through the buyer id the shop's own export carries; Pinduoduo hands out no buyer id,
only masks and ciphertexts, so the link is made the only honest way: the ciphertext decrypted
through the door for an allowed scene, the decrypted phone found by its blind index, and the
two customers merged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.pinduoduo.sandbox import PinduoduoSandbox
from connectors.taobao.sandbox import TaobaoSandbox
from vault.session import Session
from vault.sync.retry import SyncPolicy
from vault.vault import Vault

FAST = SyncPolicy(base_delay=0.01, max_delay=0.05, max_rate_limit_wait=2.0)
SEED = 52  # a seed whose data holds such a person (the data is deterministic)


@pytest.fixture
def platforms() -> Iterator[tuple[TaobaoSandbox, PinduoduoSandbox]]:
    with (
        TaobaoSandbox(seed=SEED, records=250) as taobao,
        PinduoduoSandbox(
            seed=SEED, records=300, buyers=300, span_days=1, decrypt_interval=0.2
        ) as pdd,
    ):
        assert isinstance(taobao, TaobaoSandbox) and isinstance(pdd, PinduoduoSandbox)
        yield taobao, pdd


def test_buyer_of_two_taobao_shops_and_pinduoduo_known_from_a_csv_is_one_customer(
    admin: Session, vault: Vault, platforms: tuple[TaobaoSandbox, PinduoduoSandbox], tmp_path: Path
) -> None:
    taobao, pdd = platforms
    vault.sync_policy = FAST

    def pdd_orders(phone: str) -> list[str]:
        return pdd.orders_of(phone)

    candidates = [
        b
        for b in taobao.buyers
        if not b.privacy_protection
        and {t.shop for t in taobao.trades.values() if t.buyer == b.index} == {0, 1}
        and pdd_orders(b.person.phone)
        and all(pdd.orders[sn].ciphertexts for sn in pdd_orders(b.person.phone))
    ]
    assert candidates, "the seed gives a person in both Taobao shops with Pinduoduo orders"
    buyer = candidates[0]
    phone = buyer.person.phone
    assert pdd.buyer_of(pdd_orders(phone)[0]) == buyer.person  # the same person on both

    export = tmp_path / "crm-export.csv"  # the shop's own export: full phone and buyer id
    export.write_bytes(
        f"姓名,手机号,买家ID\n{buyer.person.name},{phone},{buyer.open_uid}\n".encode("gb18030")
    )
    assert admin.import_file(export).created == 1
    customer_id = admin.find_by_identity("taobao", buyer.open_uid)
    assert customer_id is not None

    admin.configure_connector(
        "taobao", {**taobao.credentials(), "base_url": taobao.url, "settle_seconds": "0"}
    )
    admin.configure_connector(
        "pinduoduo",
        {**pdd.credentials(), "base_url": pdd.url, "history_days": "2", "decrypt_interval": "0.2"},
    )
    admin.sync("taobao")
    admin.sync("pinduoduo")

    # Pinduoduo's buyer is a customer of its own, known by masks and the platform's handles
    pdd_customer = admin.find_by_identity("pinduoduo", f"order:{pdd_orders(phone)[0]}")
    assert pdd_customer is not None and pdd_customer != customer_id
    assert admin.find_customers("phone", phone) == [customer_id]
    decrypted = admin.decrypt_platform_field(
        pdd_customer, "phone", connector="pinduoduo", scene="shipping", purpose="customer_service"
    )
    assert decrypted == f"+86{phone}"
    assert sorted(admin.find_customers("phone", phone)) == sorted([customer_id, pdd_customer])
    admin.merge_customers(customer_id, pdd_customer)

    def check() -> None:
        assert admin.find_customers("phone", phone) == [customer_id]
        customer = admin.get_customer(customer_id, purpose="administration")
        assert customer.get("phone") == f"+86{phone}" and not customer.fields["phone"].masked
        platforms_seen = {i.platform for i in customer.identities}
        assert {"taobao", "taobao_oaid", "pinduoduo"} <= platforms_seen
        assert sum(1 for i in customer.identities if i.platform == "taobao") == 1
        assert sum(1 for i in customer.identities if i.platform == "taobao_oaid") == 2
        orders = admin.orders_of(customer_id)
        taobao_orders = {str(t) for t, trade in taobao.trades.items() if trade.buyer == buyer.index}
        assert {o.order_id for o in orders if o.platform == "taobao"} == taobao_orders
        assert {o.order_id for o in orders if o.platform == "pinduoduo"} == set(pdd_orders(phone))
        assert {o.shop for o in orders if o.platform == "taobao"} == {s.nick for s in taobao.shops}

    check()
    # the shops send the buyer again, masked: still one customer, the full phone kept
    admin.sync("taobao", full=True)
    admin.sync("pinduoduo", full=True)
    check()
