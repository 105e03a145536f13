"""The connector contract: what a connector plugin declares and implements.

A connector only speaks its platform's protocol. It turns pages of the platform's data into the
records below, and the vault's changes into the platform's requests. Everything else (cursors
saved after each committed batch, retries with backoff, rate-limit waits, idempotent upserts
through the external-id map, identity resolution, merge with provenance, suppression of erased
people, consent gating of pushes, the audit trail) belongs to the sync engine, once, for every
connector.

A connector class is contributed by the ``vault_register_connectors`` hook (see
:mod:`vault.hookspecs`) and instantiated by the engine with its decrypted settings::

    class YouzanConnector(Connector):
        info = ConnectorInfo(
            name="youzan",
            platform="youzan",
            description="Youzan cloud: customers and orders",
            pulls=frozenset({"customers", "orders"}),
            settings=(Setting("client_id"), Setting("client_secret", secret=True), ...),
        )
        sandbox = "connectors.youzan.sandbox:YouzanSandbox"

        def fetch(self, stream, cursor): ...

Errors: map every transport failure and every documented platform code to a
:class:`vault.errors.ConnectorError` subclass (``PlatformRateLimited`` with ``retry_after``,
``PlatformUnavailable``, ``PlatformProtocolError``, ``PlatformAuthFailed``,
``PlatformQuotaExhausted``, ``PlatformRejected``). Refreshing an expired token once is the
connector's own business; waiting and retrying is the engine's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from vault.records import Order

Stream = Literal["customers", "orders", "interactions", "consent", "deletions"]
STREAMS: tuple[str, ...] = ("customers", "orders", "interactions", "consent", "deletions")
PUSHES: tuple[str, ...] = ("customers", "deletions")

Region = Literal["mainland", "abroad"]
"""Where a connector sends data: ``abroad`` (outside mainland China) makes every push a
cross-border transfer, which needs the customer's separate consent (PIPL art. 38-39)."""

Cursor = Mapping[str, Any]
"""A connector's own position in a stream: JSON-serialisable, opaque to the engine, saved only
after the batch it covers is committed."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting a connector needs. Secrets are stored encrypted and never printed."""

    name: str
    description: str = ""
    secret: bool = False
    required: bool = True
    default: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorInfo:
    """What a connector declares about itself; ``vault connectors list`` shows it."""

    name: str  # the name users type: `vault sync NAME`
    platform: str  # the identity platform its external ids belong to (taobao, zoho, ...)
    description: str
    pulls: frozenset[str] = frozenset()  # a subset of STREAMS
    pushes: frozenset[str] = frozenset()  # a subset of PUSHES
    settings: tuple[Setting, ...] = ()
    push_batch_size: int = 100  # records per push_customers/delete call
    reconciles: bool = False  # implements list_ids: `vault sync NAME --reconcile`

    def __post_init__(self) -> None:
        if unknown := self.pulls - set(STREAMS):
            raise ValueError(f"connector {self.name!r}: unknown streams {sorted(unknown)}")
        if unknown := self.pushes - set(PUSHES):
            raise ValueError(f"connector {self.name!r}: unknown pushes {sorted(unknown)}")


# --- what a connector pulls ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentSignal:
    """A consent decision the platform recorded (Zoho's Email_Opt_Out, a shop's opt-in box)."""

    purpose: str  # a purpose of policies/purposes.toml
    granted: bool
    at: datetime
    evidence: str | None = None  # a reference (record id, form id), never a copy of PII


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalCustomer:
    """A person as one platform knows them.

    ``fields`` holds catalogue field names and the values as the platform gave them: a masked
    value (``138****8000``, ``张*``) stays masked, and the engine never lets it overwrite a full
    one. ``platform_ciphertexts`` keeps a platform's own ciphertexts or handles (Pinduoduo's
    encrypted receiver fields, Taobao's OAID) by field name, stored as such and decrypted only
    through the one door. A buyer known only by a platform id has no fields at all.
    """

    external_id: str  # this platform's id for the person or record
    observed_at: datetime
    fields: Mapping[str, str] = field(default_factory=dict)
    identities: Sequence[tuple[str, str]] = ()  # further (platform, id) pairs: OAID, open uid
    platform_ciphertexts: Mapping[str, str] = field(default_factory=dict)
    consent: Sequence[ConsentSignal] = ()
    ref: str | None = None  # where it came from ("row 17"), for reject reports; never PII


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalOrder:
    """An order and its buyer; ``order.customer_id`` is left ``None`` for the engine to resolve."""

    buyer: ExternalCustomer
    order: Order


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalInteraction:
    buyer: ExternalCustomer
    kind: str  # consultation | review | complaint | feedback
    channel: str
    occurred_at: datetime
    text: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalDeletion:
    """The platform deleted its record (Zoho's deleted-records feed)."""

    external_id: str
    deleted_at: datetime


