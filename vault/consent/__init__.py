"""Consent: the append-only ledger per customer and purpose and the state derived from it,
suppression entries of erased people, and erasure requests for connected systems.

For the sync engine (plain functions on a connection, no door of their own):
:func:`active_customers`, :func:`vault.consent.suppression.erased_at`,
:func:`vault.consent.erasure.pending` and :func:`vault.consent.erasure.complete`.
"""

from vault.consent.ledger import (
    GRANTED,
    WITHDRAWN,
    ConsentEntry,
    ConsentRecord,
    ConsentSummary,
    PurposeConsent,
    active_customers,
)

__all__ = [
    "GRANTED",
    "WITHDRAWN",
    "ConsentEntry",
    "ConsentRecord",
    "ConsentSummary",
    "PurposeConsent",
    "active_customers",
]
