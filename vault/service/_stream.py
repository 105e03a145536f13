"""Streaming a library call that writes to a file into an HTTP response, memory flat.

The library's exports write to a file object (``export(purpose, out, ...)``,
``audit_export(query, out, fmt)``). Here the call runs in a thread of its own and writes into a
bounded queue of chunks; the response body reads from the queue. Memory holds at most
``QUEUE_CHUNKS`` chunks whatever the size of the export. The status is decided by the first
thing the call produces: an error before any output (a refusal, a bad filter) is an ordinary
error answer; an error after the first chunk can only cut the body short, which the client sees
as an incomplete chunked transfer. A client that goes away stops the writer at its next write.
(An export commits its ``started`` audit event before it writes anything, so a refusal to
audit is an ordinary error answer, never a cut body: vault.export.operations.)
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

import anyio.to_thread

T = TypeVar("T")
CHUNK_BYTES = 64 * 1024
QUEUE_CHUNKS = 8
PUT_POLL_SECONDS = 0.5


class ClientGone(Exception):
    """The HTTP client stopped reading; the writer gives up (its transaction rolls back)."""


@dataclass(frozen=True, slots=True)
class _Done(Generic[T]):
    result: T


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class _QueueSink(io.RawIOBase):
    def __init__(self, chunks: queue.Queue[Any], cancelled: threading.Event) -> None:
        self._chunks = chunks
        self._cancelled = cancelled

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        while True:
            if self._cancelled.is_set():
                raise ClientGone("the client went away")
            try:
                self._chunks.put(chunk, timeout=PUT_POLL_SECONDS)
                return len(chunk)
            except queue.Full:
                continue


class Stream(Generic[T]):
    """``Stream(lambda out: session.export(..., out))``: run it, then ``await first()``."""

    def __init__(self, call: Callable[[IO[Any]], T], *, text: bool = False) -> None:
        self._call = call
        self._text = text
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._cancelled = threading.Event()
        self.result: T | None = None
        self._thread = threading.Thread(target=self._run, name="vault-export", daemon=True)

    def _run(self) -> None:
        sink = io.BufferedWriter(_QueueSink(self._chunks, self._cancelled), CHUNK_BYTES)
        try:
            if self._text:
                text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
                result = self._call(text)
                text.flush()
                text.detach()
            else:
                result = self._call(sink)
            sink.flush()
            outcome: Any = _Done(result)
        except BaseException as error:  # handed to the response, which raises or cuts short
            outcome = _Failed(error)
        while not self._cancelled.is_set():
            try:
                self._chunks.put(outcome, timeout=PUT_POLL_SECONDS)
                break
            except queue.Full:
                continue

    async def _next(self) -> Any:
        return await anyio.to_thread.run_sync(self._chunks.get)

    async def first(self) -> bytes | None:
        """Start the call; the first chunk, or ``None`` when it finished without output.
        Raises what the call raised before writing anything."""
        self._thread.start()
        item = await self._next()
        return self._settle(item)

    def _settle(self, item: Any) -> bytes | None:
        if isinstance(item, _Failed):
            raise item.error
        if isinstance(item, _Done):
            self.result = item.result
            return None
        assert isinstance(item, bytes)
        return item

    async def body(self, first: bytes | None) -> AsyncIterator[bytes]:
        """The response body: ``first``, then every chunk until the call is done."""
        try:
            if first is None:
                return
            yield first
            while True:
                chunk = self._settle(await self._next())
                if chunk is None:
                    return
                yield chunk
        finally:
            self._cancelled.set()

    def cancel(self) -> None:
        self._cancelled.set()
