"""Plain-JSON views of the vault's records, shared by the CLI's ``--json`` and other faces."""

from __future__ import annotations

from typing import Any

from vault.records import Customer


def customer_to_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "created_at": customer.created_at.isoformat(),
        "updated_at": customer.updated_at.isoformat(),
        "fields": {
            name: {
                "value": value.value,
                "masked": value.masked,
                "source": value.source,
                "observed_at": value.observed_at.isoformat(),
            }
            for name, value in sorted(customer.fields.items())
        },
        "identities": [
            {
                "platform": identity.platform,
                "external_id": identity.external_id,
                "source": identity.source,
                "observed_at": identity.observed_at.isoformat(),
            }
            for identity in customer.identities
        ],
        "tags": list(customer.tags),
    }
