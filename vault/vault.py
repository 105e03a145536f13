"""``Vault``: the library's entry point. The CLI and every other face call these methods."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType

import structlog
from sqlalchemy import Connection, Engine, inspect, select

from vault.config import Settings, VaultHome
from vault.crypto import BlindIndexer, Keyring
from vault.crypto.keysource import (
    KEY_SOURCES,
    EnvKeySource,
    FileKeySource,
    KeySource,
    PassphraseKeySource,
    PluginKeySource,
)
from vault.errors import ConfigError
from vault.fields import FieldCatalogue
from vault.records import Customer, Interaction, NewCustomer, Order, Page
from vault.store import keystore, migrate
from vault.store.customers import CustomerStore
from vault.store.engine import make_engine, utcnow
from vault.store.schema import principals, system_keys

log = structlog.get_logger("vault")

TOKEN_PREFIX = "vt_"  # noqa: S105 (a prefix, not a secret)
ADMIN_PRINCIPAL = "admin"


def new_token() -> str:
    """A bearer token: 256 random bits, URL-safe. Only its SHA-256 is stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def key_source_for(home: VaultHome, kind: str, *, passphrase: str | None = None) -> KeySource:
    if kind == "file":
        return FileKeySource(home.key_file)
    if kind == "env":
        return EnvKeySource()
    if kind == "passphrase":
        return PassphraseKeySource(passphrase or os.environ.get("VAULT_PASSPHRASE"))
    if kind == "plugin":
        return PluginKeySource()
    raise ConfigError(f"unknown key source {kind!r}: one of {', '.join(KEY_SOURCES)}")


