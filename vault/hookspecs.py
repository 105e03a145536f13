"""Plugin hook specifications: the vault's public extension API (pluggy, project ``vault``).

A plugin is a module or object with functions marked ``@vault.hookimpl`` whose names match these
specs, registered through the ``vault`` entry-point group in its package metadata::

    [project.entry-points.vault]
    my_kms = "my_package.vault_plugin"

Built-in plugins register through the same group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from vault.export.writers import ExportWriter
    from vault.sync import Connector

hookspec = pluggy.HookspecMarker("vault")
hookimpl = pluggy.HookimplMarker("vault")


# --- key providers ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def vault_master_key(version: int) -> bytes | None:
    """Return the 32-byte master key (KEK) of ``version``, or ``None`` to let the next provider try.

    Used when the vault was initialised with ``--key-source plugin`` (a KMS or HSM). The vault
    checks the returned key against the check value it stored for that version and refuses a
    wrong key before writing anything. Stops at the first non-``None`` result.

    :param version: the master key version, from 1 upwards.
    """


@hookspec(firstresult=True)
def vault_create_master_key(version: int) -> bytes | None:
    """Create (or return again, if it already exists) the 32-byte master key of a new ``version``.

    Called by ``vault init`` for version 1 and by ``vault keys rotate`` for each new version. It
    must be idempotent: a rotation killed after this call asks again for the same version.
    Stops at the first non-``None`` result.

    :param version: the new master key version.
    """


@hookspec(firstresult=True)
def vault_audit_signing_key() -> bytes | None:
    """Return the 32-byte Ed25519 seed that signs audit checkpoints, or ``None`` to let the next
    provider try. Used when settings.toml says ``audit_key_source = "plugin"``: the key then
    lives in an HSM or KMS, apart from the master key and the database. Stops at the first
    non-``None`` result.
    """


# --- connectors ------------------------------------------------------------------------------


@hookspec
def vault_register_connectors() -> list[type[Connector]]:  # type: ignore[empty-body]
    """Return this plugin's connector classes (subclasses of :class:`vault.sync.Connector`).

    Every plugin's list is collected; a connector's ``info.name`` must be unique across them.
    Built-in connectors (``connectors/*``) register through this hook and the same ``vault``
    entry-point group a third-party package uses.
    """


# --- exports ---------------------------------------------------------------------------------


@hookspec
def vault_register_export_formats() -> list[type[ExportWriter]]:  # type: ignore[empty-body]
    """Return this plugin's export formats (subclasses of :class:`vault.export.ExportWriter`).

    Every plugin's list is collected; a format's ``name`` (the ``--format`` value) keeps the
    first class contributed for it. The built-in csv, jsonl and xlsx formats register through
    this hook too (``vault.export.formats``). A writer receives rows already filtered by consent,
    limited to the purpose's fields and masked for the caller; it must stream them (hold no more
    than a batch) and must not write anything anywhere but the stream it is given.
    """
