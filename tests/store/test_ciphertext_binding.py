"""A ciphertext copied into another row or field fails to decrypt, loudly."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from vault import DecryptionFailed
from vault.session import Session
from vault.store.schema import customer_fields


def sealed(admin: Session, customer_id: str, field: str) -> bytes:
    with admin._vault._engine.connect() as connection:
        return connection.execute(
            select(customer_fields.c.value).where(
                customer_fields.c.customer_id == customer_id, customer_fields.c.field == field
            )
        ).scalar_one()


def overwrite(admin: Session, customer_id: str, field: str, value: bytes) -> None:
    with admin._vault._transaction() as connection:
        connection.execute(
            update(customer_fields)
            .where(customer_fields.c.customer_id == customer_id, customer_fields.c.field == field)
            .values(value=value)
        )


def test_ciphertext_copied_to_another_customer_fails(admin: Session) -> None:
    alice = admin.add_customer({"name": "李娜", "phone": "13800138000"}, source="t")
    bob = admin.add_customer({"name": "王芳", "phone": "13900139000"}, source="t")
    overwrite(admin, bob, "phone", sealed(admin, alice, "phone"))
    with pytest.raises(DecryptionFailed) as caught:
        admin.get_customer(bob)
    message = str(caught.value)
    assert "integrity check failed" in message and bob in message and "'phone'" in message
    assert "138" not in message and "李娜" not in message
    assert admin.get_customer(alice).get("phone") == "+8613800138000"


def test_ciphertext_copied_to_another_field_of_same_customer_fails(admin: Session) -> None:
    alice = admin.add_customer({"name": "李娜", "email": "lina@qq.com"}, source="t")
    overwrite(admin, alice, "name", sealed(admin, alice, "email"))
    with pytest.raises(DecryptionFailed, match="'name'"):
        admin.get_customer(alice)


def test_one_flipped_bit_fails(admin: Session) -> None:
    alice = admin.add_customer({"name": "李娜"}, source="t")
    damaged = bytearray(sealed(admin, alice, "name"))
    damaged[20] ^= 0x01
    overwrite(admin, alice, "name", bytes(damaged))
    with pytest.raises(DecryptionFailed):
        admin.get_customer(alice)
