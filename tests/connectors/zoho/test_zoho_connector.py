"""The Zoho connector against the sandbox over real HTTP: pull across the 2,000-record boundary,
incremental pulls, the deleted feed, upsert and delete with per-record results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.zoho import ZohoConnector
from connectors.zoho.mapping import FieldMap, split_name
from connectors.zoho.sandbox import ZohoSandbox
from vault.errors import ConfigError
from vault.sandbox import Response, json_response
from vault.sync import Cursor, ExternalCustomer, ExternalDeletion, OutboundCustomer, Page


def pull(connector: ZohoConnector, stream: str, cursor: Cursor | None) -> tuple[list[Page], Cursor]:
    pages = []
    while True:
        page = connector.fetch(stream, cursor)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor


def customers(pages: list[Page]) -> list[ExternalCustomer]:
    return [r for p in pages for r in p.records if isinstance(r, ExternalCustomer)]


@pytest.fixture(scope="module")
def big() -> Iterator[ZohoSandbox]:
    with ZohoSandbox(seed=3, records=5000) as running:
        assert isinstance(running, ZohoSandbox)
        yield running


def test_full_pull_of_5000_crosses_the_2000_boundary_with_page_token_and_no_duplicates(
    big: ZohoSandbox,
) -> None:
    logged = len(big.request_log)
    connector = ZohoConnector(big.settings())
    seen_params: list[dict[str, list[str]]] = []
    original = connector.client._http.request

    def spy(method: str, url: str, **kwargs: Any) -> Any:
        if "/crm/v8/" in url:
            seen_params.append({k: [str(v)] for k, v in (kwargs.get("params") or {}).items()})
        return original(method, url, **kwargs)

    connector.client._http.request = spy  # type: ignore[method-assign]
    pages, cursor = pull(connector, "customers", None)
    pulled = customers(pages)
    assert len(pulled) == 5000 and len({c.external_id for c in pulled}) == 5000
    assert {c.external_id for c in pulled} == {r["id"] for r in big.stored()}
    assert len(pages) == 25
    assert [p.get("page") for p in seen_params[:10]] == [[str(n)] for n in range(1, 11)]
    assert all("page_token" in p and "page" not in p for p in seen_params[10:])
    assert all(p["fields"] and p["per_page"] == ["200"] for p in seen_params)
    assert cursor["since"] is not None and cursor["page_token"] is None
    assert len(big.request_log) - logged == 26  # one token, 25 pages
    connector.close()


def test_an_incremental_pull_sends_if_modified_since_and_gets_only_what_changed(
    big: ZohoSandbox,
) -> None:
    connector = ZohoConnector(big.settings())
    _, cursor = pull(connector, "customers", None)
    nothing, cursor = pull(connector, "customers", cursor)
    assert customers(nothing) == []  # 304: nothing modified since
    changed = [r["id"] for r in big.stored()[100:103]]
    for record_id in changed:
        big.modify(record_id, Mobile="+86 139 0000 0000")
    pages, cursor = pull(connector, "customers", cursor)
    assert sorted(c.external_id for c in customers(pages)) == sorted(changed)
    assert all(c.fields["phone"] == "+86 139 0000 0000" for c in customers(pages))
    connector.close()


def test_the_cursor_resumes_a_listing_past_the_boundary(big: ZohoSandbox) -> None:
    connector = ZohoConnector(big.settings())
    cursor: Cursor | None = None
    for _ in range(11):  # ten pages by number, one by token
        cursor = connector.fetch("customers", cursor).cursor
    assert cursor is not None and cursor["page_token"]
    again = ZohoConnector(big.settings())  # a new process with the saved cursor
    first = again.fetch("customers", cursor)
    assert first.more and len(first.records) == 200
    connector.close()
    again.close()


def test_maps_chinese_and_latin_contacts_and_email_opt_out(sandbox: ZohoSandbox) -> None:
    connector = ZohoConnector(sandbox.settings())
    pulled = {c.external_id: c for c in customers(pull(connector, "customers", None)[0])}
    for record in sandbox.stored():
        got = pulled[record["id"]]
        assert got.fields["name"] == record["Full_Name"]
        assert got.fields["email"] == record["Email"] and got.fields["phone"] == record["Mobile"]
        assert got.fields["address"].startswith(
            "中国" if record["Mailing_Country"] == "中国" else record["Mailing_Street"]
        )
        assert got.observed_at.utcoffset() is not None
        if record["Email_Opt_Out"]:
            (signal,) = got.consent
            assert signal.purpose == "marketing_email" and not signal.granted
        else:
            assert got.consent == []  # Zoho's default false is not a consent
    connector.close()


def test_push_creates_then_updates_the_same_record_and_returns_its_id(
    sandbox: ZohoSandbox,
) -> None:
    connector = ZohoConnector(sandbox.settings())
    before = len(sandbox.stored())
    record = OutboundCustomer(
        customer_id="c-42",
        external_id=None,
        fields={"name": "欧阳娜娜", "email": "nana@example.cn", "phone": "+8613800138000"},
    )
    (created,) = connector.push_customers([record])
    assert created.ok and created.action == "created" and created.external_id
    changed = OutboundCustomer(
        customer_id="c-42",
        external_id=created.external_id,
        fields={"name": "欧阳娜娜", "email": "nana.new@example.cn", "address": "上海市黄浦区"},
    )
    (updated,) = connector.push_customers([changed])
    assert updated.ok and updated.action == "updated"
    assert updated.external_id == created.external_id
    stored = [r for r in sandbox.stored() if r["Vault_Customer_ID"] == "c-42"]
    assert len(stored) == 1 and len(sandbox.stored()) == before + 1
    (one,) = stored
    assert (one["Last_Name"], one["First_Name"]) == ("欧阳", "娜娜")
    assert one["Email"] == "nana.new@example.cn" and one["Mailing_Street"] == "上海市黄浦区"
    assert one["Mobile"] == "+8613800138000"  # a field not sent is left as it was
    connector.close()


def test_push_reads_every_per_record_result_of_a_2xx_answer(sandbox: ZohoSandbox) -> None:
    connector = ZohoConnector(sandbox.settings())
    outcomes = connector.push_customers(
        [
            OutboundCustomer(customer_id="ok-1", external_id=None,
                             fields={"name": "John Smith", "email": "john@example.com"}),
            OutboundCustomer(customer_id="bad-1", external_id=None,
                             fields={"name": "Anna Bauer", "email": "a***@example.com@x"}),
            OutboundCustomer(customer_id="bad-2", external_id=None, fields={"email": "x@y.de"}),
        ]
    )  # fmt: skip
    assert [o.ok for o in outcomes] == [True, False, False]
    assert [o.customer_id for o in outcomes] == ["ok-1", "bad-1", "bad-2"]
    assert outcomes[1].error == "INVALID_DATA: invalid data (field Email)"
    assert outcomes[2].error == "MANDATORY_NOT_FOUND: required field not found (field Last_Name)"
    assert "example.com" not in (outcomes[1].error or "")
    assert sandbox.request_log[-1] == ("POST", "/crm/v8/Contacts/upsert")
    connector.close()


def test_push_sends_the_duplicate_check_and_no_triggers(sandbox: ZohoSandbox) -> None:
    connector = ZohoConnector(sandbox.settings(duplicate_check_fields="Email"))
    assert connector.duplicate_check_fields == ["Vault_Customer_ID", "Email"]
    sandbox_email = sandbox.stored()[0]["Email"]
    (outcome,) = connector.push_customers(
        [OutboundCustomer(customer_id="c-1", external_id=None,
                          fields={"name": "张伟", "email": sandbox_email})]
    )  # fmt: skip
    assert outcome.action == "updated"  # matched the seeded record on Email
    assert outcome.external_id == sandbox.stored()[0]["id"]
    with pytest.raises(ValueError, match="100"):
        connector.push_customers(
            [OutboundCustomer(customer_id=str(i), external_id=None, fields={}) for i in range(101)]
        )
    connector.close()


def test_delete_removes_records_and_the_deleted_feed_reports_them(sandbox: ZohoSandbox) -> None:
    connector = ZohoConnector(sandbox.settings(overlap_seconds="0"))
    empty, cursor = pull(connector, "deletions", None)
    assert [r for p in empty for r in p.records] == []
    ids = [r["id"] for r in sandbox.stored()[:3]]
    outcomes = connector.delete(ids)
    assert [(o.external_id, o.ok, o.action) for o in outcomes] == [
        (i, True, "deleted") for i in ids
    ]
    assert not {r["id"] for r in sandbox.stored()} & set(ids)
    again = connector.delete(ids[:1])  # asked twice (a retried erasure): not a failure
    assert again[0].ok and again[0].action == "unchanged"
    sandbox.delete_in_crm(sandbox.stored()[0]["id"])
    pages, cursor = pull(connector, "deletions", None)
    deleted = [r for p in pages for r in p.records]
    assert all(isinstance(r, ExternalDeletion) for r in deleted) and len(deleted) == 4
    assert sandbox.request_log[-1][1] == "/crm/v8/Contacts/deleted"
    later, _ = pull(connector, "deletions", cursor)
    assert [r for p in later for r in p.records] == []  # 304 from If-Modified-Since
    connector.close()


def test_the_leads_module_and_a_custom_field_map(sandbox: ZohoSandbox) -> None:
    connector = ZohoConnector(
        sandbox.settings(module="Leads", field_map="name=First_Name+Last_Name; email=Email")
    )
    (outcome,) = connector.push_customers(
        [OutboundCustomer(customer_id="l-1", external_id=None,
                          fields={"name": "Marie Curie", "email": "marie@example.fr",
                                  "phone": "+33 6 12 34 56 78"})]
    )  # fmt: skip
    assert outcome.ok
    (lead,) = sandbox.stored("Leads")
    assert (lead["First_Name"], lead["Last_Name"], lead["Mobile"]) == ("Marie", "Curie", None)
    (pulled,) = customers(pull(connector, "customers", None)[0])
    assert pulled.fields == {"name": "Marie Curie", "email": "marie@example.fr"}
    urls = [p for _, p in sandbox.request_log if p.startswith("/crm/v8/Leads")]
    assert urls == ["/crm/v8/Leads/upsert", "/crm/v8/Leads"]
    connector.close()


def test_bad_settings_are_config_errors(sandbox: ZohoSandbox) -> None:
    with pytest.raises(ConfigError, match="module"):
        ZohoConnector(sandbox.settings(module="Deals"))
    with pytest.raises(ConfigError, match="field_map"):
        ZohoConnector(sandbox.settings(field_map="name"))
    with pytest.raises(ConfigError, match="missing settings: data_centre"):
        ZohoConnector({k: v for k, v in sandbox.settings().items() if k != "data_centre"})


@pytest.mark.parametrize(
    ("name", "parts"),
    [("张伟", ("伟", "张")), ("欧阳娜娜", ("娜娜", "欧阳")), ("Madonna", (None, "Madonna")),
     ("John Ronald Smith", ("John Ronald", "Smith")), ("王", (None, "王"))],
)  # fmt: skip
def test_names_split_into_first_and_last_name(name: str, parts: tuple[str | None, str]) -> None:
    assert split_name(name) == parts
    given, family = parts
    written = FieldMap.parse("name=First_Name+Last_Name").write({"name": name})
    assert written == {"First_Name": given, "Last_Name": family}
    assert FieldMap.parse("name=First_Name+Last_Name").read(written) == {"name": name}


class ForeignApiDomain(ZohoSandbox):
    """Answers tokens with a real Zoho host as api_domain."""

    def _issue(self, refresh: str, *, include_refresh: bool) -> Response:
        answer = super()._issue(refresh, include_refresh=include_refresh)
        body = json.loads(answer.body)
        body["api_domain"] = "https://www.zohoapis.com"
        return json_response(body)


def test_the_token_answers_api_domain_is_never_followed() -> None:
    with ForeignApiDomain(seed=2, records=3) as sandbox:
        assert isinstance(sandbox, ZohoSandbox)
        connector = ZohoConnector(sandbox.settings())
        assert len(connector.fetch("customers", None).records) == 3
        assert ("GET", "/crm/v8/Contacts") in sandbox.request_log
        connector.close()
