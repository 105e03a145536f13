"""Witnesses: signed checkpoints written where the database's writers cannot write.

``vault audit checkpoint --witness DIR`` writes one; ``vault serve --witness DIR`` runs a
:class:`WitnessSchedule` that writes one every N events and every T seconds (when the log grew).
``vault audit verify --witness DIR`` checks the log against all of them. What they make
detectable and what not is in SECURITY.md §5.6: any rewrite, deletion or truncation of events
up to the newest witnessed checkpoint; not events after it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from vault.audit.chain import Checkpoint
from vault.audit.events import AuditEvent
from vault.audit.log import read_witness
from vault.errors import VaultError

if TYPE_CHECKING:
    from vault.vault import Vault

WITNESS_ACTOR = "vault-serve"  # the events of scheduled checkpoints name this actor
log = structlog.get_logger("vault.audit")


class WitnessSchedule:
    """Checkpoints the head into ``directory`` once ``every_events`` events were appended since
    the last one, or ``every_seconds`` passed and the log grew. ``run_once`` does one check
    (tests call it); ``start`` runs the checks on a daemon thread until ``stop``."""

    def __init__(
        self, vault: Vault, directory: Path, *, every_events: int, every_seconds: float
    ) -> None:
        if every_events < 1 or every_seconds <= 0:
            raise ValueError("every_events must be >= 1 and every_seconds > 0")
        self._vault = vault
        self.directory = Path(directory)
        self.every_events = every_events
        self.every_seconds = every_seconds
        known = read_witness(self.directory)
        self._last_seq = max((c.seq for c in known), default=0)
        self._last_time = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, now: float | None = None) -> Checkpoint | None:
        now = time.monotonic() if now is None else now
        audit = self._vault.audit
        with self._vault._reader.connect() as connection:
            head = audit.head(connection)
        if head is None or head[0] <= self._last_seq:
            return None
        grown = head[0] - self._last_seq
        if grown < self.every_events and now - self._last_time < self.every_seconds:
            return None
        try:
            with self._vault._transaction() as connection:
                audit.append(
                    connection,
                    AuditEvent(action="audit", details={"operation": "witness"}),
                    actor=WITNESS_ACTOR,
                    roles=(),
                )
                checkpoint = audit.checkpoint(connection, read_witness(self.directory))
        except VaultError as error:
            log.warning("audit_witness_refused", problem=str(error))
            self._last_time = now
            return None
        audit.publish(checkpoint, [self.directory])
        self._last_seq, self._last_time = checkpoint.seq, now
        return checkpoint

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(min(self.every_seconds, 1.0)):
                self.run_once()

        self._thread = threading.Thread(target=loop, name="audit-witness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
