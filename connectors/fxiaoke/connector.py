"""The Fenxiang Xiaoke connector: contacts (or accounts, leads) pulled and pushed.

Pull (``fetch("customers", cursor)``), over ``/cgi/crm/v2/data/query`` with ``limit`` 100:

1. A full pull (no cursor) first reads the newest ``last_modified_time`` (the high-water mark
   the next incremental run starts from), then pages in ``_id`` order with ``offset`` 0, 100,
   ... 10,000 (Fenxiang refuses a larger offset), then past that keeps ``offset`` 0 and filters
   ``_id GT <last _id>``. Ordering by ``_id`` means an edit during the pull moves nothing.
2. An incremental pull reads ``last_modified_time GTE t`` ordered by (``last_modified_time``,
   ``_id``) and keeps the rows after the cursor's (t, _id): records modified in the same
   millisecond are neither lost nor read twice, and when more than a page of them share one
   millisecond the connector walks them by ``_id`` (``last_modified_time EQ t``, ``_id GT``).

A voided record (``life_status`` ``invalid``) arrives as an :class:`ExternalDeletion`; a record
deleted for good no longer appears anywhere (Fenxiang has no deleted-records feed).

Push: Fenxiang has no upsert, so each batch is looked up first, by the stored Fenxiang id
(``OutboundCustomer.external_id``) and by the vault's customer id in a custom field of the
object (``vault_key_field``); then each record is updated (only changed fields; ``owner`` never,
Fenxiang allows it only through changeOwner) or created (approval and work flows off). A create
that times out or loses its answer is looked up by the vault key before it is tried once more,
so a retry never makes a duplicate. Erasure (``delete``): ``invalid`` (void), then ``delete``.

Retries, waits, cursors, consent gating and the id map are the sync engine's; a transient error
is raised for the engine to retry, and a record Fenxiang refuses is a failed outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, ClassVar

from connectors.fxiaoke.client import CLOUDS, FxiaokeClient, cloud_of
from vault.errors import (
    ConfigError,
    PlatformProtocolError,
    PlatformRejected,
    PlatformUnavailable,
)
from vault.sync.contract import (
    Connector,
    ConnectorInfo,
    Cursor,
    ExternalCustomer,
    ExternalDeletion,
    OutboundCustomer,
    Page,
    PushOutcome,
    Record,
    Region,
    Setting,
)

PAGE = 100
MAX_OFFSET = 10_000
BEIJING = timezone(timedelta(hours=8))
DEFAULT_FIELD_MAP = (
    "name=name,phone=mobile1,email=email,address=add,birthday=date_of_birth,note=remark"
)
DATE_TYPES = frozenset({"date", "date_time"})
MASK = "*"
_MAINLAND_MOBILE = re.compile(r"\+861[3-9]\d{9}")
WRITABLE_TYPES = frozenset({"text", "long_text", "email", "phone_number", "date", "date_time"})


def parse_field_map(text: str) -> dict[str, str]:
    """``vault_field=crm_field,...`` → {vault field: Fenxiang field api name}."""
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        vault_field, sep, crm_field = part.partition("=")
        if not sep or not vault_field.strip() or not crm_field.strip():
            raise ConfigError(
                f"fxiaoke: field_map entry {part.strip()!r} is not vault_field=fenxiang_field"
            )
        mapping[vault_field.strip()] = crm_field.strip()
    if not mapping:
        raise ConfigError("fxiaoke: field_map maps no field")
    return mapping


class FxiaokeConnector(Connector):
    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name="fxiaoke",
        platform="fxiaoke",
        description="Fenxiang Xiaoke (纷享销客, ShareCRM) OpenAPI: contacts pulled and pushed",
        pulls=frozenset({"customers"}),
        pushes=frozenset({"customers", "deletions"}),
        push_batch_size=PAGE,
        reconciles=True,  # no deleted-records feed: a record deleted for good is found missing
        settings=(
            Setting("app_id", "the app's appId (FSAID_...)"),
            Setting("app_secret", "the app's appSecret", secret=True),
            Setting("permanent_code", "the tenant's permanent authorisation code", secret=True),
            Setting(
                "open_user_id",
                "currentOpenUserId (FSUID_...): the operator whose data permissions apply; "
                "a CRM administrator",
            ),
            Setting(
                "cloud",
                "the tenant's host (所在云): "
                + ", ".join(f"{c.key} ({c.label}, {c.region})" for c in CLOUDS),
                default="fxiaoke",
                required=False,
            ),
            Setting("base_url", "override the cloud's URL (a sandbox)", required=False),
            Setting(
                "object",
                "the object synced: ContactObj, AccountObj or LeadsObj",
                default="ContactObj",
                required=False,
            ),
            Setting(
                "field_map",
                "vault_field=fenxiang_field,...",
                default=DEFAULT_FIELD_MAP,
                required=False,
            ),
            Setting(
                "vault_key_field",
                "a custom text field of the object holding the vault's customer id",
                default="vault_customer_id__c",
                required=False,
            ),
            Setting(
                "owner_id",
                "the employee id (负责人) new records are given",
                default="1000",
                required=False,
            ),
            Setting(
                "calls_per_20s",
                "calls per endpoint per 20 s (0: no pacing)",
                default="100",
                required=False,
            ),
            Setting(
                "timeout_seconds", "seconds to wait for an answer", default="30", required=False
            ),
        ),
    )
    sandbox: ClassVar[str | None] = "connectors.fxiaoke.sandbox:FxiaokeSandbox"

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        try:
            self.cloud = cloud_of(self.settings["cloud"])
        except ValueError as exc:
            raise ConfigError(f"fxiaoke: {exc}") from None
        self.object = self.settings["object"]
        self.field_map = parse_field_map(self.settings["field_map"])
        self.key_field = self.settings["vault_key_field"]
        try:
            pace = int(self.settings["calls_per_20s"])
            timeout = float(self.settings["timeout_seconds"])
        except ValueError:
            raise ConfigError(
                "fxiaoke: calls_per_20s and timeout_seconds must be numbers"
            ) from None
        self.client = FxiaokeClient(
            base_url=self.settings.get("base_url") or f"https://{self.cloud.host}",
            app_id=self.settings["app_id"],
            app_secret=self.settings["app_secret"],
            permanent_code=self.settings["permanent_code"],
            open_user_id=self.settings["open_user_id"],
            connector=self.info.name,
            timeout=timeout,
            calls_per_window=pace,
        )
        custom = "custom/" if self.object.endswith("__c") else ""
        self._data_path = f"/cgi/crm/{custom}v2/data/"
        self._types: dict[str, str] | None = None

    @property
    def region(self) -> Region:
        return "abroad" if self.cloud.region == "abroad" else "mainland"

    def close(self) -> None:
        self.client.close()

    # --- the object's fields ------------------------------------------------------------------

    def field_types(self) -> dict[str, str]:
        """The object's fields and their types (``object/describe``, once per connector);
        refuses a mapping that names a field the tenant does not have."""
        if self._types is None:
            answer = self.client.call(
                "/cgi/crm/v2/object/describe", {"apiName": self.object}, includeDetail=False
            )
            try:
                fields = answer["data"]["describe"]["fields"]
                types = {name: str(spec["type"]) for name, spec in fields.items()}
            except (KeyError, TypeError, AttributeError) as exc:
                raise PlatformProtocolError(
                    "object/describe: no data.describe.fields in the answer", connector="fxiaoke"
                ) from exc
            missing = [f for f in (*self.field_map.values(), self.key_field) if f not in types]
            if missing:
                raise ConfigError(
                    f"fxiaoke: {self.object} has no field {', '.join(missing)}; fix field_map "
                    f"or create the custom field {self.key_field!r} (text) in Fenxiang"
                )
            self._types = types
        return self._types

    def _projection(self) -> list[str]:
        return [
            "_id",
            "last_modified_time",
            "life_status",
            self.key_field,
            *self.field_map.values(),
        ]

    def _query(
        self,
        filters: Sequence[tuple[str, str, Sequence[str]]],
        orders: Sequence[tuple[str, bool]],
        *,
        offset: int = 0,
        limit: int = PAGE,
        projection: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        info: dict[str, Any] = {
            "limit": limit,
            "offset": offset,
            "filters": [
                {"field_name": f, "field_values": list(v), "operator": op} for f, op, v in filters
            ],
            "orders": [{"fieldName": f, "isAsc": asc} for f, asc in orders],
            "fieldProjection": list(projection or self._projection()),
        }
        answer = self.client.call(
            self._data_path + "query",
            {
                "dataObjectApiName": self.object,
                "find_explicit_total_num": False,
                "search_query_info": info,
            },
        )
        rows = (
            answer.get("data", {}).get("dataList") if isinstance(answer.get("data"), dict) else None
        )
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("_id"), str) for r in rows
        ):
            raise PlatformProtocolError(
                f"{self._data_path}query: no data.dataList of records with _id", connector="fxiaoke"
            )
        return rows

    # --- pull -----------------------------------------------------------------------------------

    def fetch(self, stream: str, cursor: Cursor | None) -> Page:
        if stream != "customers":
            raise ValueError(f"fxiaoke pulls only customers, not {stream!r}")
        self.field_types()
        if cursor is None:
            newest = self._query(
                [],
                [("last_modified_time", False), ("_id", False)],
                limit=1,
                projection=["_id", "last_modified_time"],
            )
            mark = {"t": _ms(newest[0]) if newest else 0, "id": newest[0]["_id"] if newest else ""}
            cursor = {"phase": "full", "offset": 0, "mark": mark}
        phase = cursor.get("phase")
        if phase == "full":
            return self._fetch_full(cursor)
        if phase == "changes":
            return self._fetch_changes(int(cursor["t"]), str(cursor["id"]))
        raise ConfigError(
            f"fxiaoke: the saved cursor (keys {sorted(cursor)}) is not one this connector "
            "writes; run a full sync (vault sync fxiaoke --full)"
        )

    def _fetch_full(self, cursor: Cursor) -> Page:
        mark = cursor["mark"]
        after = cursor.get("after")
        if after is None:
            offset = int(cursor["offset"])
            rows = self._query([], [("_id", True)], offset=offset)
        else:
            offset = 0
            rows = self._query([("_id", "GT", [str(after)])], [("_id", True)])
        records = [self._record(r) for r in rows]
        if len(rows) < PAGE:
            return Page(records=records, cursor={"phase": "changes", **mark}, more=False)
        if offset + PAGE <= MAX_OFFSET and after is None:
            following: dict[str, Any] = {"phase": "full", "offset": offset + PAGE, "mark": mark}
        else:
            following = {"phase": "full", "after": rows[-1]["_id"], "mark": mark}
        return Page(records=records, cursor=following, more=True)

    def list_ids(self, after: str | None) -> tuple[list[str], str | None]:
        """Every contact's ``_id`` by keyset (``_id`` greater than the last one seen: no offset
        limit), voided ones left out, ``PAGE`` a call."""
        self.field_types()
        filters = [] if after is None else [("_id", "GT", [after])]
        rows = self._query(filters, [("_id", True)], projection=["_id", "life_status"])
        ids = [r["_id"] for r in rows if r.get("life_status") != "invalid"]
        return ids, (rows[-1]["_id"] if len(rows) == PAGE else None)

    def _fetch_changes(self, t: int, last_id: str) -> Page:
        order = [("last_modified_time", True), ("_id", True)]
        rows = self._query([("last_modified_time", "GTE", [str(t)])], order)
        fresh = [r for r in rows if (_ms(r), r["_id"]) > (t, last_id)]
        full = len(rows) == PAGE
        if not fresh and full:
            # A page of records all modified in millisecond t, none after the cursor yet:
            # walk that millisecond by _id, then go on past it.
            fresh = self._query(
                [("last_modified_time", "EQ", [str(t)]), ("_id", "GT", [last_id or "0"])],
                [("_id", True)],
            )
            full = True  # records after millisecond t may follow: the next fetch looks
            if not fresh:
                fresh = self._query([("last_modified_time", "GT", [str(t)])], order)
                full = len(fresh) == PAGE
        if not fresh:
            return Page(records=[], cursor={"phase": "changes", "t": t, "id": last_id}, more=False)
        last = fresh[-1]
        following = {"phase": "changes", "t": _ms(last), "id": last["_id"]}
        return Page(records=[self._record(r) for r in fresh], cursor=following, more=full)

    def _record(self, row: Mapping[str, Any]) -> Record:
        at = datetime.fromtimestamp(_ms(row) / 1000, UTC)
        if row.get("life_status") == "invalid":
            return ExternalDeletion(external_id=row["_id"], deleted_at=at)
        types = self.field_types()
        fields: dict[str, str] = {}
        for vault_field, crm_field in self.field_map.items():
            value = row.get(crm_field)
            if value is None or value == "" or value == []:
                continue
            if types.get(crm_field) in DATE_TYPES and isinstance(value, int):
                fields[vault_field] = _day_of(value)
            elif isinstance(value, str):
                fields[vault_field] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                fields[vault_field] = str(value)
        return ExternalCustomer(external_id=row["_id"], observed_at=at, fields=fields)

    # --- push -----------------------------------------------------------------------------------

    def push_customers(self, records: Sequence[OutboundCustomer]) -> Sequence[PushOutcome]:
        if len(records) > PAGE:
            raise ValueError(f"fxiaoke pushes at most {PAGE} records per call")
        types = self.field_types()
        by_id = self._existing("_id", [r.external_id for r in records if r.external_id])
        by_key = self._existing(self.key_field, [r.customer_id for r in records])
        outcomes = []
        for record in records:
            current = by_id.get(record.external_id or "") or by_key.get(record.customer_id)
            values = self._values(record, types)
            try:
                if current is None:
                    outcomes.append(self._create(record, values))
                    continue
                changed = {k: v for k, v in values.items() if current.get(k) != v}
                if not changed:
                    outcomes.append(
                        PushOutcome(
                            customer_id=record.customer_id,
                            external_id=current["_id"],
                            ok=True,
                            action="unchanged",
                        )
                    )
                    continue
                self._write("update", {"_id": current["_id"], **changed})
                outcomes.append(
                    PushOutcome(
                        customer_id=record.customer_id,
                        external_id=current["_id"],
                        ok=True,
                        action="updated",
                    )
                )
            except PlatformRejected as refused:
                outcomes.append(
                    PushOutcome(
                        customer_id=record.customer_id,
                        external_id=current["_id"] if current else record.external_id,
                        ok=False,
                        action="failed",
                        error=str(refused),
                    )
                )
        return outcomes

    def _existing(self, field: str, values: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Live (not voided) records whose ``field`` is one of ``values``, by that value."""
        if not values:
            return {}
        rows = self._query(
            [(field, "IN", sorted(set(values))), ("life_status", "N", ["invalid"])],
            [("_id", True)],
        )
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            found.setdefault(str(row.get(field)), row)
        return found

    def _values(self, record: OutboundCustomer, types: Mapping[str, str]) -> dict[str, Any]:
        """The record as Fenxiang fields: dates in epoch ms, mainland mobiles as 11 digits.

        A masked value (``138****8000``, ``张*``: all a shop gave) is never sent: it would
        overwrite what the sales team typed in the CRM with something nobody can use."""
        values: dict[str, Any] = {self.key_field: record.customer_id}
        for vault_field, value in record.fields.items():
            crm_field = self.field_map.get(vault_field)
            kind = types.get(crm_field or "")
            if crm_field is None or kind not in WRITABLE_TYPES or MASK in value:
                continue
            if kind in DATE_TYPES:
                try:
                    values[crm_field] = _ms_of(value)
                except ValueError:
                    continue  # a partial date is not sent
            elif kind == "phone_number" and _MAINLAND_MOBILE.fullmatch(value):
                values[crm_field] = value[3:]
            else:
                values[crm_field] = value
        return values

    def _create(self, record: OutboundCustomer, values: Mapping[str, Any]) -> PushOutcome:
        body = {**values, "owner": [self.settings["owner_id"]]}
        try:
            answer = self._write("create", body)
        except (PlatformUnavailable, PlatformProtocolError):
            # The create may have landed although its answer was lost: look before retrying.
            landed = self._existing(self.key_field, [record.customer_id]).get(record.customer_id)
            if landed is not None:
                return PushOutcome(
                    customer_id=record.customer_id,
                    external_id=landed["_id"],
                    ok=True,
                    action="created",
                )
            answer = self._write("create", body)
        data_id = answer.get("dataId")
        if not isinstance(data_id, str) or not data_id:
            raise PlatformProtocolError(
                f"{self._data_path}create: the answer has no dataId", connector="fxiaoke"
            )
        return PushOutcome(
            customer_id=record.customer_id, external_id=data_id, ok=True, action="created"
        )

    def _write(self, verb: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.call(
            self._data_path + verb,
            {"object_data": {"dataObjectApiName": self.object, **values}},
            triggerApprovalFlow=False,
            triggerWorkFlow=False,
        )

    # --- erasure --------------------------------------------------------------------------------

    def delete(self, external_ids: Sequence[str]) -> Sequence[PushOutcome]:
        if len(external_ids) > PAGE:
            raise ValueError(f"fxiaoke deletes at most {PAGE} records per call")
        if not external_ids:
            return []
        rows = self._query(
            [("_id", "IN", sorted(set(external_ids)))],
            [("_id", True)],
            projection=["_id", "life_status"],
        )
        status = {row["_id"]: row.get("life_status") for row in rows}
        outcomes: dict[str, PushOutcome] = {}
        voided: list[str] = []
        for external_id in dict.fromkeys(external_ids):
            if external_id not in status:  # deleted already
                outcomes[external_id] = _deleted(external_id)
                continue
            if status[external_id] != "invalid":
                try:
                    self.client.call(
                        self._data_path + "invalid",
                        {"dataObjectApiName": self.object, "object_data_id": external_id},
                    )
                except PlatformRejected as refused:
                    outcomes[external_id] = _failed(external_id, f"invalid: {refused}")
                    continue
            voided.append(external_id)
        if voided:
            try:
                self.client.call(
                    self._data_path + "delete", {"dataObjectApiName": self.object, "idList": voided}
                )
                outcomes.update({i: _deleted(i) for i in voided})
            except PlatformRejected as refused:
                outcomes.update({i: _failed(i, f"delete: {refused}") for i in voided})
        return [outcomes[i] for i in dict.fromkeys(external_ids)]


def _deleted(external_id: str) -> PushOutcome:
    return PushOutcome(customer_id="", external_id=external_id, ok=True, action="deleted")


def _failed(external_id: str, error: str) -> PushOutcome:
    return PushOutcome(
        customer_id="", external_id=external_id, ok=False, action="failed", error=error
    )


def _ms(row: Mapping[str, Any]) -> int:
    value = row.get("last_modified_time")
    if not isinstance(value, int) or isinstance(value, bool):
        raise PlatformProtocolError(
            "query: a record without last_modified_time in epoch milliseconds", connector="fxiaoke"
        )
    return value


def _day_of(ms: int) -> str:
    """A Fenxiang date (epoch ms of midnight, Beijing time) as YYYY-MM-DD."""
    return datetime.fromtimestamp(ms / 1000, BEIJING).date().isoformat()


def _ms_of(day: str) -> int:
    moment = datetime.combine(date.fromisoformat(day), datetime.min.time(), BEIJING)
    return int(moment.timestamp() * 1000)
