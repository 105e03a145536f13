"""What was pushed is kept per customer, connector and field as keyed hashes only; a page of
echoes costs one lookup; erasing (or merging away) a customer removes its push records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sync_static import plugged, static_connector

import policies
from vault.crypto import BlindIndexer
from vault.fields import FieldCatalogue
from vault.session import Session
from vault.store.schema import pushed_values
from vault.sync import Connector, ExternalCustomer, Record
from vault.sync.echoes import PushedValues
from vault.vault import Vault

PEOPLE = [(f"赵{n}", f"1350000{n:04d}") for n in range(30)]


@pytest.fixture
def page() -> list[Record]:
    """The one page the CRM serves; empty until a test fills it."""
    return []


@pytest.fixture
def crm(page: list[Record]) -> type[Connector]:
    """A CRM the vault pushes to."""
    connector = static_connector("crm", [page], pushes=frozenset({"customers"}))
    connector.pushed.clear()  # type: ignore[attr-defined]
    return connector


@pytest.fixture
def pushed(admin: Session, crm: type[Connector]) -> Iterator[list[str]]:
    """The customers of PEOPLE, each consenting to CRM sharing and pushed once to ``crm``."""
    ids = []
    for name, phone in PEOPLE:
        customer_id = admin.add_customer({"name": name, "phone": phone}, source="youzan")
        admin.grant_consent(customer_id, "crm_sharing", source="checkout")
        ids.append(customer_id)
    with plugged(crm):
        assert admin.sync("crm").pushed == len(PEOPLE)
        yield ids


def rows(vault: Vault) -> list[Any]:
    with vault._reader.connect() as connection:
        return list(connection.execute(select(pushed_values)).all())


def echo_page(crm: type[Connector], **changes: str) -> list[Record]:
    """What the CRM hands back: each pushed record under its CRM id, ``changes`` applied."""
    now = datetime.now(UTC)
    return [
        ExternalCustomer(
            external_id=f"crm-{n + 1}", observed_at=now, fields={**dict(sent.fields), **changes}
        )
        for n, sent in enumerate(crm.pushed)  # type: ignore[attr-defined]
    ]


def test_a_push_keeps_one_keyed_hash_per_field_and_never_the_value(
    vault: Vault, pushed: list[str]
) -> None:
    found = rows(vault)
    assert {(r.customer_id, r.connector, r.field) for r in found} == {
        (cid, "crm", f) for cid in pushed for f in ("name", "phone")
    }
    digests = [bytes(r.digest) for r in found]
    assert len(set(digests)) == len(digests)  # bound to the customer: equal values look unequal
    values = [v.encode() for person in PEOPLE for v in person]
    assert all(len(d) == 32 and not any(v in d for v in values) for d in digests)


def test_a_page_of_echoes_changes_nothing_and_costs_one_lookup(
    admin: Session, vault: Vault, crm: type[Connector], page: list[Record], pushed: list[str]
) -> None:
    page.extend(echo_page(crm))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if "pushed_values" in sql:
            statements.append(sql.split()[0].upper())

    event.listen(vault._engine, "before_cursor_execute", count)
    try:
        report = admin.sync("crm", full=True, push=False)
    finally:
        event.remove(vault._engine, "before_cursor_execute", count)
    assert report.pulled == len(PEOPLE) and report.updated == 0
    assert report.counts.echoes == 2 * len(PEOPLE)
    assert statements == ["SELECT"]  # one lookup for the page, nothing to forget
    for customer_id in pushed[:3]:
        fields = admin.get_customer(customer_id).fields
        assert {fields["name"].source, fields["phone"].source} == {"youzan"}


def test_a_changed_field_wins_and_its_hash_is_forgotten_the_others_kept(
    admin: Session, vault: Vault, crm: type[Connector], page: list[Record], pushed: list[str]
) -> None:
    page.extend(echo_page(crm, phone="13900000000")[:1])  # a change made in the CRM
    report = admin.sync("crm", full=True, push=False)
    assert report.updated == 1 and report.counts.echoes == 1
    changed = crm.pushed[0].customer_id  # type: ignore[attr-defined]
    phone = admin.get_customer(changed).fields["phone"]
    assert (phone.value, phone.source) == ("+8613900000000", "crm")
    kept = {(r.customer_id, r.field) for r in rows(vault)}
    assert (changed, "phone") not in kept and (changed, "name") in kept
    assert len(kept) == 2 * len(pushed) - 1


def test_erasing_a_customer_deletes_its_push_records(
    admin: Session, vault: Vault, pushed: list[str]
) -> None:
    report = admin.erase_customer(pushed[0], reason="DSAR 2026-31")
    assert report.rows_deleted["pushed_values"] == 2
    left = {r.customer_id for r in rows(vault)}
    assert pushed[0] not in left and left == set(pushed[1:])


def test_merging_a_customer_away_deletes_its_push_records(
    admin: Session, vault: Vault, pushed: list[str]
) -> None:
    admin.merge_customers(pushed[1], pushed[2])
    left = {r.customer_id for r in rows(vault)}
    assert pushed[2] not in left and pushed[1] in left


def test_the_digest_is_the_documented_blind_index_of_the_normalised_value() -> None:
    """SECURITY.md §2: HMAC-SHA256 under the blind-index key of ``echo:<connector>:<field>``,
    of ``customer_id \\0 normalised value``; a CRM's rewriting of a value gives the same digest."""
    indexer = BlindIndexer(bytes(range(32)))
    values = PushedValues(
        connector="zoho",
        catalogue=FieldCatalogue.load(Path(policies.__file__).parent / "fields.toml"),
        indexer=indexer,
    )
    expected = indexer.digest("echo:zoho:phone", "c-1\x00+8613800138000")
    assert values.digest("c-1", "phone", "+86 138 0013 8000") == expected
    assert values.digest("c-1", "phone", "13800138000") == expected
    assert values.digest("c-2", "phone", "13800138000") != expected
    assert values.digest("c-1", "phone", "not a phone") is None
