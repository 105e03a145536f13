"""Customer ids of an event that names very many customers (an export), held compactly.

An export of 200,000 customers names every one of them in its audit event (and in the
``audit_event_customers`` index, so that a data-subject request finds the export). As Python
strings those ids would cost ~20 MB; here they cost 16 bytes each, appended in the order the
export reads them (by id), and the audit log streams them into its digest and index.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import overload

_WIDTH = 16


class SortedIds(Sequence[str]):
    """UUID customer ids appended in ascending order, 16 bytes each.

    ``in_order`` stays true while every id appended is greater than the one before; the audit
    log then uses the ids as they are (already sorted and unique) instead of sorting a copy.
    """

    __slots__ = ("_data", "_last", "in_order")

    def __init__(self) -> None:
        self._data = bytearray()
        self._last = b""
        self.in_order = True

    def append(self, customer_id: str) -> None:
        raw = uuid.UUID(customer_id).bytes
        if raw <= self._last:
            self.in_order = False
        self._last = raw
        self._data += raw

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
        return str(uuid.UUID(bytes=bytes(self._data[start : start + _WIDTH])))

    def __iter__(self) -> Iterator[str]:
        data = self._data
        for start in range(0, len(data), _WIDTH):
            yield str(uuid.UUID(bytes=bytes(data[start : start + _WIDTH])))