class Vault:
    """An open vault: the store, its keys and its field catalogue.

    Open one with :meth:`Vault.open` (or create one with :meth:`Vault.init`) and close it with
    :meth:`close`, or use it as a context manager.
    """

    def __init__(
        self,
        *,
        home: VaultHome,
        settings: Settings,
        engine: Engine,
        key_source: KeySource,
        keyring: Keyring,
        catalogue: FieldCatalogue,
    ) -> None:
        self.home = home
        self.settings = settings
        self.engine = engine
        self.catalogue = catalogue
        self._key_source = key_source
        self._keyring = keyring
        with engine.connect() as connection:
            self._indexer = BlindIndexer(
                keyring.unwrap_system_key(
                    keystore.BLIND_INDEX_ROOT,
                    connection.execute(
                        select(system_keys.c.wrapped_key).where(
                            system_keys.c.name == keystore.BLIND_INDEX_ROOT
                        )
                    ).scalar_one(),
                )
            )
        self._customers = CustomerStore(engine, keyring, self._indexer, catalogue)

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        key_source: str = "file",
        passphrase: str | None = None,
    ) -> tuple[Vault, str]:
        """Create a vault: settings, policies, schema, master key version 1, and an admin token.

        Returns the open vault and the admin token, which is shown once and stored only as a
        hash.
        """
        vault_home = VaultHome.resolve(home)
        if vault_home.exists():
            raise ConfigError(f"there is already a vault at {vault_home.path}")
        settings = Settings(db_url=db_url or vault_home.default_db_url, key_source=key_source)
        source = key_source_for(vault_home, key_source, passphrase=passphrase)
        vault_home.path.mkdir(parents=True, exist_ok=True)
        os.chmod(vault_home.path, 0o700)
        engine = make_engine(settings.db_url)
        if inspect(engine).get_table_names():
            raise ConfigError(
                "the database already holds tables; a new vault needs an empty database"
            )
        migrate.upgrade(engine)
        token = new_token()
        with engine.begin() as connection:
            keystore.create_first_master_key(connection, source)
            connection.execute(
                principals.insert().values(
                    name=ADMIN_PRINCIPAL,
                    kind="person",
                    roles="admin",
                    token_hash=token_hash(token),
                    created_at=utcnow(),
                )
            )
        vault_home.install_default_policies()
        vault_home.write_settings(settings)
        log.info("vault_initialised", home=str(vault_home.path), key_source=key_source)
        return cls._open(vault_home, settings, engine, source), token

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | None = None,
    ) -> Vault:
        """Open an existing vault. A wrong or missing master key fails here, before any write."""
        vault_home = VaultHome.resolve(home)
        settings = vault_home.read_settings()
        engine = make_engine(settings.db_url)
        migrate.require_current(engine)
        source = key_source_for(vault_home, settings.key_source, passphrase=passphrase)
        return cls._open(vault_home, settings, engine, source)

    @classmethod
    def _open(cls, home: VaultHome, settings: Settings, engine: Engine, source: KeySource) -> Vault:
        with engine.connect() as connection:
            keyring = keystore.load_keyring(connection, source)
        return cls(
            home=home,
            settings=settings,
            engine=engine,
            key_source=source,
            keyring=keyring,
            catalogue=FieldCatalogue.load(home.policy_file("fields.toml")),
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction: everything inside lands, or nothing does."""
        with self.engine.begin() as connection:
            yield connection

    # --- customers ---------------------------------------------------------------------------

    def add_customer(
        self,
        fields: Mapping[str, str],
        *,
        source: str,
        identities: Sequence[tuple[str, str]] = (),
        observed_at: datetime | None = None,
    ) -> str:
        """Add one customer; returns its id. Values are normalised, sealed and indexed."""
        return self.add_customers(
            [NewCustomer(fields=fields, identities=identities, observed_at=observed_at)],
            source=source,
        )[0]

    def add_customers(
        self, records: Iterable[NewCustomer], *, source: str, batch_size: int = 2000
    ) -> list[str]:
        """Add many customers, committing every ``batch_size``; returns their ids in order."""
        ids: list[str] = []
        batch: list[NewCustomer] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                ids += self._add_batch(batch, source)
                batch = []
        if batch:
            ids += self._add_batch(batch, source)
        return ids

    def _add_batch(self, batch: list[NewCustomer], source: str) -> list[str]:
        with self.transaction() as connection:
            ids = self._customers.add_many(connection, batch, source=source)
        log.info("customers_added", count=len(ids), source=source)
        return ids

    def update_customer(
        self,
        customer_id: str,
        fields: Mapping[str, str],
        *,
        source: str,
        observed_at: datetime | None = None,
    ) -> list[str]:
        """Set field values with their provenance; returns the fields that changed.

        A masked value never overwrites a full one.
        """
        with self.transaction() as connection:
            changed = self._customers.update(
                connection, customer_id, fields, source=source, observed_at=observed_at
            )
        log.info("customer_updated", customer_id=customer_id, fields=changed, source=source)
        return changed

    def get_customer(self, customer_id: str) -> Customer:
        with self.engine.connect() as connection:
            return self._customers.get(connection, customer_id)

    def find_customers(self, field: str, value: str) -> list[str]:
        """Ids of the customers whose ``field`` equals ``value`` once normalised (blind index)."""
        with self.engine.connect() as connection:
            return self._customers.find(connection, field, value)

    def find_by_identity(self, platform: str, external_id: str) -> str | None:
        with self.engine.connect() as connection:
            return self._customers.find_identity(connection, platform, external_id)

    def add_identity(
        self, customer_id: str, platform: str, external_id: str, *, source: str
    ) -> None:
        with self.transaction() as connection:
            self._customers.add_identity(
                connection, customer_id, platform, external_id, source=source
            )

    def list_customers(self, *, limit: int = 100, after: str | None = None) -> Page:
        if not 1 <= limit <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        with self.engine.connect() as connection:
            return self._customers.page(connection, limit=limit, after=after)

    def record_order(self, order: Order, *, source: str) -> int:
        with self.transaction() as connection:
            return self._customers.record_order(connection, order, source=source)

    def orders_of(self, customer_id: str) -> list[Order]:
        with self.engine.connect() as connection:
            return self._customers.orders_of(connection, customer_id)

    def record_interaction(
        self,
        customer_id: str,
        *,
        kind: str,
        channel: str,
        occurred_at: datetime,
        text: str | None,
        source: str,
    ) -> str:
        with self.transaction() as connection:
            return self._customers.record_interaction(
                connection,
                customer_id,
                kind=kind,
                channel=channel,
                occurred_at=occurred_at,
                text=text,
                source=source,
            )

    def interactions_of(self, customer_id: str) -> list[Interaction]:
        with self.engine.connect() as connection:
            return self._customers.interactions_of(connection, customer_id)

    def tag_customers(self, customer_ids: Sequence[str], tag: str, *, source: str) -> int:
        with self.transaction() as connection:
            return self._customers.tag(connection, customer_ids, tag, source=source)

    def untag_customer(self, customer_id: str, tag: str) -> bool:
        with self.transaction() as connection:
            return self._customers.untag(connection, customer_id, tag)

    # --- keys --------------------------------------------------------------------------------

    def rotate_keys(
        self, *, batch_size: int = 5000, on_batch: Callable[[int], None] | None = None
    ) -> keystore.RotationReport:
        """Add a master key version and rewrap every data key (or finish an interrupted run)."""
        keyring, report = keystore.rotate(
            self.engine, self._key_source, self._keyring, batch_size=batch_size, on_batch=on_batch
        )
        self._keyring = keyring
        self._customers.use_keyring(keyring)
        log.info(
            "keys_rotated",
            to_version=report.to_version,
            rewrapped=report.rewrapped,
            resumed=report.resumed,
        )
        return report

    def key_status(self) -> keystore.KeyStatus:
        with self.engine.connect() as connection:
            return keystore.status(connection, self._keyring)

    def retire_key_version(self, version: int) -> None:
        with self.transaction() as connection:
            keystore.retire(connection, version, self._keyring)
        log.info("key_version_retired", version=version)

    @property
    def location(self) -> Path:
        return self.home.path
