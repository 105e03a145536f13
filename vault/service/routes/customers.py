"""``/v1/customers``: find, get (field views per role), list, add, update (with provenance),
identities, orders and tags. Each route is one call of the caller's session."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from vault.serialise import customer_to_json
from vault.service._auth import CallerDep
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
from vault.session import Session

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$", description="A customer id.")
]
TagPath = Annotated[str, Path(min_length=1, max_length=128, description="A tag.")]


@router.post("/search", response_model=SearchAnswer, summary="Find customers by an exact value")
async def search(body: Search, caller: CallerDep) -> dict[str, Any]:
    """Match through blind indexes, never by decrypting. The value travels in the body, not the
    URL, so that no proxy or access log sees it. With ``records`` (default) each customer found
    is returned as your role may see it for your purpose (an audited read each)."""

    def find(session: Session) -> dict[str, Any]:
        if body.platform is not None and body.external_id is not None:
            found = session.find_by_identity(body.platform, body.external_id)
            ids = [found] if found else []
        else:
            ids = session.find_customers(*body.criterion())
        answer: dict[str, Any] = {"ids": ids}
        if body.records:
            answer["customers"] = [customer_to_json(session.get_customer(cid)) for cid in ids]
        return answer

    return await caller.run(find)


@router.get("", response_model=CustomerPage, summary="List customer ids, a page at a time")
async def list_customers(
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    after: Annotated[str | None, Query(max_length=36, pattern=r"^[A-Za-z0-9-]+$")] = None,
) -> dict[str, Any]:
    page = await caller.run(lambda s: s.list_customers(limit=limit, after=after))
    return {"customer_ids": list(page.customer_ids), "next_after": page.next_after}


@router.post(
    "", response_model=Created, status_code=status.HTTP_201_CREATED, summary="Add a customer"
)
async def add_customer(body: CustomerIn, caller: CallerDep) -> dict[str, str]:
    customer_id = await caller.run(
        lambda s: s.add_customer(
            body.fields,
            source=body.source,
            identities=[(i.platform, i.external_id) for i in body.identities],
            observed_at=body.observed_at,
        )
    )
    return {"id": customer_id}


@router.get("/{customer_id}", response_model=CustomerOut, summary="One customer")
async def get_customer(customer_id: CustomerPath, caller: CallerDep) -> dict[str, Any]:
    """The customer as your role may see it for your purpose: each field clear, masked or
    absent, with its provenance."""
    return await caller.run(lambda s: customer_to_json(s.get_customer(customer_id)))


@router.patch("/{customer_id}", response_model=Changed, summary="Set fields of a customer")
async def update_customer(
    customer_id: CustomerPath, body: CustomerUpdate, caller: CallerDep
) -> dict[str, Any]:
    """Each value keeps its provenance (``source``, ``observed_at``); a masked value never
    replaces a full one. Returns the fields that changed."""
    changed = await caller.run(
        lambda s: s.update_customer(
            customer_id, body.fields, source=body.source, observed_at=body.observed_at
        )
    )
    return {"id": customer_id, "changed": changed}


@router.post(
    "/{customer_id}/identities",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Add a platform identity",
)
async def add_identity(customer_id: CustomerPath, body: IdentityAdd, caller: CallerDep) -> Response:
    await caller.run(
        lambda s: s.add_identity(customer_id, body.platform, body.external_id, source=body.source)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{customer_id}/orders", response_model=list[OrderOut], summary="A customer's orders")
async def orders_of(customer_id: CustomerPath, caller: CallerDep) -> list[dict[str, Any]]:
    return await caller.run(lambda s: [asdict(order) for order in s.orders_of(customer_id)])


@router.post("/tags", response_model=Tagged, summary="Tag customers")
async def tag_customers(body: TagIn, caller: CallerDep) -> dict[str, int]:
    tagged = await caller.run(
        lambda s: s.tag_customers(body.customer_ids, body.tag, source=body.source)
    )
    return {"tagged": tagged}


@router.put("/{customer_id}/tags/{tag}", response_model=Tagged, summary="Tag one customer")
async def tag_customer(
    customer_id: CustomerPath, tag: TagPath, caller: CallerDep
) -> dict[str, int]:
    return {"tagged": await caller.run(lambda s: s.tag_customers([customer_id], tag, source="api"))}


@router.delete("/{customer_id}/tags/{tag}", response_model=Untagged, summary="Remove a tag")
async def untag_customer(
    customer_id: CustomerPath, tag: TagPath, caller: CallerDep
) -> dict[str, bool]:
    return {"removed": await caller.run(lambda s: s.untag_customer(customer_id, tag))}
