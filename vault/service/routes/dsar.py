"""Data-subject requests: erasure (with the connected systems asked to erase)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from vault.service._auth import CallerDep
from vault.service.models import EraseIn, ErasureOut

router = APIRouter(prefix="/v1/customers", tags=["data-subject requests"])

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="A customer id.")
]


@router.post("/{customer_id}/erase", response_model=ErasureOut, summary="Erase a customer")
async def erase(customer_id: CustomerPath, body: EraseIn, caller: CallerDep) -> dict[str, Any]:
    """Crypto-shredding: the data key destroyed, every row about the person deleted, a
    suppression entry kept, and an erasure request queued for every connected system the person
    had an identity on (``erasure_requests``; the sync engine carries them out)."""
    report = await caller.run(lambda s: s.erase_customer(customer_id, reason=body.reason))
    return report.to_json()
