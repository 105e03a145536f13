"""The tamper-evident audit log: typed events, the hash chain, signed checkpoints."""

from vault.audit.chain import Checkpoint, Problem, VerifyReport
from vault.audit.events import AuditEvent
from vault.audit.log import AuditLog, AuditPage, AuditQuery

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditPage",
    "AuditQuery",
    "Checkpoint",
    "Problem",
    "VerifyReport",
]
