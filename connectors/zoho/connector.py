"""The Zoho CRM connector: Contacts (or Leads) in and out, and Zoho's deleted-records feed.

It only speaks the protocol (:mod:`connectors.zoho.client` for the transport). Cursors are
saved, retries and waits made, consent checked and ids mapped by the sync engine.

**Pull** (``fetch("customers", cursor)``): ``GET /crm/v8/{module}`` with ``fields`` always
given, ``per_page=200``, ``sort_by=id&sort_order=asc`` and, once a first run has finished,
``If-Modified-Since`` from the cursor. Pages 1-10 go by ``page`` (Zoho serves only the first
2,000 records that way), then by ``info.next_page_token``. 204 and 304 mean nothing new.

Ordering by id rather than by ``Modified_Time``: a record changed while a listing is paged moves
to the end of a ``Modified_Time`` ordering, shifting every later record one place up, so one
unread record would be skipped for good. In id order a change moves nothing (new records come
last); the changed record is picked up by the next run, because the high-water mark saved when a
listing ends is the server's time (its ``Date`` header) when the listing *started*, less
``overlap_seconds``. Re-reading that overlap is harmless: the engine recognises unchanged records.

**Consent**: ``Email_Opt_Out`` true is a withdrawal of ``marketing_email`` (a
:class:`ConsentSignal` with ``granted=False``). False is no signal at all: it is Zoho's default
for every record, not an affirmative consent.

**Deletions** (``fetch("deletions", cursor)``): ``GET /crm/v8/{module}/deleted?type=all``, paged
and incremental the same way; each entry is an :class:`ExternalDeletion`.

**Push**: ``POST /crm/v8/{module}/upsert`` of ≤100 records with ``"trigger": []`` (no workflow
echoes) and ``duplicate_check_fields`` (by default the vault's own unique custom field, then
``Email``). Each entry of ``data[]`` is the outcome of the record at the same position.

**Delete** (an erasure): ``DELETE /crm/v8/{module}?ids=…`` of ≤100 ids moves the records to
Zoho's recycle bin, where they stay, whole, for 60 days; so the connector then deletes them from
the recycle bin for good (``DELETE /crm/v8/settings/recycle_bin?ids=…``, scope
``ZohoCRM.settings.recycle_bin.DELETE``). A record is reported deleted only when Zoho no longer
holds it: the recycle bin deleted it, or holds no record of that id (one already purged, or an
id Zoho never knew: an erasure asked twice must not fail the second time). When the purge is
refused (no scope, ``CANNOT_DELETE``) or only ``SCHEDULED``, the outcome fails with a detail that
says where the record still is and until when (``in Zoho's recycle bin until …``, 60 days after
its deletion); the erasure request stays open and the next sync asks again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

from connectors.zoho.client import Answer, ZohoClient, data_centre
from connectors.zoho.mapping import DEFAULT_FIELD_MAPS, FieldMap
from vault.errors import (
    ConfigError,
    PlatformAuthFailed,
    PlatformProtocolError,
    PlatformRejected,
)
from vault.sync import (
    Connector,
    ConnectorInfo,
    ConsentSignal,
    Cursor,
    ExternalCustomer,
    ExternalDeletion,
    OutboundCustomer,
    Page,
    PushOutcome,
    Region,
    Setting,
)

PER_PAGE: Final = 200
DISCRETE_LIMIT: Final = 2_000  # records reachable with `page`; beyond, `page_token` only
MAX_WRITE: Final = 100  # records per insert/update/upsert/delete call
MODULES: Final = ("Contacts", "Leads")
OPT_OUT_FIELD: Final = "Email_Opt_Out"
OPT_OUT_PURPOSE: Final = "marketing_email"


class ZohoConnector(Connector):
    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name="zoho",
        platform="zoho",
        description="Zoho CRM (API v8): Contacts or Leads, pulled and pushed; deleted records",
        pulls=frozenset({"customers", "deletions"}),
        pushes=frozenset({"customers", "deletions"}),
        push_batch_size=MAX_WRITE,
        settings=(
            Setting("client_id", "OAuth client id of the Zoho API console app"),
            Setting("client_secret", "OAuth client secret", secret=True),
            Setting("refresh_token", "OAuth refresh token of the org's user", secret=True),
            Setting(
                "data_centre",
                "US, EU, IN, AU, JP, CA, SA, UK or CN: where the org lives (only CN is "
                "mainland China; every other one makes each push a transfer abroad)",
            ),
            Setting("accounts_url", "override the accounts server (a sandbox)", required=False),
            Setting("api_url", "override the API domain (a sandbox)", required=False),
            Setting("module", "Contacts or Leads", required=False, default="Contacts"),
            Setting(
                "field_map",
                "vault_field=Zoho_Field entries; see connectors.zoho.mapping",
                required=False,
            ),
            Setting(
                "vault_id_field",
                "API name of a unique custom field holding the vault's customer id, checked "
                "first on upsert; empty: none",
                required=False,
                default="Vault_Customer_ID",
            ),
            Setting(
                "duplicate_check_fields",
                "comma list checked after vault_id_field on upsert",
                required=False,
                default="Email",
            ),
            Setting(
                "overlap_seconds",
                "re-read window before the saved high-water mark",
                required=False,
                default="300",
            ),
            Setting("timeout_seconds", "per-request timeout", required=False, default="30"),
        ),
    )
    sandbox: ClassVar[str | None] = "connectors.zoho.sandbox:ZohoSandbox"

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        s = self.settings
        self._dc = data_centre(s["data_centre"])
        self.module = s.get("module") or "Contacts"
        if self.module not in MODULES:
            raise ConfigError(f"zoho: module {self.module!r} is not one of {', '.join(MODULES)}")
        self.field_map = FieldMap.parse(s.get("field_map") or DEFAULT_FIELD_MAPS[self.module])
        self.vault_id_field = (s.get("vault_id_field") or "").strip() or None
        checks = [f.strip() for f in (s.get("duplicate_check_fields") or "").split(",")]
        self.duplicate_check_fields = [
            f for f in dict.fromkeys([self.vault_id_field or "", *checks]) if f
        ]
        try:
            self.overlap = timedelta(seconds=float(s.get("overlap_seconds") or 300))
            timeout = float(s.get("timeout_seconds") or 30)
        except ValueError as error:
            raise ConfigError("zoho: overlap_seconds and timeout_seconds are numbers") from error
        self.client = ZohoClient(
            client_id=s["client_id"],
            client_secret=s["client_secret"],
            refresh_token=s["refresh_token"],
            accounts_url=s.get("accounts_url") or self._dc.accounts_url,
            api_url=s.get("api_url") or self._dc.api_url,
            timeout=timeout,
        )
        extra = [OPT_OUT_FIELD, "Modified_Time"]
        if self.vault_id_field:
            extra.append(self.vault_id_field)
        self.fields = tuple(dict.fromkeys([*self.field_map.zoho_fields, *extra]))

    @property
    def region(self) -> Region:
        return "mainland" if self._dc.mainland else "abroad"

    # --- pull --------------------------------------------------------------------------------

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        if stream == "customers":
            return self._fetch_records(cursor)
        if stream == "deletions":
            return self._fetch_deletions(cursor)
        raise ValueError(f"zoho pulls customers and deletions, not {stream!r}")

    def _fetch_records(self, cursor: Cursor | None) -> Page:
        position = _Position.of(cursor, self.module)
        params = {
            "fields": ",".join(self.fields),
            "per_page": str(PER_PAGE),
            "sort_by": "id",
            "sort_order": "asc",
        }
        if position.page_token:
            params["page_token"] = position.page_token
        else:
            params["page"] = str(position.page)
        answer = self.client.call(
            "GET", f"/{self.module}", params=params, headers=position.if_modified_since()
        )
        started = position.started or _stamp(answer)
        if answer.body is None:  # 204: no records at all; 304: none modified since the cursor
            return Page(records=(), cursor=position.finished(started, self.overlap), more=False)
        rows = _rows(answer.body, "GET", self.module)
        info = _info(answer.body, "GET", self.module)
        records = [self._customer(row) for row in rows]
        if not info.get("more_records"):
            return Page(
                records=records, cursor=position.finished(started, self.overlap), more=False
            )
        next_page = position.page + 1
        if position.page_token is None and next_page * PER_PAGE <= DISCRETE_LIMIT:
            following = position.next(started, page=next_page, token=None)
        else:
            token = info.get("next_page_token")
            if not isinstance(token, str) or not token:
                raise PlatformProtocolError(
                    f"GET /crm/v8/{self.module}: more_records without a next_page_token past "
                    f"{DISCRETE_LIMIT} records",
                    connector=self.info.name,
                )
            following = position.next(started, page=next_page, token=token)
        return Page(records=records, cursor=following, more=True)

    def _customer(self, row: Mapping[str, Any]) -> ExternalCustomer:
        record_id = _record_id(row, self.module)
        observed = _time(row.get("Modified_Time"), "Modified_Time", self.module)
        consent: list[ConsentSignal] = []
        if row.get(OPT_OUT_FIELD) is True:
            consent.append(
                ConsentSignal(
                    purpose=OPT_OUT_PURPOSE,
                    granted=False,
                    at=observed,
                    evidence=f"zoho:{self.module}/{record_id}:{OPT_OUT_FIELD}",
                )
            )
        return ExternalCustomer(
            external_id=record_id,
            observed_at=observed,
            fields=self.field_map.read(row),
            consent=consent,
        )

    def _fetch_deletions(self, cursor: Cursor | None) -> Page:
        position = _Position.of(cursor, self.module)
        params = {"type": "all", "page": str(position.page), "per_page": str(PER_PAGE)}
        answer = self.client.call(
            "GET", f"/{self.module}/deleted", params=params, headers=position.if_modified_since()
        )
        started = position.started or _stamp(answer)
        if answer.body is None:
            return Page(records=(), cursor=position.finished(started, self.overlap), more=False)
        rows = _rows(answer.body, "GET", f"{self.module}/deleted")
        info = _info(answer.body, "GET", f"{self.module}/deleted")
        records = [
            ExternalDeletion(
                external_id=_record_id(row, self.module),
                deleted_at=_time(row.get("deleted_time"), "deleted_time", self.module),
            )
            for row in rows
        ]
        if not info.get("more_records"):
            return Page(
                records=records, cursor=position.finished(started, self.overlap), more=False
            )
        return Page(
            records=records,
            cursor=position.next(started, page=position.page + 1, token=None),
            more=True,
        )

    # --- push --------------------------------------------------------------------------------

    def push_customers(self, records: Sequence[OutboundCustomer]) -> Sequence[PushOutcome]:
        if not records:
            return []
        if len(records) > MAX_WRITE:
            raise ValueError(f"zoho upserts at most {MAX_WRITE} records per call")
        data: list[dict[str, Any]] = []
        for record in records:
            zoho: dict[str, Any] = dict(self.field_map.write(record.fields))
            if self.vault_id_field:
                zoho[self.vault_id_field] = record.customer_id
            data.append(zoho)
        body = {
            "data": data,
            "duplicate_check_fields": self.duplicate_check_fields,
            "trigger": [],
        }
        answer = self.client.call("POST", f"/{self.module}/upsert", json=body, batch=True)
        results = _results(answer, len(records), "POST", f"{self.module}/upsert")
        outcomes: list[PushOutcome] = []
        for record, result in zip(records, results, strict=True):
            details = result.get("details") if isinstance(result.get("details"), dict) else {}
            assert isinstance(details, dict)
            if result.get("status") == "success":
                record_id = details.get("id")
                if not isinstance(record_id, str) or not record_id:
                    raise PlatformProtocolError(
                        f"POST /crm/v8/{self.module}/upsert: a success without details.id",
                        connector=self.info.name,
                    )
                outcomes.append(
                    PushOutcome(
                        customer_id=record.customer_id,
                        external_id=record_id,
                        ok=True,
                        action="updated" if result.get("action") == "update" else "created",
                    )
                )
            else:
                outcomes.append(
                    PushOutcome(
                        customer_id=record.customer_id,
                        external_id=record.external_id,
                        ok=False,
                        action="failed",
                        error=_record_error(result),
                    )
                )
        return outcomes

    def delete(self, external_ids: Sequence[str]) -> Sequence[PushOutcome]:
        if not external_ids:
            return []
        if len(external_ids) > MAX_WRITE:
            raise ValueError(f"zoho deletes at most {MAX_WRITE} records per call")
        params = {"ids": ",".join(external_ids), "wf_trigger": "false"}
        answer = self.client.call("DELETE", f"/{self.module}", params=params, batch=True)
        results = _results(answer, len(external_ids), "DELETE", self.module)
        outcomes: dict[str, PushOutcome] = {}
        to_purge: list[str] = []
        not_live: set[str] = set()
        for external_id, result in zip(external_ids, results, strict=True):
            # Deleted now, or not a live record (deleted before, or never known): either way it
            # may sit in the recycle bin, whole, for 60 days.
            if result.get("status") == "success" or result.get("code") == "INVALID_DATA":
                to_purge.append(external_id)
                if result.get("status") != "success":
                    not_live.add(external_id)
            else:
                outcomes[external_id] = _failed(external_id, _record_error(result))
        for external_id, outcome in self._purge(to_purge).items():
            if outcome.ok and outcome.action == "unchanged" and external_id not in not_live:
                outcome = _deleted(external_id)  # deleted now, and never reached the bin
            outcomes[external_id] = outcome
        return [outcomes[external_id] for external_id in external_ids]

    def _purge(self, external_ids: Sequence[str]) -> dict[str, PushOutcome]:
        """Delete records from the recycle bin for good; ``deleted`` only for those Zoho no
        longer holds anywhere."""
        if not external_ids:
            return {}
        params = {"ids": ",".join(external_ids)}
        try:
            answer = self.client.call("DELETE", RECYCLE_BIN, params=params, batch=True)
        except (PlatformAuthFailed, PlatformRejected) as refused:
            held = self._held_until(external_ids)
            reason = f"{refused.code or 'refused'}: the recycle bin was not emptied"
            return {
                i: _failed(i, _still_held(held[i], reason)) if i in held else _gone(i)
                for i in external_ids
            }
        results = _results(answer, len(external_ids), "DELETE", RECYCLE_BIN.lstrip("/"))
        outcomes: dict[str, PushOutcome] = {}
        kept: dict[str, str] = {}
        for external_id, result in zip(external_ids, results, strict=True):
            if result.get("status") == "success" and result.get("code") == "SUCCESS":
                outcomes[external_id] = _deleted(external_id)  # deleted for good now
            elif result.get("code") == "INVALID_DATA":  # not in the bin: nothing is held
                outcomes[external_id] = _gone(external_id)
            else:  # CANNOT_DELETE, SCHEDULED (still held until Zoho gets to it), an error
                kept[external_id] = _record_error(result)
        if kept:
            held = self._held_until(list(kept))
            for external_id, reason in kept.items():
                outcomes[external_id] = (
                    _failed(external_id, _still_held(held[external_id], reason))
                    if external_id in held
                    else _gone(external_id)
                )
        return outcomes

    def _held_until(self, external_ids: Sequence[str]) -> dict[str, datetime]:
        """Of these ids, those the recycle bin holds, with when Zoho deletes them by itself."""
        answer = self.client.call("GET", RECYCLE_BIN, params={"ids": ",".join(external_ids)})
        if answer.body is None:  # 204: the bin holds none of them
            return {}
        rows = answer.body.get("recycle_bin")
        if not isinstance(rows, list):
            raise PlatformProtocolError(
                f"GET /crm/v8{RECYCLE_BIN} answered without a recycle_bin array", connector="zoho"
            )
        wanted = set(external_ids)
        return {
            str(row["id"]): _time(row.get("deleted_time"), "deleted_time", "recycle_bin")
            + timedelta(days=RECYCLE_BIN_DAYS)
            for row in rows
            if isinstance(row, dict) and str(row.get("id")) in wanted
        }

    def close(self) -> None:
        self.client.close()


# --- the cursor ------------------------------------------------------------------------------


class _Position:
    """Where a listing stands. The saved form (``as_cursor``) is plain JSON:

    ``since``       If-Modified-Since of this listing (None: a full listing)
    ``started``     server time of the listing's first page (the next ``since``, less overlap)
    ``page``        the next page number; ``page_token`` once past the first 2,000 records
    ``module``      the module it belongs to (a cursor of another module starts over)
    """

    def __init__(
        self,
        module: str,
        since: datetime | None,
        started: datetime | None,
        page: int,
        page_token: str | None,
    ) -> None:
        self.module = module
        self.since = since
        self.started = started
        self.page = page
        self.page_token = page_token

    @classmethod
    def of(cls, cursor: Cursor | None, module: str) -> _Position:
        if not cursor or cursor.get("module") != module:
            return cls(module, None, None, 1, None)
        try:
            since = _parse_saved(cursor.get("since"))
            started = _parse_saved(cursor.get("started"))
            page = int(cursor.get("page") or 1)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"zoho: the saved {module} cursor is not readable") from error
        token = cursor.get("page_token")
        return cls(module, since, started, max(page, 1), token if isinstance(token, str) else None)

    def if_modified_since(self) -> dict[str, str]:
        if self.since is None:
            return {}
        return {"If-Modified-Since": self.since.isoformat(timespec="seconds")}

    def next(self, started: datetime, *, page: int, token: str | None) -> Cursor:
        return {
            "module": self.module,
            "since": _saved(self.since),
            "started": _saved(started),
            "page": page,
            "page_token": token,
        }

    def finished(self, started: datetime, overlap: timedelta) -> Cursor:
        since = started - overlap
        if self.since is not None and since < self.since:
            since = self.since
        return {
            "module": self.module,
            "since": _saved(since),
            "started": None,
            "page": 1,
            "page_token": None,
        }


def _saved(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="seconds")


def _parse_saved(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("not a time")
    return datetime.fromisoformat(value)


def _stamp(answer: Answer) -> datetime:
    """The server's time of an answer; the local clock if it sent no ``Date``."""
    return answer.server_time or datetime.now(UTC).replace(microsecond=0)


