"""``/v1/customers``: find, get (field views per role), list, add, update (with provenance),
identities, orders and tags. Each route is one call of the caller's session."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from vault.serialise import customer_to_json
from vault.service._auth import SessionDep
from vault.service.models import (
    Changed,
    Created,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    CustomerUpdate,
    IdentityAdd,
    OrderOut,
    Search,
    SearchAnswer,
    Tagged,
    TagIn,
    Untagged,
)

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="A customer id.")
]
TagPath = Annotated[str, Path(min_length=1, max_length=128, description="A tag.")]


@router.post("/search", response_model=SearchAnswer, summary="Find customers by an exact value")
def search(body: Search, session: SessionDep) -> dict[str, Any]:
    """Match through blind indexes, never by decrypting. The value travels in the body, not the
    URL, so that no proxy or access log sees it. With ``records`` (default) each customer found
    is returned as your role may see it for your purpose (an audited read each)."""
    if body.platform is not None and body.external_id is not None:
        found = session.find_by_identity(body.platform, body.external_id)
        ids = [found] if found else []
    else:
        ids = session.find_customers(*body.criterion())
    answer: dict[str, Any] = {"ids": ids}
    if body.records:
        answer["customers"] = [customer_to_json(session.get_customer(cid)) for cid in ids]
    return answer


@router.get("", response_model=CustomerPage, summary="List customer ids, a page at a time")
def list_customers(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    after: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9-]+$")] = None,
) -> dict[str, Any]:
    page = session.list_customers(limit=limit, after=after)
    return {"customer_ids": list(page.customer_ids), "next_after": page.next_after}


@router.post(
    "", response_model=Created, status_code=status.HTTP_201_CREATED, summary="Add a customer"
)
def add_customer(body: CustomerIn, session: SessionDep) -> dict[str, str]:
    customer_id = session.add_customer(
        body.fields,
        source=body.source,
        identities=[(i.platform, i.external_id) for i in body.identities],
        observed_at=body.observed_at,
    )
    return {"id": customer_id}


@router.get("/{customer_id}", response_model=CustomerOut, summary="One customer")
def get_customer(customer_id: CustomerPath, session: SessionDep) -> dict[str, Any]:
    """The customer as your role may see it for your purpose: each field clear, masked or
    absent, with its provenance."""
    return customer_to_json(session.get_customer(customer_id))


@router.patch("/{customer_id}", response_model=Changed, summary="Set fields of a customer")
def update_customer(
    customer_id: CustomerPath, body: CustomerUpdate, session: SessionDep
) -> dict[str, Any]:
    """Each value keeps its provenance (``source``, ``observed_at``); a masked value never
    replaces a full one. Returns the fields that changed."""
    changed = session.update_customer(
        customer_id, body.fields, source=body.source, observed_at=body.observed_at
    )
    return {"id": customer_id, "changed": changed}


@router.post(
    "/{customer_id}/identities",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Add a platform identity",
)
def add_identity(customer_id: CustomerPath, body: IdentityAdd, session: SessionDep) -> None:
    session.add_identity(customer_id, body.platform, body.external_id, source=body.source)


@router.get("/{customer_id}/orders", response_model=list[OrderOut], summary="A customer's orders")
def orders_of(customer_id: CustomerPath, session: SessionDep) -> list[dict[str, Any]]:
    return [asdict(order) for order in session.orders_of(customer_id)]


@router.post("/tags", response_model=Tagged, summary="Tag customers")
def tag_customers(body: TagIn, session: SessionDep) -> dict[str, int]:
    return {"tagged": session.tag_customers(body.customer_ids, body.tag, source=body.source)}


@router.put("/{customer_id}/tags/{tag}", response_model=Tagged, summary="Tag one customer")
def tag_customer(customer_id: CustomerPath, tag: TagPath, session: SessionDep) -> dict[str, int]:
    return {"tagged": session.tag_customers([customer_id], tag, source="api")}


@router.delete("/{customer_id}/tags/{tag}", response_model=Untagged, summary="Remove a tag")
def untag_customer(customer_id: CustomerPath, tag: TagPath, session: SessionDep) -> dict[str, bool]:
    return {"removed": session.untag_customer(customer_id, tag)}
