"""The consent ledger: append-only grants and withdrawals per customer and purpose.

``consent_events`` is the ledger; nothing updates or deletes a row of it (erasure aside).
``consent_state`` holds the state derived from it, one row per (customer, purpose): the event
with the latest ``at`` (the time the customer granted or withdrew; ties go to the later
recorded). It is updated in the same transaction as the ledger, so a withdrawal takes effect for
every export and sync that starts after it commits.

A purpose whose legal basis is not consent (contract, legal obligation, ...) needs no grant:
:func:`active_customers` passes every customer for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, delete, insert, select

from vault.access.policy import Policy, Purpose
from vault.errors import InvalidValue
from vault.store.engine import as_utc, utcnow
from vault.store.schema import consent_events, consent_state

GRANTED = "granted"
WITHDRAWN = "withdrawn"
STATES = (GRANTED, WITHDRAWN)
CONSENT_BASIS = "consent"
EVIDENCE_MAX = 256
CHANNEL_MAX = 64
CLOCK_SKEW = timedelta(minutes=5)
IN_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentEntry:
    """One grant or withdrawal to append to the ledger."""

    customer_id: str
    purpose: str
    state: str
    at: datetime
    channel: str
    evidence: str | None = None
    policy_version: int | None = None  # default: the purpose's current version


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRecord:
    """One ledger row."""

    id: int
    purpose: str
    state: str
    at: datetime
    recorded_at: datetime
    channel: str
    policy_version: int
    evidence: str | None
    recorded_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PurposeConsent:
    """The current consent of one customer for one purpose, derived from the ledger."""

    purpose: str
    legal_basis: str
    needs_consent: bool
    state: str | None  # granted | withdrawn | None (never asked)
    active: bool  # may the purpose use this customer's data now?
    at: datetime | None
    policy_version: int | None
    current_version: int
    needs_renewal: bool  # granted under an older version of the purpose's terms


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentSummary:
    customer_id: str
    purposes: dict[str, PurposeConsent]
    ledger: list[ConsentRecord]


def needs_consent(purpose: Purpose) -> bool:
    return purpose.legal_basis == CONSENT_BASIS


def _chunks(items: Sequence[str], size: int = IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_entry(policy: Policy, entry: ConsentEntry, *, now: datetime | None = None) -> None:
    """Refuse an entry that names an unknown purpose or state, a future time, or a channel or
    evidence reference that is not a short reference. Messages never carry the value."""
    if entry.purpose not in policy.purposes:
        raise InvalidValue(
            field="purpose",
            reason=f"unknown purpose (known: {', '.join(sorted(policy.purposes))})",
        )
    if entry.state not in STATES:
        raise InvalidValue(field="state", reason="granted or withdrawn")
    if entry.at.tzinfo is None:
        raise InvalidValue(field="at", reason="a time with a zone (UTC if in doubt)")
    if entry.at > (now or utcnow()) + CLOCK_SKEW:
        raise InvalidValue(field="at", reason="a consent cannot be given or withdrawn in future")
    if not entry.channel or len(entry.channel) > CHANNEL_MAX or not entry.channel.isprintable():
        raise InvalidValue(field="source", reason=f"a channel name of 1 to {CHANNEL_MAX} chars")
    if entry.evidence is not None and (
        not entry.evidence or len(entry.evidence) > EVIDENCE_MAX or not entry.evidence.isprintable()
    ):
        raise InvalidValue(
            field="evidence", reason=f"a reference of 1 to {EVIDENCE_MAX} printable characters"
        )
    if entry.policy_version is not None and entry.policy_version < 1:
        raise InvalidValue(field="policy_version", reason="a whole number from 1")


def record(
    connection: Connection,
    policy: Policy,
    entries: Sequence[ConsentEntry],
    *,
    recorded_by: str,
) -> list[int]:
    """Append ``entries`` to the ledger and bring the derived state up to date; returns the new
    ledger ids in order. The caller has checked that the customers exist."""
    if not entries:
        return []
    now = utcnow()
    for entry in entries:
        check_entry(policy, entry, now=now)
    rows: list[dict[str, object]] = [
        {
            "customer_id": e.customer_id,
            "purpose": e.purpose,
            "state": e.state,
            "at": e.at,
            "recorded_at": now,
            "channel": e.channel,
            "policy_version": e.policy_version or policy.purposes[e.purpose].version,
            "evidence": e.evidence,
            "recorded_by": recorded_by,
        }
        for e in entries
    ]
    ids = [
        int(i)
        for i in connection.execute(
            insert(consent_events).returning(consent_events.c.id, sort_by_parameter_order=True),
            rows,
        ).scalars()
    ]
    # The latest event per (customer, purpose) in this batch, by (at, ledger id).
    latest: dict[tuple[str, str], tuple[datetime, int, dict[str, object]]] = {}
    for event_id, row in zip(ids, rows, strict=True):
        key = (str(row["customer_id"]), str(row["purpose"]))
        at = row["at"]
        assert isinstance(at, datetime)
        best = latest.get(key)
        if best is None or (at, event_id) >= (best[0], best[1]):
            latest[key] = (at, event_id, row)
    customers = sorted({key[0] for key in latest})
    current: dict[tuple[str, str], tuple[datetime, int]] = {}
    for chunk in _chunks(customers):
        for found in connection.execute(
            select(
                consent_state.c.customer_id,
                consent_state.c.purpose,
                consent_state.c.at,
                consent_state.c.event_id,
            ).where(consent_state.c.customer_id.in_(chunk))
        ):
            current[(found.customer_id, found.purpose)] = (as_utc(found.at), found.event_id)
    replace: list[dict[str, object]] = []
    for key, (at, event_id, row) in latest.items():
        existing = current.get(key)
        if existing is not None and (as_utc(at), event_id) < existing:
            continue  # a back-dated entry: the ledger keeps it, the state keeps the later one
        replace.append(
            {
                "customer_id": key[0],
                "purpose": key[1],
                "state": row["state"],
                "at": at,
                "policy_version": row["policy_version"],
                "event_id": event_id,
            }
        )
    stale = [r for r in replace if (r["customer_id"], r["purpose"]) in current]
    if stale:
        connection.execute(
            delete(consent_state).where(
                and_(
                    consent_state.c.customer_id == bindparam("b_customer"),
                    consent_state.c.purpose == bindparam("b_purpose"),
                )
            ),
            [{"b_customer": r["customer_id"], "b_purpose": r["purpose"]} for r in stale],
        )
    if replace:
        connection.execute(insert(consent_state), replace)
    return ids


def active_customers(
    connection: Connection, policy: Policy, purpose: str, customer_ids: Iterable[str]
) -> set[str]:
    """Those of ``customer_ids`` whose consent for ``purpose`` is active now, or all of them if
    the purpose's legal basis needs no consent. An unknown purpose passes nobody."""
    wanted = list(dict.fromkeys(customer_ids))
    known = policy.purposes.get(purpose)
    if known is None:
        return set()
    if not needs_consent(known):
        return set(wanted)
    active: set[str] = set()
    for chunk in _chunks(wanted):
        active.update(
            connection.execute(
                select(consent_state.c.customer_id).where(
                    consent_state.c.purpose == purpose,
                    consent_state.c.state == GRANTED,
                    consent_state.c.customer_id.in_(chunk),
                )
            ).scalars()
        )
    return active


