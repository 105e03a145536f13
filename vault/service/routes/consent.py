"""Consent: grant, withdraw, the current state and ledger of a customer, bulk import (CSV)."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status

from vault.errors import InvalidValue
from vault.service._auth import CallerDep
from vault.service.models import (
    ConsentChange,
    ConsentImportOut,
    ConsentRecorded,
    ConsentSummaryOut,
)
from vault.session import Session

router = APIRouter(tags=["consent"])

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$", description="A customer id.")
]
IMPORT_PATH = "/v1/consent/import"
MAX_IMPORT_BYTES = 64 * 1024 * 1024  # a consent CSV body; larger is refused as it arrives (422)


@router.post(
    "/v1/customers/{customer_id}/consent/grant",
    response_model=ConsentRecorded,
    status_code=status.HTTP_201_CREATED,
    summary="Record a grant of consent",
)
async def grant(
    customer_id: CustomerPath, body: ConsentChange, caller: CallerDep
) -> dict[str, int]:
    ledger_id = await caller.run(
        lambda s: s.grant_consent(
            customer_id, body.purpose, source=body.source, evidence=body.evidence, at=body.at
        )
    )
    return {"ledger_id": ledger_id}


@router.post(
    "/v1/customers/{customer_id}/consent/withdraw",
    response_model=ConsentRecorded,
    status_code=status.HTTP_201_CREATED,
    summary="Record a withdrawal of consent",
)
async def withdraw(
    customer_id: CustomerPath, body: ConsentChange, caller: CallerDep
) -> dict[str, int]:
    ledger_id = await caller.run(
        lambda s: s.withdraw_consent(
            customer_id, body.purpose, source=body.source, evidence=body.evidence, at=body.at
        )
    )
    return {"ledger_id": ledger_id}


@router.get(
    "/v1/customers/{customer_id}/consent",
    response_model=ConsentSummaryOut,
    summary="Current consent per purpose, and the ledger",
)
async def consent_of(customer_id: CustomerPath, caller: CallerDep) -> dict[str, Any]:
    return await caller.run(lambda s: asdict(s.consent_of(customer_id)))


@router.post(
    IMPORT_PATH,
    response_model=ConsentImportOut,
    summary="Import grants and withdrawals from CSV",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The CSV of `vault consent import` (UTF-8 or GB18030/GBK, detected), "
            "at most 64 MiB; a line at most 1 Mi characters, a cell at most 128 Ki.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def import_consent(request: Request, caller: CallerDep) -> dict[str, Any]:
    """All rows or none: a malformed row, or one past a limit, stops the import with a 422
    naming its line. The body is held in memory only (an anonymous in-memory file handed to the
    library by path), never on disk, and one larger than 64 MiB is refused as it arrives."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT_BYTES:
            raise InvalidValue(
                field="body",
                reason=f"larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB (the limit for "
                "one consent import)",
            )
    data = bytes(body)
    return await caller.run(lambda s: _import(s, data))


def _import(session: Session, data: bytes) -> dict[str, Any]:
    descriptor = os.memfd_create("consent-import.csv", os.MFD_CLOEXEC)
    try:
        os.write(descriptor, data)
        report = session.import_consent(f"/proc/self/fd/{descriptor}")
    finally:
        os.close(descriptor)
    return asdict(report)
