"""Master key versions in the store: create, load and check, rotate, retire.

The store records per master key version only a check value (and a passphrase's scrypt salt). A
key whose check value does not match is refused before anything is written. Rotation adds a
version and rewraps every data key in committed batches; field ciphertexts are not touched. A
rotation killed halfway resumes when run again: as long as some data key is wrapped under an
older version than the newest, ``rotate`` finishes that rotation instead of starting another.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from vault.crypto import Keyring, key_check_value
from vault.crypto._hazmat import new_key
from vault.crypto.keysource import KeySource
from vault.errors import KeyUnavailable
from vault.store import sealed
from vault.store.engine import as_utc, utcnow
from vault.store.schema import customers, master_keys, system_keys

BLIND_INDEX_ROOT = "blind-index-root"
AUDIT_SIGNING_KEY = "audit-signing-key"  # an Ed25519 private seed
SUPPRESSION_KEY = "suppression-key"  # keyed hashes of erased people's identifiers
ERASURE_KEY = "erasure-key"  # seals the CRM record ids an erasure request must delete
CONNECTOR_SETTINGS_KEY = "connector-settings-key"  # seals connectors' settings and credentials
SYSTEM_KEY_NAMES = (
    BLIND_INDEX_ROOT,
    AUDIT_SIGNING_KEY,
    SUPPRESSION_KEY,
    ERASURE_KEY,
    CONNECTOR_SETTINGS_KEY,
)


@dataclass(frozen=True, slots=True)
class KeyVersionStatus:
    version: int
    source: str
    created_at: str
    retired: bool
    loaded: bool
    data_keys: int
    system_keys: int


@dataclass(frozen=True, slots=True)
class KeyStatus:
    active_version: int
    versions: tuple[KeyVersionStatus, ...]
    pending_rewrap: int

    @property
    def rotation_in_progress(self) -> bool:
        return self.pending_rewrap > 0


@dataclass(frozen=True, slots=True)
class RotationReport:
    from_versions: tuple[int, ...]
    to_version: int
    resumed: bool
    rewrapped: int


def create_first_master_key(connection: Connection, source: KeySource) -> Keyring:
    """Make master key version 1 and the system keys it wraps (``vault init``)."""
    created = source.create(1)
    connection.execute(
        master_keys.insert().values(
            version=1,
            source=source.kind,
            check_value=key_check_value(created.key, 1),
            salt=created.salt,
            created_at=utcnow(),
        )
    )
    keyring = Keyring({1: created.key}, active_version=1)
    for name in SYSTEM_KEY_NAMES:
        connection.execute(
            system_keys.insert().values(
                name=name,
                wrapped_key=keyring.wrap_system_key(name, new_key()),
                kek_version=1,
                created_at=utcnow(),
            )
        )
    return keyring


def unwrap_system_keys(connection: Connection, keyring: Keyring) -> dict[str, bytes]:
    """Unwrap every system key, creating any this version of the vault needs and lacks."""
    rows = dict(
        connection.execute(select(system_keys.c.name, system_keys.c.wrapped_key)).tuples().all()
    )
    keys: dict[str, bytes] = {}
    for name in SYSTEM_KEY_NAMES:
        if name in rows:
            keys[name] = sealed.system_key(keyring, name, rows[name])
        else:
            # A key made anew would silently break what the old one made (every blind index,
            # every checkpoint signature): only a store that holds nothing of it may get one.
            if _depends_on(connection, name):
                raise KeyUnavailable(
                    f"system key {name!r} is missing from the store, which still holds data "
                    "made with it",
                    hint="Restore the system_keys table from a backup; do not re-create it.",
                )
            keys[name] = new_key()
            connection.execute(
                system_keys.insert().values(
                    name=name,
                    wrapped_key=keyring.wrap_system_key(name, keys[name]),
                    kek_version=keyring.active_version,
                    created_at=utcnow(),
                )
            )
    return keys


def _depends_on(connection: Connection, name: str) -> bool:
    from vault.store.schema import (
        audit_checkpoints,
        connector_settings,
        customer_fields,
        customer_identities,
        erasure_requests,
        suppressions,
    )

    probes = {
        BLIND_INDEX_ROOT: [
            select(customer_fields.c.customer_id).where(customer_fields.c.blind_index.is_not(None)),
            select(customer_identities.c.id),
        ],
        AUDIT_SIGNING_KEY: [select(audit_checkpoints.c.seq)],
        SUPPRESSION_KEY: [select(suppressions.c.id)],
        ERASURE_KEY: [
            select(erasure_requests.c.id).where(erasure_requests.c.external_id.is_not(None))
        ],
        CONNECTOR_SETTINGS_KEY: [select(connector_settings.c.name)],
    }[name]
    return any(connection.execute(probe.limit(1)).first() is not None for probe in probes)


def load_keyring(connection: Connection, source: KeySource) -> Keyring:
    """Load and check every usable master key version; the newest one is active.

    Older versions the source no longer holds are left out (reading a data key still wrapped
    under one raises ``KeyUnavailable``); the newest must be present and correct.
    """
    rows = connection.execute(
        select(master_keys.c.version, master_keys.c.check_value, master_keys.c.salt)
        .where(master_keys.c.retired_at.is_(None))
        .order_by(master_keys.c.version)
    ).all()
    if not rows:
        raise KeyUnavailable("the store has no master key versions; was `vault init` run?")
    active = rows[-1].version
    keys: dict[int, bytes] = {}
    for row in rows:
        key = source.load(row.version, row.salt)
        if key is None:
            if row.version == active:
                raise KeyUnavailable(
                    f"the {source.kind} key source has no master key version {active}",
                    version=active,
                )
            continue
        if not hmac.compare_digest(key_check_value(key, row.version), row.check_value):
            raise KeyUnavailable(
                f"wrong master key: version {row.version} from the {source.kind} key source "
                "does not match this vault",
                version=row.version,
            )
        keys[row.version] = key
    return Keyring(keys, active_version=active)


def _pending(connection: Connection, below: int) -> int:
    data = connection.execute(
        select(func.count())
        .select_from(customers)
        .where(customers.c.wrapped_dek.is_not(None), customers.c.kek_version < below)
    ).scalar_one()
    system = connection.execute(
        select(func.count()).select_from(system_keys).where(system_keys.c.kek_version < below)
    ).scalar_one()
    return int(data) + int(system)


def rotate(
    engine: Engine,
    source: KeySource,
    keyring: Keyring,
    *,
    batch_size: int = 5000,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[Keyring, RotationReport]:
    """Rewrap every data key under a new master key version (or finish an interrupted rotation).

    Returns the new keyring and a report. Each batch is its own transaction, so a rotation killed
    halfway loses nothing and the next call picks up where it stopped.
    """
    with engine.begin() as connection:
        keyring = load_keyring(connection, source)
        pending = _pending(connection, keyring.active_version)
        old_versions = keyring.versions
        resumed = pending > 0
        if not resumed:
            version = keyring.active_version + 1
            created = source.create(version)
            connection.execute(
                master_keys.insert().values(
                    version=version,
                    source=source.kind,
                    check_value=key_check_value(created.key, version),
                    salt=created.salt,
                    created_at=utcnow(),
                )
            )
    with engine.connect() as connection:
        keyring = load_keyring(connection, source)
    target = keyring.active_version
    rewrapped = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                select(customers.c.id, customers.c.dek_version, customers.c.wrapped_dek)
                .where(customers.c.wrapped_dek.is_not(None), customers.c.kek_version < target)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            connection.execute(
                update(customers)
                .where(customers.c.id == bindparam("b_id"))
                .values(wrapped_dek=bindparam("b_wrapped"), kek_version=target),
                [
                    {
                        "b_id": row.id,
                        "b_wrapped": sealed.rewrapped_data_key(
                            keyring, row.id, row.wrapped_dek, row.dek_version
                        ),
                    }
                    for row in rows
                ],
            )
        rewrapped += len(rows)
        if on_batch is not None:
            on_batch(len(rows))
    with engine.begin() as connection:
        for row in connection.execute(
            select(system_keys.c.name, system_keys.c.wrapped_key).where(
                system_keys.c.kek_version < target
            )
        ).all():
            connection.execute(
                update(system_keys)
                .where(system_keys.c.name == row.name)
                .values(
                    wrapped_key=sealed.rewrapped_system_key(keyring, row.name, row.wrapped_key),
                    kek_version=target,
                )
            )
            rewrapped += 1
    report = RotationReport(
        from_versions=tuple(v for v in old_versions if v != target),
        to_version=target,
        resumed=resumed,
        rewrapped=rewrapped,
    )
    return keyring, report


def status(connection: Connection, keyring: Keyring) -> KeyStatus:
    data_counts: dict[int, int] = dict(
        connection.execute(
            select(customers.c.kek_version, func.count())
            .where(customers.c.wrapped_dek.is_not(None))
            .group_by(customers.c.kek_version)
        )
        .tuples()
        .all()
    )
    system_counts: dict[int, int] = dict(
        connection.execute(
            select(system_keys.c.kek_version, func.count()).group_by(system_keys.c.kek_version)
        )
        .tuples()
        .all()
    )
    rows = connection.execute(select(master_keys).order_by(master_keys.c.version)).all()
    versions = tuple(
        KeyVersionStatus(
            version=row.version,
            source=row.source,
            created_at=as_utc(row.created_at).isoformat(),
            retired=row.retired_at is not None,
            loaded=row.version in keyring.versions,
            data_keys=int(data_counts.get(row.version, 0)),
            system_keys=int(system_counts.get(row.version, 0)),
        )
        for row in rows
    )
    # The store, not this process's keyring, says which version is newest: another process may
    # have rotated since this one loaded its keys.
    active = max(v.version for v in versions if not v.retired)
    return KeyStatus(
        active_version=active, versions=versions, pending_rewrap=_pending(connection, active)
    )


def retire(connection: Connection, version: int, keyring: Keyring) -> None:
    """Retire a master key version no data key uses any more; it is never loaded again."""
    if version == keyring.active_version:
        raise KeyUnavailable(
            f"master key version {version} is the active one and cannot be retired",
            version=version,
            hint="Run `vault keys rotate` first; then retire the old version.",
        )
    in_use = (
        connection.execute(
            select(func.count())
            .select_from(customers)
            .where(customers.c.wrapped_dek.is_not(None), customers.c.kek_version == version)
        ).scalar_one()
        + connection.execute(
            select(func.count())
            .select_from(system_keys)
            .where(system_keys.c.kek_version == version)
        ).scalar_one()
    )
    if in_use:
        raise KeyUnavailable(
            f"master key version {version} still wraps {in_use} keys",
            version=version,
            hint="Run `vault keys rotate` to finish rewrapping, then retire it.",
        )
    result = connection.execute(
        update(master_keys)
        .where(master_keys.c.version == version, master_keys.c.retired_at.is_(None))
        .values(retired_at=utcnow())
    )
    if not result.rowcount:
        raise KeyUnavailable(
            f"there is no active master key version {version} to retire",
            version=version,
            hint="Run `vault keys status` to see the versions.",
        )