Record = ExternalCustomer | ExternalOrder | ExternalInteraction | ExternalDeletion


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of a stream.

    ``cursor`` is where the next fetch starts; the engine saves it in the same transaction as
    the page's records. ``more`` is False once the stream is caught up; the cursor is then the
    high-water mark the next (incremental) run starts from.
    """

    records: Sequence[Record]
    cursor: Cursor
    more: bool
    rejects: Sequence[tuple[str, str]] = ()  # (where, reason) of records the connector could
    # not read at all (a row with extra cells); the reason names columns, never values


# --- what a connector pushes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundCustomer:
    """A customer to create or update on the platform: only fields the customer consented to
    share, already masked as the connector's role sees them."""

    customer_id: str
    external_id: str | None  # the platform's id when the vault knows it
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PushOutcome:
    """The platform's answer for one record of a push or delete batch."""

    customer_id: str
    external_id: str | None
    ok: bool
    action: Literal["created", "updated", "deleted", "unchanged", "failed"] = "failed"
    error: str | None = None  # the platform's code and message, never a value


# --- the connector ---------------------------------------------------------------------------


class Connector(ABC):
    """Base class of every connector. Subclasses set ``info`` (and ``sandbox``) and implement
    :meth:`fetch`, and :meth:`push_customers` / :meth:`delete` when they push."""

    info: ClassVar[ConnectorInfo]
    sandbox: ClassVar[str | None] = None  # "module:Class" of its emulator (vault.sandbox.Sandbox)

    def __init__(self, settings: Mapping[str, str]) -> None:
        missing = [s.name for s in self.info.settings if s.required and not settings.get(s.name)]
        if missing:
            from vault.errors import ConfigError

            raise ConfigError(
                f"connector {self.info.name!r} is missing settings: {', '.join(missing)} "
                f"(vault connectors configure {self.info.name} NAME=VALUE ...)"
            )
        defaults = {s.name: s.default for s in self.info.settings if s.default is not None}
        self.settings: Mapping[str, str] = {**defaults, **settings}

    @property
    def region(self) -> Region:
        """Where pushed data goes. Override when a setting decides it (Zoho's data centre)."""
        return "mainland"

    @abstractmethod
    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        """Fetch one page of ``stream`` from ``cursor`` (``None``: from the beginning).

        One call is one retryable unit: the engine may call it again with the same cursor after
        an error, so it must not advance any state of its own beyond the returned cursor.
        """

    def push_customers(self, records: Sequence[OutboundCustomer]) -> Sequence[PushOutcome]:
        """Create or update ``records`` (at most ``info.push_batch_size``); one outcome each."""
        raise NotImplementedError(f"connector {self.info.name!r} does not push customers")

    def delete(self, external_ids: Sequence[str]) -> Sequence[PushOutcome]:
        """Delete these platform records (an erasure reaching the platform); one outcome each.

        ``PushOutcome.customer_id`` is left empty: the engine knows whose records they are."""
        raise NotImplementedError(f"connector {self.info.name!r} does not delete")

    def list_ids(self, after: str | None) -> tuple[Sequence[str], str | None]:
        """One page of the ids of every customer record the platform holds now (voided ones
        left out), from ``after`` (``None``: the first page): ``(ids, where the next page
        starts)``, ``None`` after the last. For a platform without a deleted-records feed: the
        engine unbinds the identities it holds that the platform no longer lists.

        One call is one retryable unit, as :meth:`fetch` is."""
        raise NotImplementedError(f"connector {self.info.name!r} cannot list its ids")

    def decrypt(self, ciphertexts: Sequence[str], *, scene: str) -> Mapping[str, str]:
        """Ask the platform to decrypt its own ciphertexts for ``scene`` (shipping, after-sales).

        Called only through the one door, for a purpose whose policy allows the scene; never in
        bulk by a sync. Returns ciphertext -> clear value for those the platform decrypted."""
        raise NotImplementedError(f"connector {self.info.name!r} cannot decrypt")

    def close(self) -> None:  # noqa: B027  (a connector without connections has nothing to do)
        """Release connections. Called by the engine when the sync ends."""