# --- reading answers -------------------------------------------------------------------------


def _rows(body: Mapping[str, Any], method: str, path: str) -> list[Mapping[str, Any]]:
    rows = body.get("data")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise PlatformProtocolError(
            f"{method} /crm/v8/{path} answered without a data array of records", connector="zoho"
        )
    return rows


def _info(body: Mapping[str, Any], method: str, path: str) -> Mapping[str, Any]:
    info = body.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("more_records"), bool):
        raise PlatformProtocolError(
            f"{method} /crm/v8/{path} answered without info.more_records", connector="zoho"
        )
    return info


def _results(answer: Answer, expected: int, method: str, path: str) -> list[Mapping[str, Any]]:
    assert answer.body is not None
    rows = _rows(answer.body, method, path)
    if len(rows) != expected:
        raise PlatformProtocolError(
            f"{method} /crm/v8/{path} answered {len(rows)} results for {expected} records",
            connector="zoho",
        )
    return rows


def _record_id(row: Mapping[str, Any], module: str) -> str:
    record_id = row.get("id")
    if not isinstance(record_id, str) or not record_id.isdigit():
        raise PlatformProtocolError(
            f"GET /crm/v8/{module}: a record without a numeric string id", connector="zoho"
        )
    return record_id


def _time(value: object, name: str, module: str) -> datetime:
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:
                return when
    raise PlatformProtocolError(
        f"GET /crm/v8/{module}: {name} is not an ISO-8601 time with an offset", connector="zoho"
    )


