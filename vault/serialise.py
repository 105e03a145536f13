"""Plain-JSON views of the vault's records, shared by the CLI's ``--json`` and other faces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vault.records import Customer


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
