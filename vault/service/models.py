"""The API's request and response bodies. Requests refuse unknown fields (422), not ignore them.

Names follow the library's (``fields``, ``identities``, ``source``, ``observed_at``); the JSON of
a customer is :func:`vault.serialise.customer_to_json`, the same as the CLI's ``--json``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Source = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
CustomerId = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
Value = Annotated[str, Field(max_length=4096)]
ExternalId = Annotated[str, Field(min_length=1, max_length=256)]
Tag = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Platform = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    """Pydantic would read ``0.5`` or ``"1700000000"`` as a Unix time; the schema says
    ``date-time`` (RFC 3339, with its offset), so only that is accepted."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with its offset: 2026-01-31T08:00:00Z")
    return datetime.fromisoformat(value.upper())


Moment = Annotated[datetime, BeforeValidator(_rfc3339)]
"""A request's date-time: RFC 3339 with an offset, nothing else."""


def _holds_nul(data: Any) -> bool:
    if isinstance(data, str):
        return "\x00" in data
    if isinstance(data, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in data.items())
    if isinstance(data, list | tuple):
        return any(_holds_nul(item) for item in data)
    return False


class Request(BaseModel):
    """Strict: a JSON ``"1"`` is no integer and ``1.0`` no count, as the schema says."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """PostgreSQL text cannot hold a NUL, and no value of the vault's has one."""
        if _holds_nul(data):
            raise ValueError("a NUL character (\\u0000) is in no valid value")
        return data


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors, health ----------------------------------------------------------------------------


class ErrorDetail(Answer):
    type: str
    message: str
    request_id: str | None = None
    problems: list[dict[str, Any]] | None = None


class ErrorAnswer(Answer):
    error: ErrorDetail


class Health(Answer):
    status: Literal["ok"]
    database: Literal["reachable"]


# --- customers ---------------------------------------------------------------------------------


class IdentityIn(Request):
    platform: Platform
    external_id: ExternalId


class CustomerIn(Request):
    fields: dict[Name, Value] = Field(default_factory=dict, max_length=64)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=32)
    source: Source = "api"
    observed_at: Moment | None = None

    @model_validator(mode="after")
    def _something(self) -> CustomerIn:
        if not self.fields and not self.identities:
            raise ValueError("give at least one field or identity")
        return self


class CustomerUpdate(Request):
    fields: dict[Name, Value] = Field(min_length=1, max_length=64)
    source: Source = "api"
    observed_at: Moment | None = None


class IdentityAdd(Request):
    platform: Platform
    external_id: ExternalId
    source: Source = "api"


class Search(Request):
    """Exactly one criterion: ``phone``, ``email``, ``id_number``, ``field`` with ``value``, or
    ``platform`` with ``external_id``."""

    phone: Value | None = None
    email: Value | None = None
    id_number: Value | None = None
    field: Name | None = None
    value: Value | None = None
    platform: Platform | None = None
    external_id: ExternalId | None = None
    records: bool = Field(
        default=True,
        description="Also return each customer found, as your role may see it (a read).",
    )

    @model_validator(mode="after")
    def _one_criterion(self) -> Search:
        criteria = [
            self.phone is not None,
            self.email is not None,
            self.id_number is not None,
            self.field is not None or self.value is not None,
            self.platform is not None or self.external_id is not None,
        ]
        if sum(criteria) != 1:
            raise ValueError(
                "give exactly one of phone, email, id_number, field with value, "
                "or platform with external_id"
            )
        if (self.field is None) != (self.value is None):
            raise ValueError("field and value go together")
        if (self.platform is None) != (self.external_id is None):
            raise ValueError("platform and external_id go together")
        return self

    def criterion(self) -> tuple[str, str]:
        for name in ("phone", "email", "id_number"):
            value = getattr(self, name)
            if value is not None:
                return name, value
        assert self.field is not None and self.value is not None
        return self.field, self.value


class FieldValueOut(Answer):
    value: str
    masked: bool
    source: str
    observed_at: datetime


class IdentityOut(Answer):
    platform: str
    external_id: str
    source: str
    observed_at: datetime


class CustomerOut(Answer):
    id: str
    created_at: datetime
    updated_at: datetime
    fields: dict[str, FieldValueOut]
    identities: list[IdentityOut]
    tags: list[str]


class SearchAnswer(Answer):
    ids: list[str]
    customers: list[CustomerOut] | None = None


class Created(Answer):
    id: str


class Changed(Answer):
    id: str
    changed: list[str]


class CustomerPage(Answer):
    customer_ids: list[str]
    next_after: str | None


class TagIn(Request):
    customer_ids: list[CustomerId] = Field(min_length=1, max_length=10_000)
    tag: Tag
    source: Source = "api"


class Tagged(Answer):
    tagged: int


class Untagged(Answer):
    removed: bool


class OrderItemOut(Answer):
    product_id: str
    product_name: str
    quantity: int
    unit_price: int
    category: str | None


class OrderOut(Answer):
    platform: str
    shop: str
    order_id: str
    status: str
    currency: str
    total_amount: int
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    refunded_at: datetime | None
    items: list[OrderItemOut]
    customer_id: str | None


