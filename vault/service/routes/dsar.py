"""Data-subject requests: access (the DSAR document), correction, erasure (with the connected
systems asked to erase)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from vault.service._auth import CallerDep
from vault.service.models import Changed, CorrectionIn, EraseIn, ErasureOut, ErasureRequestOut

router = APIRouter(prefix="/v1/customers", tags=["data-subject requests"])

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$", description="A customer id.")
]


@router.post("/{customer_id}/erase", response_model=ErasureOut, summary="Erase a customer")
async def erase(customer_id: CustomerPath, body: EraseIn, caller: CallerDep) -> dict[str, Any]:
    """Crypto-shredding: the data key destroyed, every row about the person deleted, a
    suppression entry kept, and an erasure request queued for every connected system the person
    had an identity on (``erasure_requests``; the sync engine carries them out)."""
    report = await caller.run(lambda s: s.erase_customer(customer_id, reason=body.reason))
    return report.to_json()


@router.get(
    "/{customer_id}/erasure",
    response_model=list[ErasureRequestOut],
    summary="Where an erasure stands on each connected system",
)
async def erasure_status(customer_id: CustomerPath, caller: CallerDep) -> list[dict[str, Any]]:
    """One entry per connected system asked to erase (pending, done or failed, with the
    system's detail); empty when the customer was never erased. Needs the ``audit`` action."""
    return await caller.run(lambda s: s.erasure_status(customer_id))


@router.get("/{customer_id}/dsar", summary="Everything held on one person (DSAR access)")
async def dsar_export(customer_id: CustomerPath, caller: CallerDep) -> dict[str, Any]:
    """Fields with provenance, identities, orders, interactions, tags, consent history, every
    access on the audit log, and the systems that received the data. Needs the ``read`` and
    ``audit`` actions; fields appear as your views show them for your purpose."""
    return await caller.run(lambda s: s.dsar_export(customer_id))


@router.post("/{customer_id}/dsar/correct", response_model=Changed, summary="DSAR correction")
async def dsar_correct(
    customer_id: CustomerPath, body: CorrectionIn, caller: CallerDep
) -> dict[str, Any]:
    """Rectify values at the person's request (provenance ``dsar``); returns what changed."""
    changed = await caller.run(lambda s: s.dsar_correct(customer_id, body.fields))
    return {"id": customer_id, "changed": changed}
