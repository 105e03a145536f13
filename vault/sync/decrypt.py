"""Platform decryption: asking a shop platform to decrypt its own ciphertext, through the door.

Shop platforms hand out buyer data as masked values plus their own ciphertexts or handles
(Taobao's OAID, Pinduoduo's encrypted receiver fields), which the sync engine keeps sealed in
``platform_handles``. Turning one into a clear value is a purpose-bound act, never a bulk
default (a sync never calls it):

1. the principal's role must grant ``decrypt`` for the purpose (a purpose is required);
2. the purpose must allow the *scene* (``scenes = [...]`` in ``policies/purposes.toml``:
   shipping, after_sales, customer_service) and the field;
3. the configured connector's :meth:`~vault.sync.Connector.decrypt` is called for that one
   handle (no database transaction is held open during the call);
4. the clear value is stored encrypted like any field, with provenance ``<platform>-decrypt``,
   under the source ranking's merge rule (it replaces a mask; a full value from a higher
   ranked source stays);
5. every call is audited (action ``decrypt``: allowed, denied or failed, with connector, scene
   and field, never the value) and counted per connector, scene and day
   (:meth:`PlatformDecryptOperations.decrypt_quota_status`), so the platform's per-scene
   quotas can be watched.

The value handed back is shown as the caller's role sees the field for the purpose (clear or
masked): decrypting does not widen a role's view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from vault.access.masks import mask
from vault.audit import AuditEvent
from vault.door import Door
from vault.errors import AccessDenied, ConfigError, NotFound, VaultError
from vault.store.engine import as_utc, utcnow
from vault.store.schema import customer_fields, platform_decrypt_usage
from vault.sync import settings as settings_store
from vault.sync.contract import Connector
from vault.sync.resolve import stored_handle
from vault.sync.sources import Observation, SourceRanking

ACTION = "decrypt"


def decrypt_source(platform: str) -> str:
    """The provenance of a value a platform decrypted: ``taobao-decrypt``."""
    return f"{platform}-decrypt"


@dataclass(frozen=True, slots=True, kw_only=True)
class DecryptUsage:
    """Use of one connector's decryption for one scene on one day (UTC)."""

    connector: str
    scene: str
    day: str
    calls: int  # requests that reached the platform
    decrypted: int  # values it decrypted
    denied: int  # requests the vault refused before calling

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "scene": self.scene,
            "day": self.day,
            "calls": self.calls,
            "decrypted": self.decrypted,
            "denied": self.denied,
        }


def _count(
    connection: Connection,
    connector: str,
    scene: str,
    *,
    calls: int = 0,
    decrypted: int = 0,
    denied: int = 0,
) -> None:
    now = utcnow()
    day = now.astimezone(UTC).date().isoformat()
    key = (
        (platform_decrypt_usage.c.connector == connector)
        & (platform_decrypt_usage.c.scene == scene)
        & (platform_decrypt_usage.c.day == day)
    )
    updated = connection.execute(
        update(platform_decrypt_usage)
        .where(key)
        .values(
            calls=platform_decrypt_usage.c.calls + calls,
            decrypted=platform_decrypt_usage.c.decrypted + decrypted,
            denied=platform_decrypt_usage.c.denied + denied,
            updated_at=now,
        )
    )
    if updated.rowcount == 0:
        connection.execute(
            insert(platform_decrypt_usage).values(
                connector=connector,
                scene=scene[:32],
                day=day,
                calls=calls,
                decrypted=decrypted,
                denied=denied,
                updated_at=now,
            )
        )


