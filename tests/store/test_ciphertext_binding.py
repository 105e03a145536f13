"""A ciphertext copied into another row or field fails to decrypt, loudly."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from vault import DecryptionFailed, Vault
from vault.store.schema import customer_fields


def sealed(vault: Vault, customer_id: str, field: str) -> bytes:
    with vault.engine.connect() as connection:
        return connection.execute(
            select(customer_fields.c.value).where(
                customer_fields.c.customer_id == customer_id, customer_fields.c.field == field
            )
        ).scalar_one()


def overwrite(vault: Vault, customer_id: str, field: str, value: bytes) -> None:
    with vault.transaction() as connection:
        connection.execute(
            update(customer_fields)
            .where(customer_fields.c.customer_id == customer_id, customer_fields.c.field == field)
            .values(value=value)
        )


def test_ciphertext_copied_to_another_customer_fails(vault: Vault) -> None:
    alice = vault.add_customer({"name": "李娜", "phone": "13800138000"}, source="t")
    bob = vault.add_customer({"name": "王芳", "phone": "13900139000"}, source="t")
    overwrite(vault, bob, "phone", sealed(vault, alice, "phone"))
    with pytest.raises(DecryptionFailed) as caught:
        vault.get_customer(bob)
    message = str(caught.value)
    assert "integrity check failed" in message and bob in message and "'phone'" in message
    assert "138" not in message and "李娜" not in message
    assert vault.get_customer(alice).get("phone") == "+8613800138000"


def test_ciphertext_copied_to_another_field_of_same_customer_fails(vault: Vault) -> None:
    alice = vault.add_customer({"name": "李娜", "email": "lina@qq.com"}, source="t")
    overwrite(vault, alice, "name", sealed(vault, alice, "email"))
    with pytest.raises(DecryptionFailed, match="'name'"):
        vault.get_customer(alice)


def test_one_flipped_bit_fails(vault: Vault) -> None:
    alice = vault.add_customer({"name": "李娜"}, source="t")
    damaged = bytearray(sealed(vault, alice, "name"))
    damaged[20] ^= 0x01
    overwrite(vault, alice, "name", bytes(damaged))
    with pytest.raises(DecryptionFailed):
        vault.get_customer(alice)
