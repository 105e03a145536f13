"""The vault's one exception hierarchy.

```
* VaultError                 anything the vault reports to a user; has diagnostics()
  x ConfigError              vault home, settings file, policy file
  x KeyUnavailable           wrong or missing master key, unknown or retired key version
  x DecryptionFailed         a ciphertext does not open under its customer/field/key version
  x InvalidValue             a field value that does not normalise (bad phone, bad ID number)
  x AccessDenied             principal, role, purpose or consent says no
  x AuditChainBroken         the audit log is not what the vault wrote: a checkpoint refused to
                             sign it, or a row beyond the chain head stops appends
  x StoreError               the database
      x NotFound             no such customer (or it was erased)
      x Conflict             a uniqueness rule (an identity already bound to another customer)
      x MigrationRequired    the database schema is not at the version this code expects
  x InternalError            a failure the vault has no name for (a bug, or a stored row not in
                             the shape the code expects); the cause is chained, --debug shows it
  x ConnectorError           a platform or file a connector speaks to; names the connector
      x PlatformRateLimited  429 or the platform's own flow-control code: wait ``retry_after``
      x PlatformUnavailable  timeout, dropped connection, 5xx: retry with backoff
      x PlatformProtocolError  an answer that is not the platform's protocol (bad JSON, a missing
                             field, an unknown envelope): retried a few times, then a failure
      x PlatformAuthFailed   credentials refused even after the one token refresh
      x PlatformQuotaExhausted  a daily or monthly quota is used up: stop, resume later
      x PlatformRejected     the platform refused this request for a reason retrying won't fix
```

Every other exception met during an operation is mapped to one of these at one boundary
(:func:`vault.store._errors.as_vault_error`, applied by ``Vault._transaction`` to database
errors and by the door to everything else), so a caller only ever catches ``VaultError``.

Messages carry ids, field names and key versions, never a value: a phone number, name or address
must not reach a log line or a terminal through an exception. Developer misuse (wrong argument
types) stays ``TypeError``/``ValueError``.
"""

from __future__ import annotations

import re

_CUSTOMER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class VaultError(Exception):
    """Base class: an error a user can act on. ``diagnostics()`` adds what to do next."""

    hint: str = ""

    def diagnostics(self) -> str:
        text = str(self)
        return f"{text}\n{self.hint}" if self.hint else text


class ConfigError(VaultError):
    """The vault home, its settings or a policy file is missing or malformed."""


class KeyUnavailable(VaultError):
    """The master key is missing or wrong, or a key version is unknown or retired."""

    def __init__(self, message: str, *, version: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.version = version
        self.hint = hint or (
            "Check VAULT_HOME and the key source (`vault keys status`), "
            "or set VAULT_MASTER_KEY / VAULT_PASSPHRASE as the vault was initialised."
        )


class DecryptionFailed(VaultError):
    """A ciphertext did not open. One error for every cause, with no hint which.

    Causes include: a ciphertext copied from another customer or field, a tampered byte, an
    unknown suite, a truncated value, a key version that does not match.
    """

    def __init__(self, *, customer_id: str, field: str, key_version: int | None) -> None:
        version = "unknown" if key_version is None else str(key_version)
        super().__init__(
            f"integrity check failed: the ciphertext of field {field!r} of customer "
            f"{customer_id} (key version {version}) does not open; it was altered or moved "
            f"from another row or field"
        )
        self.customer_id = customer_id
        self.field = field
        self.key_version = key_version
        self.hint = "The stored value is not trustworthy. Restore it from a backup or rewrite it."


class InvalidValue(VaultError):
    """A value could not be normalised or validated for its field. Never carries the value."""

    def __init__(self, *, field: str, reason: str) -> None:
        super().__init__(f"invalid value for field {field!r}: {reason}")
        self.field = field
        self.reason = reason


class AccessDenied(VaultError):
    """A principal, role, purpose or consent refused an action. Always audited."""

    def __init__(
        self,
        *,
        principal: str,
        action: str,
        reason: str,
        purpose: str | None = None,
        field: str | None = None,
    ) -> None:
        parts = [f"access denied: {principal} may not {action}"]
        if field:
            parts.append(f"field {field!r}")
        if purpose:
            parts.append(f"for purpose {purpose!r}")
        super().__init__(" ".join(parts) + f": {reason}")
        self.principal = principal
        self.action = action
        self.reason = reason
        self.purpose = purpose
        self.field = field


class AuditChainBroken(VaultError):
    """The audit log fails verification where the vault must rely on it: ``checkpoint`` will
    not sign it, or a row stands where the next event must go. Names the event and the repair."""

    def __init__(self, message: str, *, seq: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.seq = seq
        self.hint = hint or "Run `vault audit verify` to see every problem (SECURITY.md §5.5)."


class StoreError(VaultError):
    """The database refused or failed an operation."""


class NotFound(StoreError):
    """No such record (for a customer: never existed, or erased)."""

    @classmethod
    def customer(cls, customer_id: str, note: str = "") -> NotFound:
        """No customer ``customer_id``. The message names the id only when it has the form of
        one (a lower-case hyphenated UUID): a phone typed where an id belongs is not echoed."""
        named = (
            customer_id
            if _CUSTOMER_ID.fullmatch(customer_id)
            else "for that reference (it is not a customer id)"
        )
        return cls(f"no customer {named}" + (f" {note}" if note else ""))


class Conflict(StoreError):
    """A uniqueness rule was broken (for example an identity bound to another customer)."""


class MigrationRequired(StoreError):
    """The database schema is behind (or ahead of) this version of the vault."""

    hint = "Run `vault migrate` (or `alembic upgrade head`) against this database."


class InternalError(VaultError):
    """A failure outside the vault's own errors: a bug, or stored data that is not in the shape
    the code expects (a hand-edited row). The original exception is chained as ``__cause__``;
    its message is not repeated, since it may quote a value."""

    hint = "Run with --debug for the traceback, and report it if the data was not edited by hand."


class ConnectorError(VaultError):
    """A connector's platform (or file) failed or answered something unusable.

    ``retryable`` tells the sync engine whether trying the same request again may help; the
    engine, not the connector, owns retries, backoff and rate-limit waits. Messages carry the
    connector's name, the platform's code and message, never a customer's value.
    """

    retryable: bool = False

    def __init__(self, message: str, *, connector: str, code: str | None = None) -> None:
        super().__init__(f"{connector}: {message}" + (f" (platform code {code})" if code else ""))
        self.connector = connector
        self.code = code


class PlatformRateLimited(ConnectorError):
    """HTTP 429 or the platform's flow-control error: wait ``retry_after`` seconds (or back off)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        connector: str,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, connector=connector, code=code)
        self.retry_after = retry_after


class PlatformUnavailable(ConnectorError):
    """A timeout, a dropped connection or a 5xx: transient, retried with backoff and jitter."""

    retryable = True


class PlatformProtocolError(ConnectorError):
    """The answer does not follow the platform's protocol (malformed JSON, missing fields)."""

    retryable = True


class PlatformAuthFailed(ConnectorError):
    """The platform refused the credentials, even after refreshing the token once."""

    hint = "Check the connector's settings: `vault connectors configure NAME key=value ...`."


class PlatformQuotaExhausted(ConnectorError):
    """A daily or monthly API quota is used up; the sync stops with its cursor kept."""

    hint = "Run the sync again once the platform's quota resets; it resumes from its cursor."


class PlatformRejected(ConnectorError):
    """The platform refused the request for a reason that retrying will not fix."""
