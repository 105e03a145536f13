"""A privacy-focused customer data vault.

The public surface is what ``__all__`` lists (``tests/test_public_api.py`` pins it); everything
else is internal and may change.
"""

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