# --- audit -------------------------------------------------------------------------------------


class AuditCustomers(Answer):
    count: int
    digest: str
    ids: list[str] | None = None


class AuditEventOut(BaseModel):
    """An event as it is hashed (see SECURITY.md), plus its ``hash``."""

    model_config = ConfigDict(extra="allow")

    v: int
    seq: int
    at: str
    actor: str
    roles: list[str]
    action: str
    purpose: str | None
    outcome: str
    customers: AuditCustomers
    fields: list[str]
    reason: str
    request_id: str | None
    details: dict[str, Any]
    hash: str


class Problem(Answer):
    seq: int
    kind: str
    detail: str


class VerifyAnswer(Answer):
    ok: bool
    events: int
    last_seq: int
    head_hash: str
    checkpoints: int
    problems: list[Problem]


class CheckpointIn(Request):
    """A checkpoint kept apart from the vault (``vault audit checkpoint -o FILE``)."""

    format: Literal["vault-audit-checkpoint/v1"] | None = None
    seq: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: str = Field(max_length=64)
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")
    public_key: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class VerifyIn(Request):
    checkpoints: list[CheckpointIn] = Field(default_factory=list, max_length=1000)


class CheckpointOut(Answer):
    format: str
    seq: int
    head_hash: str
    at: str
    signature: str
    public_key: str | None = None


class PublicKey(Answer):
    algorithm: Literal["ed25519"]
    public_key: str


# --- consent -----------------------------------------------------------------------------------

PurposeName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


class ConsentChange(Request):
    purpose: PurposeName
    source: Source = Field(description="The channel the customer used (a form, a call, ...).")
    evidence: str | None = Field(
        default=None, max_length=256, description="A reference (form id), never a copy of PII."
    )
    at: Moment | None = Field(default=None, description="When; default now.")


class ConsentRecorded(Answer):
    ledger_id: int


class PurposeConsentOut(Answer):
    purpose: str
    legal_basis: str
    needs_consent: bool
    state: str | None
    active: bool
    at: datetime | None
    policy_version: int | None
    current_version: int
    needs_renewal: bool


class ConsentRecordOut(Answer):
    id: int
    purpose: str
    state: str
    at: datetime
    recorded_at: datetime
    channel: str
    policy_version: int
    evidence: str | None
    recorded_by: str


class ConsentSummaryOut(Answer):
    customer_id: str
    purposes: dict[str, PurposeConsentOut]
    ledger: list[ConsentRecordOut]


class ConsentImportOut(Answer):
    rows: int
    recorded: int
    granted: int
    withdrawn: int
    unmatched: int
    unmatched_lines: list[int]
    encoding: str  # as detected: utf-8, gb18030, utf-16


# --- exports, data-subject requests --------------------------------------------------------------


class ExportIn(Request):
    purpose: PurposeName | None = Field(
        default=None, description="What the export is for (default: the request's purpose)."
    )
    format: Literal["csv", "jsonl"] = "csv"
    fields: list[Name] | None = Field(
        default=None, max_length=64, description="Default: all the purpose allows you."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    segment: Name | None = None


class ManifestOut(Answer):
    purpose: str
    legal_basis: str
    actor: str
    roles: list[str]
    created_at: str
    format: str
    rows: int
    fields: list[str]
    file_sha256: str
    file_bytes: int
    customer_digest: str
    tags: list[str]
    segment: str | None
    request_id: str
    version: int
    manifest_sha256: str


class ExportFilters(Answer):
    tags: list[str]
    segments: list[str]


class IncompleteExportOut(Answer):
    """An export whose ``started`` event has no ``completed`` one: data may have left."""

    export_id: str
    request_id: str | None
    seq: int
    at: str
    actor: str
    roles: list[str]
    purpose: str | None
    fields: list[str]
    format: str | None
    filters: ExportFilters
    customers: AuditCustomers
    ended: str | None = Field(
        description='"failed: <error type>" when the failure was recorded, null when nothing '
        "was (a killed process)."
    )


class CorrectionIn(Request):
    fields: dict[Name, Value] = Field(min_length=1, max_length=64)


class EraseIn(Request):
    reason: str = Field(
        min_length=1, max_length=200, description="A reference (ticket id), never a copy of PII."
    )

    @field_validator("reason")
    @classmethod
    def _printable(cls, reason: str) -> str:
        if not reason.strip() or not reason.isprintable():
            raise ValueError("a reason is printable text")
        return reason


class ErasureRequestOut(Answer):
    id: int
    system: str = Field(description="The connected system (platform) asked to erase.")
    status: Literal["pending", "done", "failed"]
    requested_at: datetime
    done_at: datetime | None
    detail: str | None = Field(description="What the system answered (never customer data).")


class ErasureOut(Answer):
    customer_id: str
    erased_at: datetime
    fields: int
    identities: int
    orders: int
    suppression_entries: int
    erasure_requests: list[str] = Field(description="The connected systems asked to erase.")
    rows_deleted: dict[str, int]
