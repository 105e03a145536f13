"""Plain-JSON views of the vault's records, shared by the CLI's ``--json`` and other faces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vault.records import Customer

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): every CSV
# the vault writes (customer exports, audit exports) puts a ``'`` before them.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """A cell a spreadsheet will show as text: a leading ``'`` before a formula trigger."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def rfc3339(moment: datetime) -> str:
    """RFC 3339 with the offset, in UTC (a naive time is the store's UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def customer_to_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "created_at": rfc3339(customer.created_at),
        "updated_at": rfc3339(customer.updated_at),
        "fields": {
            name: {
                "value": value.value,
                "masked": value.masked,
                "source": value.source,
                "observed_at": rfc3339(value.observed_at),
            }
            for name, value in sorted(customer.fields.items())
        },
        "identities": [
            {
                "platform": identity.platform,
                "external_id": identity.external_id,
                "source": identity.source,
                "observed_at": rfc3339(identity.observed_at),
            }
            for identity in customer.identities
        ],
        "tags": list(customer.tags),
    }