def _record_error(result: Mapping[str, Any]) -> str:
    """``CODE: message (field X)`` of one per-record error: names, never values."""
    code = str(result.get("code") or "UNKNOWN")[:60]
    message = str(result.get("message") or "")[:120]
    details = result.get("details")
    about = ""
    if isinstance(details, dict):
        name = details.get("api_name")
        if isinstance(name, str):
            about = f" (field {name[:80]})"
        duplicate = details.get("duplicate_record")
        if isinstance(duplicate, dict) and isinstance(duplicate.get("id"), str):
            about += f" (existing record {duplicate['id'][:30]})"
    return f"{code}: {message}{about}"


RECYCLE_BIN: Final = "/settings/recycle_bin"
RECYCLE_BIN_DAYS: Final = 60  # Zoho deletes a record of its recycle bin for good after this


def _deleted(external_id: str) -> PushOutcome:
    return PushOutcome(customer_id="", external_id=external_id, ok=True, action="deleted")


def _gone(external_id: str) -> PushOutcome:
    """Zoho holds no record of this id, live or in the recycle bin: nothing left to delete."""
    return PushOutcome(customer_id="", external_id=external_id, ok=True, action="unchanged")


def _failed(external_id: str, error: str) -> PushOutcome:
    return PushOutcome(customer_id="", external_id=external_id, ok=False, error=error)


def _still_held(until: datetime, reason: str) -> str:
    """Where the record still is and until when (an erasure request's detail)."""
    return (
        f"in Zoho's recycle bin until {until.astimezone(UTC).isoformat(timespec='seconds')} "
        f"({reason})"
    )
