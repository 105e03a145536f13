"""Only the sealed gateway (``vault/store/sealed.py``) opens, unwraps and reseals.

Observation 1 of issue 14: export, erasure, sync page, merge, resolve and connector settings
each unwrapped data keys and opened ciphertexts by hand (``CustomerCipher.open``,
``store._cipher``, ``keyring.unwrap_data_key``). This test reads the source of ``vault/`` and
``connectors/`` and fails on any of those outside the gateway (``vault/crypto/`` defines the
primitives and is the one other place they appear).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from vault.store import sealed

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "vault" / "store" / "sealed.py"
PRIMITIVES = ROOT / "vault" / "crypto"

# Names that open or unwrap: importing them is reaching past the gateway.
_CIPHER_NAMES = frozenset(
    {"CustomerCipher", "AeadKey", "SealedValueInvalid", "_field_context", "_dek_context"}
)
# Keyring methods that unwrap (or wrap) a data key or unwrap a system key.
_UNWRAP_CALLS = frozenset(
    {"unwrap_data_key", "rewrap_data_key", "wrap_data_key", "unwrap_system_key"}
)
# Private attributes that hold a cipher or a key.
_KEY_ATTRIBUTES = frozenset({"_cipher", "_ciphers", "_settings_cipher"})


def violations(source: str, where: str) -> list[str]:
    """Every way ``source`` opens, unwraps or reseals without the gateway."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vault"):
            if node.module == "vault.crypto._hazmat" and any(
                alias.name in _CIPHER_NAMES for alias in node.names
            ):
                found.append(f"{line}: imports a cipher from vault.crypto._hazmat")
            for alias in node.names:
                if alias.name in _CIPHER_NAMES:
                    found.append(f"{line}: imports {alias.name}")
        elif isinstance(node, ast.Attribute):
            if node.attr in _UNWRAP_CALLS:
                found.append(f"{line}: calls {node.attr}")
            elif node.attr in _KEY_ATTRIBUTES:
                found.append(f"{line}: reaches {ast.unparse(node)}")
            elif node.attr in _CIPHER_NAMES:
                found.append(f"{line}: uses {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id in _CIPHER_NAMES:
            found.append(f"{line}: uses {node.id}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"open", "seal"}
            and re.search(r"cipher|\bkey\b|_key\b|aead", ast.unparse(node.func.value), re.I)
        ):
            found.append(f"{line}: {ast.unparse(node.func)}() on a cipher")
    return found


def _sources() -> list[Path]:
    paths = sorted((ROOT / "vault").rglob("*.py")) + sorted((ROOT / "connectors").rglob("*.py"))
    return [p for p in paths if p != GATEWAY and PRIMITIVES not in p.parents]


def test_only_the_gateway_opens_unwraps_and_reseals() -> None:
    found: list[str] = []
    for path in _sources():
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_check_catches_the_hand_unwrapped_keys_of_before() -> None:
    """What export, erasure, merge, page and settings did before the gateway is caught."""
    before = """
from vault.crypto import CustomerCipher
from vault.crypto._hazmat import AeadKey, SealedValueInvalid

def export_page(keyring, page):
    ciphers = {c: CustomerCipher(c, keyring.unwrap_data_key(c, w, v), v) for c, w, v in page}
    return ciphers[cid].open(field, value)

def page_holds(store, connection, cid, name, value):
    cipher = store._cipher(connection, cid)
    return cipher.open(name, value)

def unmerge(keyring, merged_id, dek):
    return keyring.wrap_data_key(merged_id, dek, 1)

def settings(key, name, sealed):
    return _cipher(key, name).open("settings", sealed)
"""
    found = "\n".join(violations(before, "before.py"))
    assert "imports CustomerCipher" in found
    assert "imports AeadKey" in found
    assert "calls unwrap_data_key" in found
    assert "calls wrap_data_key" in found
    assert "reaches store._cipher" in found
    assert "ciphers[cid].open() on a cipher" in found
    assert "cipher.open() on a cipher" in found
    assert "_cipher(key, name).open() on a cipher" in found


def test_gateway_hands_out_bytes_not_keys() -> None:
    """No public method of the gateway returns a cipher, an AEAD key or the keyring: what it
    opens leaves it as bytes, what it seals for a caller is a seal-only ``Sealer``."""
    for cls in (sealed.SealedGateway, sealed.SealedBatch, sealed.Sealer, sealed.NewSealer):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            returned = str(member.__annotations__.get("return", ""))
            assert not re.search(r"CustomerCipher|AeadKey|Keyring", returned), (cls, name)
        assert not any(name == "open" for name, _ in inspect.getmembers(sealed.Sealer))