class PlatformDecryptOperations(Door):
    """Platform decryption (mixin of :class:`vault.session.Session`); see the module docstring."""

    def _deny_decrypt(
        self,
        *,
        customer_id: str,
        field: str,
        connector: str,
        scene: str,
        purpose: str | None,
        reason: str,
    ) -> AccessDenied:
        with self._vault._transaction() as connection:
            _count(connection, connector, scene, denied=1)
            self._append(
                connection,
                AuditEvent(
                    action=ACTION,
                    outcome="denied",
                    purpose=purpose,
                    customer_ids=[customer_id],
                    fields=[field],
                    reason=reason,
                    details={"connector": connector, "scene": scene},
                ),
            )
        return AccessDenied(
            principal=self.principal.name,
            action=ACTION,
            purpose=purpose,
            field=field,
            reason=reason,
        )

    def _decrypting_connector(self, name: str) -> Connector:
        from vault.sync.operations import connector_class

        cls = connector_class(name)
        with self._vault._reader.connect() as connection:
            stored = settings_store.load(connection, self._vault._connector_settings_key, name)
        if stored is None:
            raise ConfigError(
                f"connector {name!r} is not configured (vault connectors configure {name} ...)"
            )
        return cls(stored)

    def decrypt_platform_field(
        self,
        customer_id: str,
        field: str,
        *,
        connector: str,
        scene: str,
        purpose: str | None = None,
    ) -> str | None:
        """Ask ``connector``'s platform to decrypt the ciphertext it gave for ``field`` of
        ``customer_id``, for ``scene``; store the clear value encrypted and return it as the
        caller's role sees it (``None`` when the platform decrypted nothing: a stale handle, a
        virtual number). Denied and audited unless the role grants ``decrypt`` for the purpose
        and the purpose allows the scene and the field."""
        purpose = purpose or self.purpose
        context = {"customer_id": customer_id, "field": field, "connector": connector}
        if purpose is None:
            raise self._deny_decrypt(
                **context,
                scene=scene,
                purpose=None,
                reason="a purpose is required to decrypt customer data (--purpose)",
            )
        decision = self._vault.policy.decide(self.principal.roles, ACTION, purpose)
        if not decision.allowed:
            raise self._deny_decrypt(
                **context, scene=scene, purpose=purpose, reason=decision.reason
            )
        allowed = self._vault.policy.purposes[purpose]
        if not allowed.allows_scene(scene):
            scenes = ", ".join(sorted(allowed.scenes)) or "none"
            raise self._deny_decrypt(
                **context,
                scene=scene,
                purpose=purpose,
                reason=f"purpose {purpose!r} does not allow scene {scene!r} (allows: {scenes})",
            )
        view = self._vault.policy.view(self.principal.roles, field, purpose)
        if view == "hidden":
            raise self._deny_decrypt(
                **context,
                scene=scene,
                purpose=purpose,
                reason=f"field {field!r} is hidden from this role for purpose {purpose!r}",
            )
        event = AuditEvent(
            action=ACTION,
            purpose=purpose,
            customer_ids=[customer_id],
            fields=[field],
            details={"connector": connector, "scene": scene},
        )
        try:
            platform_connector = self._decrypting_connector(connector)
        except VaultError as error:
            self._record(replace(event, outcome="failed", reason=type(error).__name__))
            raise
        platform = platform_connector.info.platform
        try:
            with self._vault._reader.connect() as connection:
                handle = stored_handle(
                    self._vault._customers, connection, customer_id, field, platform
                )
            if handle is None:
                raise NotFound(
                    f"customer {customer_id} has no {platform} ciphertext for field {field!r}"
                )
            try:
                clear = platform_connector.decrypt([handle], scene=scene).get(handle)
            except VaultError:
                with self._vault._transaction() as connection:
                    _count(connection, connector, scene, calls=1)
                raise
        except VaultError as error:
            self._record(replace(event, outcome="failed", reason=type(error).__name__))
            raise
        finally:
            platform_connector.close()
        if clear is not None:
            # As the field is kept (E.164 phones, ...); a value that does not normalise fails
            # here, audited, before anything is stored.
            try:
                clear = self._vault.catalogue.spec(field).normalise(clear).value
            except VaultError as error:
                self._record(replace(event, outcome="failed", reason=type(error).__name__))
                raise
        details = {
            "connector": connector,
            "platform": platform,
            "scene": scene,
            "decrypted": clear is not None,
            "source": decrypt_source(platform),
        }
        try:
            # The stored value, the count and the audit event land together or not at all.
            with self._vault._transaction() as connection:
                _count(connection, connector, scene, calls=1, decrypted=int(clear is not None))
                stored = bool(
                    clear is not None
                    and self._keep(connection, customer_id, field, platform)
                    and self._vault._customers.update(
                        connection, customer_id, {field: clear}, source=decrypt_source(platform)
                    )
                )
                self._append(connection, replace(event, details={**details, "stored": stored}))
        except VaultError as error:
            self._record(replace(event, outcome="failed", reason=type(error).__name__))
            raise
        if clear is None:
            return None
        if view == "clear":
            return clear
        return mask(self._vault.catalogue[field].mask, clear)

    def _keep(self, connection: Connection, customer_id: str, field: str, platform: str) -> bool:
        """Whether the decrypted value may replace what is stored (the sources' merge rule)."""
        row = connection.execute(
            select(
                customer_fields.c.source, customer_fields.c.observed_at, customer_fields.c.masked
            ).where(customer_fields.c.customer_id == customer_id, customer_fields.c.field == field)
        ).first()
        if row is None:
            return True
        ranking = SourceRanking.load(self._vault.home.policy_file("sources.toml"))
        incoming = Observation(decrypt_source(platform), datetime.now(UTC), masked=False)
        existing = Observation(row.source, as_utc(row.observed_at), masked=bool(row.masked))
        return ranking.wins(field, incoming, existing)

    def decrypt_quota_status(self) -> list[DecryptUsage]:
        """Platform decryption used, per connector, scene and day (newest day first)."""
        roles = self.principal.roles
        if not self._vault.policy.decide(roles, ACTION, None).allowed:
            self.authorize("sync")  # the operators who run connectors may see it too
        purpose = self.purpose

        def operation(connection: Connection) -> list[DecryptUsage]:
            rows = connection.execute(
                select(platform_decrypt_usage).order_by(
                    platform_decrypt_usage.c.day.desc(),
                    platform_decrypt_usage.c.connector,
                    platform_decrypt_usage.c.scene,
                )
            )
            return [
                DecryptUsage(
                    connector=row.connector,
                    scene=row.scene,
                    day=row.day,
                    calls=row.calls,
                    decrypted=row.decrypted,
                    denied=row.denied,
                )
                for row in rows
            ]

        return self._audited(
            AuditEvent(action=ACTION, purpose=purpose, details={"operation": "quota-status"}),
            operation,
        )
