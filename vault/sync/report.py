"""What a sync or an import reports: counts only, never a value."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

COUNTS = (
    "pulled",
    "created",
    "updated",
    "merged",
    "skipped",
    "rejected",
    "suppressed",
    "queued_for_review",
    "orders",
    "interactions",
    "consent",
    "echoes",
    "pushed",
    "deleted",
    "failed",
)


@dataclass(slots=True, kw_only=True)
class Counts:
    pulled: int = 0  # records received from the platform (or rows read from a file)
    created: int = 0  # new customers
    updated: int = 0  # existing customers (found by a platform identity) that changed
    merged: int = 0  # records joined to an existing customer found by phone, email or ID number
    skipped: int = 0  # records that changed nothing
    rejected: int = 0  # records refused (invalid value, unknown field); see rejects
    suppressed: int = 0  # records of erased people, dropped
    queued_for_review: int = 0  # ambiguous matches put in the duplicates queue
    orders: int = 0  # orders recorded (new or updated)
    interactions: int = 0  # interactions recorded
    consent: int = 0  # consent decisions of the platform added to the ledger
    echoes: int = 0  # field values the platform returned that were only the vault's own push
    pushed: int = 0  # customers sent to the platform
    deleted: int = 0  # erasure requests carried out on the platform (or identities it deleted)
    failed: int = 0  # pushes or deletions the platform refused
    skipped_push: Counter[str] = field(default_factory=Counter)  # by reason: no consent, ...

    def add(self, other: Counts) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped_push.update(other.skipped_push)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in COUNTS}
        data["skipped_push"] = dict(sorted(self.skipped_push.items()))
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """A record refused: where it was and why. ``where`` is a row number or a platform id's
    position in its page, ``reason`` names the field and the rule, never the value."""

    where: str
    reason: str


@dataclass(slots=True, kw_only=True)
class SyncReport:
    connector: str
    principal: str
    dry_run: bool
    full: bool
    counts: Counts = field(default_factory=Counts)
    streams: dict[str, int] = field(default_factory=dict)  # batches committed per stream
    retries: int = 0
    rate_limit_waits: int = 0
    waited_seconds: float = 0.0
    rejects: list[Reject] = field(default_factory=list)
    error: str | None = None  # the error that stopped the run (type: message), if one did
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    # the counts, as attributes of the report itself
    @property
    def pulled(self) -> int:
        return self.counts.pulled

    @property
    def created(self) -> int:
        return self.counts.created

    @property
    def updated(self) -> int:
        return self.counts.updated

    @property
    def merged(self) -> int:
        return self.counts.merged

    @property
    def skipped(self) -> int:
        return self.counts.skipped

    @property
    def rejected(self) -> int:
        return self.counts.rejected

    @property
    def suppressed(self) -> int:
        return self.counts.suppressed

    @property
    def pushed(self) -> int:
        return self.counts.pushed

    @property
    def deleted(self) -> int:
        return self.counts.deleted

    @property
    def failed(self) -> int:
        return self.counts.failed

    @property
    def skipped_push(self) -> dict[str, int]:
        return dict(self.counts.skipped_push)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "principal": self.principal,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "full": self.full,
            "ok": self.ok,
            "error": self.error,
            **self.counts.as_dict(),
            "batches": dict(self.streams),
            "retries": self.retries,
            "rate_limit_waits": self.rate_limit_waits,
            "waited_seconds": round(self.waited_seconds, 3),
            "rejects": [{"where": r.where, "reason": r.reason} for r in self.rejects[:1000]],
        }


@dataclass(slots=True, kw_only=True)
class ImportReport(SyncReport):
    """A file import's report; ``reject_report`` is the CSV of rejected rows (row, reason)."""

    path: str = ""
    encoding: str = ""
    encoding_detected: bool = False  # False: given with --encoding (or an xlsx)
    empty_rows: int = 0  # blank rows of the file, skipped
    reject_report: str | None = None
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = SyncReport.as_dict(self)
        data.update(
            path=self.path,
            encoding=self.encoding,
            encoding_detected=self.encoding_detected,
            empty_rows=self.empty_rows,
            reject_report=self.reject_report,
            ignored_columns=self.ignored_columns,
        )
        return data
