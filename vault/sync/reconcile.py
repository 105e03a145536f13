"""Reconciliation: identities of records a platform deleted without telling anyone.

Fenxiang Xiaoke has no deleted-records feed: a contact deleted for good simply stops
appearing, so no incremental pull can report it. ``vault sync NAME --reconcile`` lists every id
the platform holds now (``Connector.list_ids``, page by page under the sync's retries) and
unbinds each identity of that platform the vault holds and the platform no longer lists, as a
pulled deletion would (the customer stays; only the link goes).

The comparison is on blind indexes, so no stored id is decrypted. Nothing changes unless the
listing ran to its end: a listing that failed midway raises with the vault untouched. A listing
of no ids at all while the vault holds identities is refused (a wrong object or a permission
the platform took away looks exactly like that), and ``--dry-run`` reports what would go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection, bindparam, delete, select

from vault.crypto import BlindIndexer
from vault.errors import ConnectorError
from vault.store.customers import IDENTITY_INDEX_PREFIX
from vault.store.schema import customer_identities

ListPage = Callable[[str | None], tuple[Sequence[str], str | None]]
MAX_PAGES = 1_000_000  # a platform whose "next page" never ends is a protocol error


def listed_digests(list_page: ListPage, indexer: BlindIndexer, platform: str) -> set[bytes]:
    """The blind index of every id the platform lists, walking its pages to the end."""
    digests: set[bytes] = set()
    after: str | None = None
    for _ in range(MAX_PAGES):
        ids, after = list_page(after)
        digests.update(indexer.digest(IDENTITY_INDEX_PREFIX + platform, i.strip()) for i in ids)
        if after is None:
            return digests
    raise ConnectorError("list_ids never reached its last page", connector=platform)


def missing_identities(
    connection: Connection, platform: str, listed: set[bytes]
) -> list[tuple[int, str]]:
    """``(identity row id, customer id)`` of each identity of ``platform`` not in ``listed``."""
    rows = connection.execute(
        select(
            customer_identities.c.id,
            customer_identities.c.customer_id,
            customer_identities.c.external_index,
        ).where(customer_identities.c.platform == platform)
    )
    held = [(row.id, row.customer_id, bytes(row.external_index)) for row in rows]
    if held and not listed:
        raise ConnectorError(
            f"the platform listed no record while the vault holds {len(held)} of its "
            "identities: refusing to unbind them all (check the connector's object and the "
            "app's permissions)",
            connector=platform,
        )
    return [(row_id, customer_id) for row_id, customer_id, digest in held if digest not in listed]


def unbind(connection: Connection, rows: Sequence[tuple[int, str]]) -> None:
    if rows:
        connection.execute(
            delete(customer_identities).where(customer_identities.c.id == bindparam("row_id")),
            [{"row_id": row_id} for row_id, _ in rows],
        )
