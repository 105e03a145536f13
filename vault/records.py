"""The vault's records as Python values: what the library takes and hands back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldValue:
    """One field's current value with its provenance: which source said it, and when."""

    value: str
    source: str
    observed_at: datetime
    masked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """A customer's identity on a platform (Taobao OAID, Youzan yz_open_id, Zoho id, ...)."""

    platform: str
    external_id: str
    source: str
    observed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Customer:
    id: str
    created_at: datetime
    updated_at: datetime
    fields: Mapping[str, FieldValue]
    identities: Sequence[Identity] = ()
    tags: Sequence[str] = ()

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value.value if value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCustomer:
    """A customer to add: field values (not yet normalised) and platform identities."""

    fields: Mapping[str, str]
    identities: Sequence[tuple[str, str]] = ()  # (platform, external id)
    observed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderItem:
    product_id: str
    product_name: str
    quantity: int
    unit_price: int  # minor units
    category: str | None = None

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A purchase: amounts in integer minor units (fen, cents) of ``currency``."""

    platform: str
    shop: str
    order_id: str
    status: str
    currency: str
    total_amount: int
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None = None
    refunded_at: datetime | None = None
    items: Sequence[OrderItem] = field(default_factory=tuple)
    customer_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Interaction:
    """A consultation, review, complaint or feedback; its text is stored encrypted."""

    id: str
    customer_id: str
    kind: str
    channel: str
    occurred_at: datetime
    text: str | None
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of customer ids; pass ``next_after`` back to get the next page."""

    customer_ids: Sequence[str]
    next_after: str | None
