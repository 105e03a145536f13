from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.crypto import CustomerCipher, Keyring
from vault.crypto._hazmat import HEADER_BYTES, SUITE_AES256_GCM, AeadKey
from vault.errors import DecryptionFailed, KeyUnavailable

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "field-v1.json").read_text())


def cipher(customer_id: str = "c-1", dek: bytes = b"\x01" * 32) -> CustomerCipher:
    return CustomerCipher(customer_id, dek, 1)


@given(st.text())
def test_any_unicode_value_round_trips(value: str) -> None:
    c = cipher()
    assert c.open("note", c.seal("note", value.encode())).decode() == value


@pytest.mark.parametrize("value", ["", "张三", "欧阳娜娜", "👩‍👩‍👧‍👦 emoji", "北京市东城区" * 400])
def test_chinese_emoji_empty_and_long_values_round_trip(value: str) -> None:
    c = cipher()
    assert c.open("address", c.seal("address", value.encode())).decode() == value


def test_ciphertext_moved_to_other_field_fails() -> None:
    c = cipher()
    sealed = c.seal("phone", b"+8613800138000")
    with pytest.raises(DecryptionFailed) as caught:
        c.open("email", sealed)
    assert "email" in str(caught.value) and "138" not in str(caught.value)


def test_ciphertext_moved_to_other_customer_fails_even_with_same_key() -> None:
    sealed = cipher("c-1").seal("phone", b"+8613800138000")
    with pytest.raises(DecryptionFailed):
        cipher("c-2").open("phone", sealed)


def test_relabelled_key_version_fails() -> None:
    c = cipher()
    sealed = bytearray(c.seal("phone", b"x"))
    sealed[4] ^= 0x02  # key version is bytes 1..4 of the header
    with pytest.raises(DecryptionFailed):
        c.open("phone", bytes(sealed))


@pytest.mark.parametrize("damage", ["flip_tag", "truncate", "unknown_suite", "empty"])
def test_every_damaged_ciphertext_raises_the_same_error(damage: str) -> None:
    c = cipher()
    sealed = bytearray(c.seal("name", "张三".encode()))
    if damage == "flip_tag":
        sealed[-1] ^= 1
    elif damage == "truncate":
        del sealed[HEADER_BYTES + 3 :]
    elif damage == "unknown_suite":
        sealed[0] = 0x7F
    else:
        sealed.clear()
    with pytest.raises(DecryptionFailed):
        c.open("name", bytes(sealed))


def test_ciphertext_header_names_suite_and_key_version() -> None:
    sealed = CustomerCipher("c-1", b"\x02" * 32, 7).seal("name", b"x")
    assert sealed[0] == SUITE_AES256_GCM
    assert int.from_bytes(sealed[1:5], "big") == 7


@pytest.mark.parametrize("vector", VECTORS["field"], ids=lambda v: v["description"])
def test_field_format_is_pinned_by_vectors(vector: dict[str, str]) -> None:
    key = AeadKey(bytes.fromhex(vector["key"]))
    context = (
        b"vault:field:v1\x00" + vector["customer_id"].encode() + b"\x00" + vector["field"].encode()
    )
    sealed = key._seal_with_nonce(
        vector["plaintext"].encode(),
        context,
        int(vector["key_version"]),
        bytes.fromhex(vector["nonce"]),
    )
    assert sealed.hex() == vector["sealed"]
    c = CustomerCipher(
        vector["customer_id"], bytes.fromhex(vector["key"]), int(vector["key_version"])
    )
    assert c.open(vector["field"], bytes.fromhex(vector["sealed"])).decode() == vector["plaintext"]


def test_keyring_opens_data_keys_of_older_versions_and_seals_with_active() -> None:
    old = Keyring({1: b"\x01" * 32}, active_version=1)
    wrapped_v1 = old.wrap_data_key("c-1", b"\x09" * 32, 1)
    new = Keyring({1: b"\x01" * 32, 2: b"\x02" * 32}, active_version=2)
    assert new.unwrap_data_key("c-1", wrapped_v1, 1) == b"\x09" * 32
    assert Keyring.wrapped_version(new.rewrap_data_key("c-1", wrapped_v1, 1)) == 2


def test_keyring_without_the_named_version_raises_key_unavailable() -> None:
    wrapped = Keyring({3: b"\x03" * 32}, active_version=3).wrap_data_key("c-1", b"\x09" * 32, 1)
    with pytest.raises(KeyUnavailable, match="version 3"):
        Keyring({1: b"\x01" * 32}, active_version=1).unwrap_data_key("c-1", wrapped, 1)


def test_wrapped_data_key_is_bound_to_its_customer() -> None:
    ring = Keyring({1: b"\x01" * 32}, active_version=1)
    wrapped = ring.wrap_data_key("c-1", b"\x09" * 32, 1)
    with pytest.raises(DecryptionFailed):
        ring.unwrap_data_key("c-2", wrapped, 1)


@pytest.mark.parametrize("vector", VECTORS["field"], ids=lambda v: v["description"])
def test_vectors_open_with_plain_aes_gcm_as_security_md_describes(vector: dict[str, str]) -> None:
    """An auditor's own decryptor, written from SECURITY.md alone, opens the stored bytes."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = bytes.fromhex(vector["sealed"])
    header, nonce, body = sealed[:5], sealed[5:17], sealed[17:]
    aad = header + b"vault:field:v1\x00" + vector["customer_id"].encode() + b"\x00"
    aad += vector["field"].encode()
    plain = AESGCM(bytes.fromhex(vector["key"])).decrypt(nonce, body, aad)
    assert plain.decode() == vector["plaintext"]