def history(connection: Connection, customer_id: str) -> list[ConsentRecord]:
    """The customer's ledger, oldest first (by the time of the grant or withdrawal)."""
    return [
        ConsentRecord(
            id=row.id,
            purpose=row.purpose,
            state=row.state,
            at=as_utc(row.at),
            recorded_at=as_utc(row.recorded_at),
            channel=row.channel,
            policy_version=row.policy_version,
            evidence=row.evidence,
            recorded_by=row.recorded_by,
        )
        for row in connection.execute(
            select(consent_events)
            .where(consent_events.c.customer_id == customer_id)
            .order_by(consent_events.c.at, consent_events.c.id)
        )
    ]


def summary(connection: Connection, policy: Policy, customer_id: str) -> ConsentSummary:
    """Current state per purpose (every purpose of the policy), the ledger, renewal flags."""
    states = {
        row.purpose: row
        for row in connection.execute(
            select(consent_state).where(consent_state.c.customer_id == customer_id)
        )
    }
    purposes: dict[str, PurposeConsent] = {}
    for name, purpose in sorted(policy.purposes.items()):
        row = states.get(name)
        consent = needs_consent(purpose)
        state = row.state if row is not None else None
        purposes[name] = PurposeConsent(
            purpose=name,
            legal_basis=purpose.legal_basis,
            needs_consent=consent,
            state=state,
            active=(state == GRANTED) if consent else True,
            at=as_utc(row.at) if row is not None else None,
            policy_version=row.policy_version if row is not None else None,
            current_version=purpose.version,
            needs_renewal=(
                state == GRANTED and row is not None and row.policy_version < purpose.version
            ),
        )
    return ConsentSummary(
        customer_id=customer_id, purposes=purposes, ledger=history(connection, customer_id)
    )


def forget(connection: Connection, customer_id: str) -> int:
    """Erasure: remove the customer's ledger and derived state; returns the ledger rows removed.
    (The audit log keeps, without PII, that each grant and withdrawal happened.)"""
    connection.execute(delete(consent_state).where(consent_state.c.customer_id == customer_id))
    result = connection.execute(
        delete(consent_events).where(consent_events.c.customer_id == customer_id)
    )
    return int(result.rowcount or 0)
