"""``/v1/audit``: query with the CLI's filters, export (JSON Lines with checkpoints, or CSV,
streamed), verify, checkpoint and the checkpoint public key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from vault.audit import AuditQuery, Checkpoint
from vault.service._auth import CallerDep
from vault.service._stream import Stream
from vault.service.models import (
    AuditEventOut,
    CheckpointOut,
    Moment,
    PublicKey,
    VerifyAnswer,
    VerifyIn,
)

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Id = Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")]


@dataclass(frozen=True, slots=True)
class Filters:
    actor: str | None
    customer: str | None
    action: str | None
    event_purpose: str | None
    outcome: str | None
    since: datetime | None
    until: datetime | None

    def query(self, limit: int | None) -> AuditQuery:
        return AuditQuery(
            actor=self.actor,
            customer=self.customer,
            action=self.action,
            purpose=self.event_purpose,
            outcome=self.outcome,
            since=self.since,
            until=self.until,
            limit=limit,
        )


async def filters(
    actor: Id = None,
    customer: Annotated[str | None, Query(max_length=36, pattern=r"^[A-Za-z0-9-]+$")] = None,
    action: Id = None,
    event_purpose: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="Events made for it."),
    ] = None,
    outcome: Annotated[Literal["allowed", "denied", "failed"] | None, Query()] = None,
    since: Annotated[Moment | None, Query(description="From this time (RFC 3339).")] = None,
    until: Annotated[Moment | None, Query(description="Before this time (RFC 3339).")] = None,
) -> Filters:
    return Filters(actor, customer, action, event_purpose, outcome, since, until)


FiltersDep = Annotated[Filters, Depends(filters)]


@router.get("/events", response_model=list[AuditEventOut], summary="Find audit events")
async def query(
    caller: CallerDep,
    where: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[dict[str, Any]]:
    """Oldest first, each as it is hashed (see SECURITY.md) plus its ``hash``."""
    return await caller.run(lambda s: s.audit_query(where.query(limit)))


MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@router.get(
    "/export",
    response_class=StreamingResponse,
    summary="Export audit events (streamed)",
    responses={
        200: {
            "description": "JSON Lines (events, then the checkpoints that cover them) or CSV.",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        }
    },
)
async def export(
    caller: CallerDep,
    where: FiltersDep,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> Response:
    """The same files as `vault audit export`: JSON Lines carry the signed checkpoints, so an
    auditor can verify the export away from the vault."""

    def write(out: IO[str]) -> int:
        return caller.session().audit_export(where.query(None), out, format)

    stream: Stream[int] = Stream(write, text=True)
    first = await stream.first()
    return StreamingResponse(
        stream.body(first),
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="audit.{format}"'},
    )


@router.post("/verify", response_model=VerifyAnswer, summary="Verify the hash chain")
async def verify(caller: CallerDep, body: VerifyIn | None = None) -> dict[str, Any]:
    """Walk the chain, check the head and every stored checkpoint, and the checkpoints you kept
    apart (``checkpoints``): a rollback or truncation behind one of those shows."""
    external = [Checkpoint.from_json(c.model_dump()) for c in (body.checkpoints if body else [])]
    report = await caller.run(lambda s: s.audit_verify(external))
    return {
        "ok": report.ok,
        "events": report.events,
        "last_seq": report.last_seq,
        "head_hash": report.head_hash.hex(),
        "checkpoints": report.checkpoints,
        "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in report.problems],
    }


@router.post("/checkpoints", response_model=CheckpointOut, summary="Sign the head now")
async def checkpoint(caller: CallerDep) -> dict[str, Any]:
    return await caller.run(lambda s: s.audit_checkpoint().to_json(s.audit_public_key()))


@router.get("/public-key", response_model=PublicKey, summary="The checkpoint signing key")
async def public_key(caller: CallerDep) -> dict[str, str]:
    """The Ed25519 key (hex, raw 32 bytes) that verifies checkpoints."""
    key = await caller.run(lambda s: s.audit_public_key())
    return {"algorithm": "ed25519", "public_key": key.hex()}
