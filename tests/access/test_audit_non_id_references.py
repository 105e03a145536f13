"""A string typed where a customer id belongs is never stored raw in the audit log.

Observation 6 of issue 14: ``GET /v1/customers/13912345678`` (a phone typed as an id) stored the
phone number verbatim in the audit event's body and in the customer index, and audit events are
never erased. The door now records a keyed digest (``ref:`` and an HMAC under a key derived from
the blind-index root for this purpose) for anything that is not a customer id.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from vault import AuditQuery, NotFound, Session, Vault
from vault.cli import cli
from vault.service import ServiceConfig
from vault.service.app import create_app
from vault.store.schema import audit_event_customers, audit_events

PHONE = "13912345678"


def _audit_bytes(vault: Vault) -> bytes:
    """Every column of both audit tables, as bytes."""
    out = bytearray()
    with vault._engine.connect() as connection:
        for table in (audit_events, audit_event_customers):
            for row in connection.execute(select(table)):
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode()
                    out += b"\x00"
    return bytes(out)


def test_a_phone_typed_as_a_customer_id_is_not_stored_raw(
    home: Path, initialised: tuple[Vault, str]
) -> None:
    vault, token = initialised
    admin = vault.session(token, purpose="administration")
    cid = admin.add_customer({"name": "张三", "phone": PHONE}, source="import")
    with pytest.raises(NotFound) as raised:
        admin.get_customer(PHONE)
    assert PHONE not in str(raised.value)  # nor is it echoed in the error
    assert admin.orders_of(PHONE) == []  # an allowed read that names the string too
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "customer", "show", PHONE],
        env={"VAULT_TOKEN": token, "VAULT_PURPOSE": "administration"},
    )
    assert result.exit_code == 1 and PHONE not in result.stderr
    with TestClient(create_app(vault, ServiceConfig(rate=0))) as http:
        response = http.get(
            f"/v1/customers/{PHONE}",
            headers={"Authorization": f"Bearer {token}", "X-Vault-Purpose": "administration"},
        )
    assert response.status_code == 404 and PHONE not in response.text
    stored = _audit_bytes(vault)
    assert PHONE.encode() not in stored
    assert cid.encode() in stored  # real ids are kept as they are
    # the failed reads are there, under a keyed digest an auditor can look up by the same string
    found = admin.audit_query(AuditQuery(customer=PHONE, action="read"))
    assert sorted(e["outcome"] for e in found) == ["allowed", "failed", "failed", "failed"]
    digest = found[0]["customers"]["ids"][0]
    assert digest.startswith("ref:") and len(digest) == 36
    assert PHONE not in str(admin.audit_query(AuditQuery(action="read")))


def test_the_reference_digest_is_keyed_not_a_plain_hash(vault: Vault, admin: Session) -> None:
    """A plain SHA-256 of an 11-digit phone is found by trying every phone; the digest is an
    HMAC under a key of the vault's own, so another vault (another key) gives another one."""
    import hashlib

    with pytest.raises(NotFound):
        admin.get_customer(PHONE)
    digest = admin.audit_query(AuditQuery(customer=PHONE))[0]["customers"]["ids"][0]
    assert digest[4:] not in hashlib.sha256(PHONE.encode()).hexdigest()
    elsewhere = vault.home.path.parent
    other, token = Vault.init(elsewhere / "other", db_url=f"sqlite:///{elsewhere / 'other.db'}")
    try:
        session = other.session(token, purpose="administration")
        with pytest.raises(NotFound):
            session.get_customer(PHONE)
        assert session.audit_query(AuditQuery(customer=PHONE))[0]["customers"]["ids"] != [digest]
    finally:
        other.close()
