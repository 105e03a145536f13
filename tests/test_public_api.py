"""The public surface is exactly ``vault.__all__``; everything else may change."""

import vault


def test_public_api_is_pinned() -> None:
    assert sorted(vault.__all__) == [
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


def test_every_exported_name_exists_and_errors_share_one_base() -> None:
    for name in vault.__all__:
        member = getattr(vault, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, vault.VaultError)
