"""``Session`` is the only public object that hands out plaintext: ``Vault`` offers none.

Observation 1 of issue 14: ``Vault.open(home).customers.get(conn, id)`` (and the same through
``session.vault``) returned every field in clear, ID number and note included, and wrote no
audit event. These tests walk the public surface of a ``Vault`` and of a ``Session``'s public
attributes and fail on any way to plaintext: an object that unwraps keys, opens ciphertexts or
reads the database, key material, or a public method that returns a decrypted record.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from vault import Customer, FieldValue, Identity, Interaction, Session, Vault
from vault.crypto import BlindIndexer, Keyring
from vault.crypto.keysource import KeySource
from vault.store import sealed
from vault.store.customers import CustomerStore
from vault.store.schema import audit_events
from vault.store.sealed import ErasureSealer

# Objects that hold keys, open ciphertexts or reach the rows beneath the door.
_FORBIDDEN_OBJECTS: tuple[type, ...] = (
    Engine,
    Connection,
    Keyring,
    KeySource,
    BlindIndexer,
    CustomerStore,
    ErasureSealer,
    sealed.SealedGateway,
)
# Records that carry decrypted customer data.
_PLAINTEXT_RECORDS: tuple[type, ...] = (Customer, FieldValue, Identity, Interaction)
# Bytes reachable in public that are not secret.
_PUBLIC_BYTES = frozenset({"public_key"})


def _ours(value: object) -> bool:
    module = type(value).__module__
    return module.split(".")[0] in {"vault", "connectors"}


def _public(obj: object) -> Iterator[tuple[str, Any]]:
    for name in dir(obj):
        if name.startswith("_"):
            continue
        attribute = inspect.getattr_static(obj, name, None)
        if callable(attribute) or isinstance(attribute, (classmethod, staticmethod)):
            continue  # methods are checked by their signatures
        try:
            yield name, getattr(obj, name)
        except AttributeError:
            continue


def _returns_plaintext(cls: type) -> list[str]:
    """Public methods of ``cls`` whose return annotation names a forbidden type."""
    found: list[str] = []
    for name, member in inspect.getmembers(cls, callable):
        if name.startswith("_") and name not in {"__enter__"}:
            continue
        # The annotation as written (a string under ``from __future__ import annotations``).
        returned = getattr(member, "__annotations__", {}).get("return")
        if returned is None:
            continue
        text = returned if isinstance(returned, str) else repr(returned)
        for forbidden in (*_FORBIDDEN_OBJECTS, *_PLAINTEXT_RECORDS):
            if re.search(rf"\b{forbidden.__name__}\b", text):
                found.append(f"{cls.__name__}.{name}() -> {forbidden.__name__}")
    return found


def _walk(root: object, root_name: str) -> list[str]:
    """Paths from ``root`` through public attributes to anything that yields plaintext."""
    problems: list[str] = []
    seen: set[int] = set()
    queue: list[tuple[str, object]] = [(root_name, root)]
    while queue:
        path, obj = queue.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, _FORBIDDEN_OBJECTS):
            problems.append(f"{path} is a {type(obj).__name__}")
            continue
        if isinstance(obj, Session) and path != root_name:
            problems.append(f"{path} is a Session")
            continue
        if isinstance(obj, (dict, list, tuple, set, frozenset)):
            items = obj.items() if isinstance(obj, dict) else enumerate(obj)
            queue.extend((f"{path}[{key!r}]", value) for key, value in items)
            continue
        if not _ours(obj):
            continue
        if not isinstance(obj, Session):
            problems += [f"{path}: {p}" for p in _returns_plaintext(type(obj))]
        for name, value in _public(obj):
            if isinstance(value, (bytes, bytearray, memoryview)) and name not in _PUBLIC_BYTES:
                problems.append(f"{path}.{name} is key material ({len(value)} bytes)")
            queue.append((f"{path}.{name}", value))
    return problems


def _event_count(vault: Vault) -> int:
    with vault._engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(audit_events)).scalar())


def test_vault_has_no_public_way_to_plaintext(vault: Vault, admin: Session) -> None:
    admin.add_customer(
        {"name": "张三", "phone": "13800138000", "id_number": "11010519491231002X"},
        source="import",
    )
    assert _walk(vault, "vault") == []
    assert _returns_plaintext(Vault) == []


def test_vault_customers_is_not_a_second_door(vault: Vault, admin: Session) -> None:
    """The observed call: ``Vault.open(home).customers.get(conn, id)`` read every field in
    clear and wrote no audit event. It no longer exists, on the vault or through a session."""
    cid = admin.add_customer({"name": "张三", "id_number": "11010519491231002X"}, source="import")
    before = _event_count(vault)
    for holder in (vault, admin):
        with pytest.raises(AttributeError):
            holder.customers  # type: ignore[union-attr]  # noqa: B018
    with pytest.raises(AttributeError):
        admin.vault  # type: ignore[attr-defined]  # noqa: B018
    assert _event_count(vault) == before
    assert admin.get_customer(cid).fields["id_number"].value == "11010519491231002X"


def test_session_attributes_lead_to_no_plaintext(admin: Session) -> None:
    """A session's public attributes (principal, purpose, request id) lead nowhere below the
    door; only the session's own methods return plaintext, each checked and audited."""
    assert _walk(admin, "session") == []


def test_walk_finds_the_observed_second_door() -> None:
    """The walk is not blind: an object exposing a customer store, a connection-yielding method
    or a data key is reported."""

    class Leaky:
        __module__ = "vault.leaky"

        def __init__(self, store: object) -> None:
            self.customers = store
            self.settings_key = b"\x00" * 32

        def transaction(self) -> Iterator[Connection]:
            raise NotImplementedError

        def read(self) -> Customer:
            raise NotImplementedError

    store = CustomerStore.__new__(CustomerStore)
    problems = _walk(Leaky(store), "leaky")
    assert any("leaky.customers is a CustomerStore" in p for p in problems)
    assert any("settings_key is key material" in p for p in problems)
    assert any("transaction() -> Connection" in p for p in problems)
    assert any("read() -> Customer" in p for p in problems)
