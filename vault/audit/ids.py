"""Customer ids of an event that names very many customers (an export), held compactly.

An export of 200,000 customers names every one of them in its audit event (and in the
``audit_event_customers`` index, so that a data-subject request finds the export). As Python
strings those ids would cost ~20 MB; here they cost 16 bytes each, appended in the order the
export reads them (by id), with their digest (``customer_digest``) kept as they come.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import overload

_WIDTH = 16


def _text(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class SortedIds(Sequence[str]):
    """UUID customer ids (lower-case, hyphenated) appended in ascending order, 16 bytes each.

    ``in_order`` stays true while every id appended is greater than the one before; the audit
    log then takes the ids and :attr:`digest` as they are instead of sorting a copy.
    """

    __slots__ = ("_data", "_hash", "_last", "in_order")

    def __init__(self) -> None:
        self._data = bytearray()
        self._last = ""
        self._hash = hashlib.sha256()
        self.in_order = True

    def append(self, customer_id: str) -> None:
        raw = bytes.fromhex(customer_id.replace("-", ""))
        if len(customer_id) != 36 or len(raw) != _WIDTH or not customer_id.islower():
            raise ValueError("not a lower-case hyphenated UUID")
        if customer_id <= self._last:
            self.in_order = False
        self._hash.update((b"\n" if self._last else b"") + customer_id.encode())
        self._last = customer_id
        self._data += raw

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the ids joined by newlines: ``customer_digest`` while in order."""
        return self._hash.hexdigest()

    def __len__(self) -> int:
        return len(self._data) // _WIDTH

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = index * _WIDTH
        return _text(bytes(self._data[start : start + _WIDTH]))

    def __iter__(self) -> Iterator[str]:
        data = bytes(self._data)
        for start in range(0, len(data), _WIDTH):
            yield _text(data[start : start + _WIDTH])
