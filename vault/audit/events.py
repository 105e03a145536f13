"""Audit events: what happened, as a typed record. No PII: ids, field names, counts, reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("allowed", "denied", "failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One access or change. ``action`` is a policy action (read, search, write, import, sync,
    export, erase, consent, audit, keys, principals) or ``authenticate`` for token checks."""

    action: str
    outcome: str = "allowed"
    purpose: str | None = None
    customer_ids: Sequence[str] = ()
    fields: Sequence[str] = ()
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
