"""A privacy-focused customer data vault.

The public surface is what ``__all__`` lists (``tests/test_public_api.py`` pins it); everything
else is internal and may change.

The names are imported on first use (PEP 562): ``import vault.cli`` must not pay for the store,
the crypto and the service before a command needs them (``vault --help`` stays fast, see
``tests/test_cli_startup.py``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vault.access import Principal, Purpose
    from vault.audit import AuditEvent, AuditQuery
    from vault.errors import (
        AccessDenied,
        ConfigError,
        Conflict,
        DecryptionFailed,
        InternalError,
        InvalidValue,
        KeyUnavailable,
        MigrationRequired,
        NotFound,
        StoreError,
        VaultError,
    )
    from vault.hookspecs import hookimpl
    from vault.records import (
        Customer,
        FieldValue,
        Identity,
        Interaction,
        NewCustomer,
        Order,
        OrderItem,
        Page,
    )
    from vault.session import Session
    from vault.vault import Vault

_WHERE = {
    "Principal": "vault.access",
    "Purpose": "vault.access",
    "AuditEvent": "vault.audit",
    "AuditQuery": "vault.audit",
    "AccessDenied": "vault.errors",
    "ConfigError": "vault.errors",
    "Conflict": "vault.errors",
    "DecryptionFailed": "vault.errors",
    "InternalError": "vault.errors",
    "InvalidValue": "vault.errors",
    "KeyUnavailable": "vault.errors",
    "MigrationRequired": "vault.errors",
    "NotFound": "vault.errors",
    "StoreError": "vault.errors",
    "VaultError": "vault.errors",
    "hookimpl": "vault.hookspecs",
    "Customer": "vault.records",
    "FieldValue": "vault.records",
    "Identity": "vault.records",
    "Interaction": "vault.records",
    "NewCustomer": "vault.records",
    "Order": "vault.records",
    "OrderItem": "vault.records",
    "Page": "vault.records",
    "Session": "vault.session",
    "Vault": "vault.vault",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vault' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "AccessDenied",
    "AuditEvent",
    "AuditQuery",
    "ConfigError",
    "Conflict",
    "Customer",
    "DecryptionFailed",
    "FieldValue",
    "Identity",
    "Interaction",
    "InternalError",
    "InvalidValue",
    "KeyUnavailable",
    "MigrationRequired",
    "NewCustomer",
    "NotFound",
    "Order",
    "OrderItem",
    "Page",
    "Principal",
    "Purpose",
    "Session",
    "StoreError",
    "Vault",
    "VaultError",
    "hookimpl",
]
