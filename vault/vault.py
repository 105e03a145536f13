"""``Vault``: the library's entry point. The CLI and every other face call these methods."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import structlog
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from vault.access import Policy
from vault.access import principals as principals_store
from vault.audit import AuditEvent, AuditLog
from vault.audit.keys import create_signing_key, open_audit_log
from vault.config import Settings, VaultHome
from vault.consent.suppression import SuppressionIndex
from vault.crypto import BlindIndexer, Keyring
from vault.crypto.keysource import (
    KEY_SOURCES,
    EnvKeySource,
    FileKeySource,
    KeySource,
    PassphraseKeySource,
    PluginKeySource,
)
from vault.errors import AccessDenied, ConfigError
from vault.fields import FieldCatalogue
from vault.log import ensure_configured
from vault.segments import Segmenter, SegmentRules, default_rules
from vault.session import Session
from vault.store import keystore, migrate
from vault.store._errors import as_vault_error, mapped_store_errors
from vault.store.customers import CustomerStore
from vault.store.engine import make_engine, reader
from vault.store.sealed import ErasureSealer, SealedGateway
from vault.sync.retry import SyncPolicy

log = structlog.get_logger("vault")

ADMIN_PRINCIPAL = "admin"


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
        policy: Policy,
        segment_rules: SegmentRules | None = None,
    ) -> None:
        ensure_configured()
        self.home = home
        self.settings = settings
        self.catalogue = catalogue
        self.policy = policy
        # Below the door: nothing that unwraps a key, opens a ciphertext or reaches the rows is
        # public (tests/access/test_no_second_door.py walks this surface). Every read of
        # customer data is a method of a Session: checked, and audited.
        self._engine = engine
        self._reader = reader(engine)
        self._key_source = key_source
        self._keyring = keyring
        with engine.begin() as connection:
            system = keystore.unwrap_system_keys(connection, keyring)
        self._indexer = BlindIndexer(system[keystore.BLIND_INDEX_ROOT])
        self.audit: AuditLog = open_audit_log(
            engine, home, settings, system[keystore.AUDIT_SIGNING_KEY]
        )
        self._connector_settings_key = system[keystore.CONNECTOR_SETTINGS_KEY]
        # Erased people's identifiers, and the CRM ids an erasure must delete: keys of their own.
        self._suppression = SuppressionIndex(system[keystore.SUPPRESSION_KEY], catalogue)
        self._erasure_sealer = ErasureSealer(system[keystore.ERASURE_KEY])
        self.sync_policy = SyncPolicy()  # retries and waits of every sync (tests shrink them)
        self.segments = Segmenter(segment_rules or default_rules())
        self._customers = CustomerStore(
            engine, SealedGateway(keyring), self._indexer, catalogue, segmenter=self.segments
        )

    def _use_keyring(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._customers.sealed.use_keyring(keyring)

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        db_url: str | None = None,
        key_source: str = "file",
        passphrase: str | None = None,
        audit_key_source: str = "file",
        audit_key_file: str | None = None,
    ) -> tuple[Vault, str]:
        """Create a vault: settings, policies, schema, master key version 1, and an admin token.

        Returns the open vault and the admin token, which is shown once and stored only as a
        hash.
        """
        vault_home = VaultHome.resolve(home)
        if vault_home.exists():
            raise ConfigError(f"there is already a vault at {vault_home.path}")
        settings = Settings(
            db_url=db_url or vault_home.default_db_url,
            key_source=key_source,
            audit_key_source=audit_key_source,
            audit_key_file=audit_key_file,
        )
        source = key_source_for(vault_home, key_source, passphrase=passphrase)
        vault_home.path.mkdir(parents=True, exist_ok=True)
        os.chmod(vault_home.path, 0o700)
        engine = make_engine(settings.db_url)
        if inspect(engine).get_table_names():
            raise ConfigError(
                "the database already holds tables; a new vault needs an empty database"
            )
        migrate.upgrade(engine)
        with engine.begin() as connection:
            keystore.create_first_master_key(connection, source)
            token = principals_store.add(connection, ADMIN_PRINCIPAL, ("admin",), kind="person")
        vault_home.install_default_policies()
        create_signing_key(vault_home, settings)  # its own file, apart from master.key
        vault_home.write_settings(settings)
        log.info("vault_initialised", home=str(vault_home.path), key_source=key_source)
        return cls._open(vault_home, settings, engine, source), token

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | None = None,
        db_url: str | None = None,
    ) -> Vault:
        """Open an existing vault. A wrong or missing master key fails here, before any write.

        ``db_url`` overrides the database of the home's settings (``vault serve --db``): several
        processes with the home's keys and policies can then share one PostgreSQL.
        """
        vault_home = VaultHome.resolve(home)
        settings = vault_home.read_settings()
        if db_url is not None:
            settings = replace(settings, db_url=db_url)
        engine = make_engine(settings.db_url)
        migrate.require_current(engine)
        source = key_source_for(vault_home, settings.key_source, passphrase=passphrase)
        return cls._open(vault_home, settings, engine, source)

    @classmethod
    def _open(cls, home: VaultHome, settings: Settings, engine: Engine, source: KeySource) -> Vault:
        with engine.connect() as connection:
            keyring = keystore.load_keyring(connection, source)
        catalogue = FieldCatalogue.load(home.policy_file("fields.toml"))
        policy = Policy.load(
            catalogue, home.policy_file("purposes.toml"), home.policy_file("roles.toml")
        )
        segment_rules = SegmentRules.load(home.policy_file("segments.toml"))
        return cls(
            home=home,
            settings=settings,
            engine=engine,
            key_source=source,
            keyring=keyring,
            catalogue=catalogue,
            policy=policy,
            segment_rules=segment_rules,
        )

    def close(self) -> None:
        self._engine.dispose()

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
    def _transaction(self, what: str = "database transaction") -> Iterator[Connection]:
        """One database transaction: everything inside lands, or nothing does.

        A database error inside (or at commit) leaves as a ``StoreError`` (``Conflict`` for a
        broken uniqueness rule) with a one-line message naming ``what``; the driver's error is
        its cause."""
        try:
            with self._engine.begin() as connection:
                yield connection
        except SQLAlchemyError as error:
            raise as_vault_error(error, what) from error

    # --- the one door ------------------------------------------------------------------------

    def session(
        self, token: str, *, purpose: str | None = None, request_id: str | None = None
    ) -> Session:
        """Authenticate ``token`` and return a session acting as its principal.

        Every operation on customer data, keys, principals and the audit log is a method of the
        session: it checks the principal's roles and the purpose, applies field views and writes
        the audit event. There is no other way in. A bad token raises ``AccessDenied`` (audited).
        """
        request_id = request_id or uuid.uuid4().hex
        with mapped_store_errors("authenticate"), self._reader.connect() as connection:
            principal, reason = principals_store.authenticate(connection, token)
        if principal is None or reason != "token valid":
            with self._transaction() as connection:
                self.audit.append(
                    connection,
                    AuditEvent(
                        action="authenticate",
                        outcome="denied",
                        purpose=purpose,
                        reason=reason,
                        details={"token_fingerprint": principals_store.token_fingerprint(token)},
                    ),
                    actor=principal.name if principal else "<unknown>",
                    roles=principal.roles if principal else (),
                    request_id=request_id,
                )
            raise AccessDenied(
                principal=principal.name if principal else "<unknown token>",
                action="authenticate",
                reason=reason,
            )
        self.policy.check_roles(principal.roles, where=f"principal {principal.name!r}")
        return Session(self, principal, purpose=purpose, request_id=request_id)

    def database_reachable(self) -> bool:
        """Whether the database answers a trivial query now (for health checks)."""
        try:
            with self._reader.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception:  # any driver or network failure means "not reachable"
            return False
        return True

    @property
    def location(self) -> Path:
        return self.home.path

    @property
    def backend(self) -> str:
        """The database's dialect: ``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name
