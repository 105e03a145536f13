"""Principals (people and service accounts) and their bearer tokens.

A token is 256 random bits (``vt_`` + URL-safe base64), shown once and stored only as its
SHA-256: a fast hash is enough for a secret with that much entropy (no dictionary to try), and it
lets a token be found by its hash in one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from vault.errors import Conflict, InvalidValue, NotFound
from vault.store.engine import as_utc, utcnow
from vault.store.schema import principals

TOKEN_PREFIX = "vt_"  # noqa: S105 (a prefix, not a secret)
PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
KINDS = ("person", "service")


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    name: str
    kind: str
    roles: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_fingerprint(token: str) -> str:
    """A short, harmless label for a presented token (for audit events of failed logins)."""
    return hashlib.sha256(b"vault:token-fingerprint:v1\x00" + token.encode()).hexdigest()[:12]


def _principal(row: object) -> Principal:
    return Principal(
        name=row.name,  # type: ignore[attr-defined]
        kind=row.kind,  # type: ignore[attr-defined]
        roles=tuple(r for r in row.roles.split(",") if r),  # type: ignore[attr-defined]
        created_at=as_utc(row.created_at),  # type: ignore[attr-defined]
        expires_at=as_utc(row.expires_at) if row.expires_at else None,  # type: ignore[attr-defined]
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,  # type: ignore[attr-defined]
    )


def add(
    connection: Connection,
    name: str,
    roles: tuple[str, ...],
    *,
    kind: str = "person",
    expires_at: datetime | None = None,
) -> str:
    """Create a principal and return its token (the only time it is ever shown)."""
    if not PRINCIPAL_NAME.fullmatch(name):
        raise InvalidValue(field="principal", reason="a name is letters, digits and _.@- (max 128)")
    if kind not in KINDS:
        raise InvalidValue(field="kind", reason=f"one of {', '.join(KINDS)}")
    if not roles:
        raise InvalidValue(field="roles", reason="a principal needs at least one role")
    if connection.execute(select(principals.c.id).where(principals.c.name == name)).first():
        raise Conflict(f"there is already a principal named {name!r}")
    token = new_token()
    connection.execute(
        insert(principals).values(
            name=name,
            kind=kind,
            roles=",".join(roles),
            token_hash=token_hash(token),
            created_at=utcnow(),
            expires_at=expires_at,
        )
    )
    return token


def authenticate(connection: Connection, token: str) -> tuple[Principal | None, str]:
    """The principal of ``token`` if it is valid now, else ``None``, and the reason."""
    if not token.startswith(TOKEN_PREFIX):
        return None, "not a vault token"
    digest = token_hash(token)
    row = connection.execute(select(principals).where(principals.c.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(bytes(row.token_hash), digest):
        return None, "unknown token"
    principal = _principal(row)
    if principal.revoked_at is not None:
        return principal, "token revoked"
    if principal.expires_at is not None and utcnow() >= principal.expires_at:
        return principal, "token expired"
    return principal, "token valid"


def all_principals(connection: Connection) -> list[Principal]:
    return [
        _principal(row)
        for row in connection.execute(select(principals).order_by(principals.c.name))
    ]


def revoke(connection: Connection, name: str) -> None:
    result = connection.execute(
        update(principals)
        .where(principals.c.name == name, principals.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if not result.rowcount:
        raise NotFound(f"no active principal named {name!r}")
