"""Echoes: recognising the vault's own pushes when a connected system hands them back.

A push to a CRM makes the CRM's record newer than the push, so the next pull returns the pushed
values with the CRM's (high) rank and a fresh time. Taken at face value, such an echo would
overwrite a newer value from a lower-ranked source that arrived after the push, and would move
every pushed field's provenance to the CRM (which then outranks the source that really said
it). The echo carries no information the vault does not already have, so it must change nothing.

What the vault last pushed is kept per (customer, connector, field) in ``pushed_values``, never
in clear: the digest is the store's blind index (:class:`vault.crypto.BlindIndexer`, HMAC-SHA256
under a key derived per label) of the *normalised* value, so the CRM's reformatting (an 11-digit
mobile for ``+86 138 …``, a name split into two fields and joined again) still matches. The
label is ``echo:<connector>:<field>`` and the hashed text starts with the customer id, so a
digest shows neither the value nor that two customers share one (names and addresses have no
search index, and this table must not become one).

On a pull, a field whose value matches its digest is an echo and is dropped before the merge
rule; a field whose value differs is a change made in the CRM: it goes through the merge rule as
before, and its digest is forgotten, since the CRM no longer holds what was pushed (so a later
change back to the pushed value is a change too). Lookups and deletes are one statement per page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select

from vault.crypto import BlindIndexer
from vault.errors import InvalidValue
from vault.fields import FieldCatalogue
from vault.store.schema import pushed_values

ECHO_INDEX_PREFIX = "echo:"
LOOKUP_CHUNK = 400  # customer ids per IN (...) list

FieldKey = tuple[str, str]  # (customer id, field)


class PushedValues:
    """Reads and writes what was pushed to one connector (``pushed_values``)."""

    def __init__(self, *, connector: str, catalogue: FieldCatalogue, indexer: BlindIndexer):
        self.connector = connector
        self.catalogue = catalogue
        self.indexer = indexer

    def digest(self, customer_id: str, name: str, raw: str) -> bytes | None:
        """The digest of ``raw`` as ``customer_id``'s value of ``name``; None for a value the
        catalogue cannot normalise (it is never an echo, and never recorded)."""
        spec = self.catalogue.get(name)
        if spec is None:
            return None
        try:
            normalised = spec.normalise(raw)
        except InvalidValue:
            return None
        return self.indexer.digest(
            f"{ECHO_INDEX_PREFIX}{self.connector}:{name}", f"{customer_id}\x00{normalised.value}"
        )

    def remember(
        self,
        connection: Connection,
        pushed: Sequence[tuple[str, Mapping[str, str]]],
        *,
        at: datetime,
    ) -> None:
        """Record what ``pushed`` (customer id, fields sent) put on the platform, replacing the
        previous digest of each field sent; a field not sent keeps its digest, because the
        platform keeps the value it was last sent."""
        rows = [
            {"cid": customer_id, "f": name, "digest": digest}
            for customer_id, fields in pushed
            for name, raw in fields.items()
            if (digest := self.digest(customer_id, name, raw)) is not None
        ]
        if not rows:
            return
        self._delete(connection, rows)
        connection.execute(
            insert(pushed_values).values(
                customer_id=bindparam("cid"),
                connector=self.connector,
                field=bindparam("f"),
                digest=bindparam("digest"),
                pushed_at=at,
            ),
            rows,
        )

    def load(self, connection: Connection, customer_ids: Iterable[str]) -> PageEchoes:
        """What was pushed to these customers (a page's worth), for :class:`PageEchoes`."""
        ids = sorted(set(customer_ids))
        known: dict[FieldKey, bytes] = {}
        query = select(
            pushed_values.c.customer_id, pushed_values.c.field, pushed_values.c.digest
        ).where(
            pushed_values.c.connector == self.connector,
            pushed_values.c.customer_id.in_(bindparam("ids", expanding=True)),
        )
        for start in range(0, len(ids), LOOKUP_CHUNK):
            for row in connection.execute(query, {"ids": ids[start : start + LOOKUP_CHUNK]}):
                known[(row.customer_id, row.field)] = bytes(row.digest)
        return PageEchoes(self, known)

    def _delete(self, connection: Connection, rows: Sequence[Mapping[str, object]]) -> None:
        connection.execute(
            delete(pushed_values).where(
                pushed_values.c.customer_id == bindparam("cid"),
                pushed_values.c.connector == self.connector,
                pushed_values.c.field == bindparam("f"),
            ),
            [{"cid": row["cid"], "f": row["f"]} for row in rows],
        )


@dataclass(slots=True)
class PageEchoes:
    """The digests of one page's customers: drops echoes, notes the fields the CRM changed."""

    pushed: PushedValues
    known: dict[FieldKey, bytes]
    changed: set[FieldKey] = field(default_factory=set)
    echoed: int = 0

    def without_echoes(self, customer_id: str, fields: Mapping[str, str]) -> dict[str, str]:
        """``fields`` less the values that are only what was pushed to this customer."""
        kept: dict[str, str] = {}
        for name, raw in fields.items():
            expected = self.known.get((customer_id, name))
            if expected is None:
                kept[name] = raw
            elif self.pushed.digest(customer_id, name, raw) == expected:
                self.echoed += 1
            else:
                kept[name] = raw
                self.changed.add((customer_id, name))
        return kept

    def forget_changed(self, connection: Connection) -> None:
        """Forget the digests of the fields the CRM changed since the push (one statement)."""
        if self.changed:
            self.pushed._delete(
                connection, [{"cid": cid, "f": name} for cid, name in sorted(self.changed)]
            )
            for key in self.changed:
                self.known.pop(key, None)
            self.changed.clear()
