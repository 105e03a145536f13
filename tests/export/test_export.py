"""Consent-aware export: exactly the consented customers, only allowed fields, masked per role,
one audit event with the manifest's hash; CSV safe for Excel, xlsx readable by openpyxl."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import AccessDenied, AuditQuery, Order, Vault
from vault.access.policy import Role
from vault.cli import cli
from vault.export import manifest_path
from vault.session import Session

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONSENT_PURPOSES = ("marketing_sms", "marketing_email")


def people(admin: Session, count: int) -> list[str]:
    return [
        admin.add_customer(
            {
                "name": f"顾客{n}号",
                "phone": f"1390013{n:04d}",
                "email": f"c{n}@example.cn",
                "address": f"浙江省杭州市西湖区文三路{n}号",
            },
            source="test",
        )
        for n in range(count)
    ]


def export_rows(
    session: Session, purpose: str, fmt: str = "csv", **options: object
) -> list[dict[str, str]]:
    out = io.BytesIO()
    session.export(purpose, out, fmt=fmt, **options)  # type: ignore[arg-type]
    data = out.getvalue()
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines()]
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def exported_ids(session: Session, purpose: str) -> set[str]:
    return {row["customer_id"] for row in export_rows(session, purpose)}


EVENTS = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.sampled_from(CONSENT_PURPOSES),
        st.sampled_from(["granted", "withdrawn"]),
        st.integers(0, 10),  # days after T0: back-dated and same-time entries happen
    ),
    max_size=12,
)


def test_export_holds_exactly_the_consented_customers_over_random_histories(
    admin: Session,
) -> None:
    ids = people(admin, 6)
    model: dict[tuple[str, str], tuple[datetime, int, str]] = {}
    counter = iter(range(1_000_000))

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(EVENTS)
    def check(events: list[tuple[int, str, str, int]]) -> None:
        for index, purpose, state, day in events:
            at = T0 + timedelta(days=day)
            record = admin.grant_consent if state == "granted" else admin.withdraw_consent
            record(ids[index], purpose, source="test", at=at)
            key = (ids[index], purpose)
            entry = (at, next(counter), state)
            if key not in model or entry[:2] >= model[key][:2]:
                model[key] = entry
        for purpose in CONSENT_PURPOSES:
            expected = {
                cid for (cid, p), (_, _, s) in model.items() if p == purpose and s == "granted"
            }
            assert exported_ids(admin, purpose) == expected
        assert exported_ids(admin, "customer_service") == set(ids)  # contract: no consent needed

    check()


def test_a_withdrawal_between_two_exports_removes_the_customer_from_the_second(
    admin: Session,
) -> None:
    a, b = people(admin, 2)
    for cid in (a, b):
        admin.grant_consent(cid, "marketing_sms", source="web-form")
    assert exported_ids(admin, "marketing_sms") == {a, b}
    admin.withdraw_consent(a, "marketing_sms", source="phone")
    assert exported_ids(admin, "marketing_sms") == {b}


def test_only_the_fields_the_purpose_allows_and_asking_for_others_is_refused(
    admin: Session,
) -> None:
    (a,) = people(admin, 1)
    admin.grant_consent(a, "marketing_sms", source="web-form")
    (row,) = export_rows(admin, "marketing_sms")
    # (preferred_language is allowed too, but no customer has one: no always-empty column)
    assert list(row) == ["customer_id", "name", "phone"]
    assert row["phone"] == "+8613900130000"  # a validated phone is never a formula
    with pytest.raises(AccessDenied) as refused:
        admin.export("marketing_sms", io.BytesIO(), fields=["name", "address"])
    assert refused.value.field == "address"
    (denied,) = admin.audit_query(AuditQuery(action="export", outcome="denied"))
    assert denied["fields"] == ["address"] and "does not allow" in denied["reason"]


def test_export_is_masked_as_the_callers_role_sees_it(admin: Session) -> None:
    (a,) = people(admin, 1)
    admin.grant_consent(a, "marketing_sms", source="web-form")
    admin._vault.policy.roles["sms_vendor"] = Role(
        name="sms_vendor",
        description="an SMS agency: names masked, phones in clear",
        actions=frozenset({"export"}),
        purposes=frozenset({"marketing_sms"}),
        default_view="hidden",
        field_views={"name": "masked", "phone": "clear"},
    )
    vendor = admin._vault.session(admin.add_principal("sms-co", ["sms_vendor"]))
    (row,) = export_rows(vendor, "marketing_sms")
    assert row == {"customer_id": a, "name": "顾***", "phone": "+8613900130000"}
    with pytest.raises(AccessDenied):
        vendor.export("marketing_sms", io.BytesIO(), fields=["preferred_language"])


def test_csv_has_a_bom_and_neutralises_formula_cells(admin: Session) -> None:
    cid = admin.add_customer(
        {"name": "@SUM(A1)", "address": '=HYPERLINK("http://x")', "note": "-2+3"},
        source="test",
    )
    admin.update_customer(cid, {"nickname": "+cmd|' /C calc'!A0"}, source="test")
    out = io.BytesIO()
    admin.export("customer_service", out, fields=["name", "address", "nickname", "note"])
    data = out.getvalue()
    assert data.startswith(b"\xef\xbb\xbfcustomer_id,")
    (row,) = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    assert row["name"] == "'@SUM(A1)"
    assert row["address"] == '\'=HYPERLINK("http://x")'
    assert row["nickname"] == "'+cmd|' /C calc'!A0"
    assert row["note"] == "'-2+3"
    assert "顾" not in data.decode("utf-8-sig")  # (no stray customers)


def test_xlsx_opens_with_openpyxl_and_has_the_same_rows_as_csv(
    admin: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = people(admin, 5)
    admin.add_customer({"name": "=1+1", "address": "北京市东城区"}, source="test")
    for cid in ids[:3]:
        admin.grant_consent(cid, "crm_sharing", source="web-form", evidence="sep-consent-1")
    import tempfile

    def no_temp_files(*args: object, **kwargs: object) -> None:
        raise AssertionError("the xlsx writer must not spool PII to a temporary file")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_temp_files)
    out = io.BytesIO()
    manifest = admin.export("customer_service", out, fmt="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue()), read_only=True).active
    assert sheet is not None
    width = 5  # customer_id and the 4 of customer_service's fields anyone has a value of
    xlsx_rows = [
        [*(cell or "" for cell in row), *[""] * (width - len(row))]
        for row in sheet.iter_rows(values_only=True)
    ]
    csv_rows = list(csv.reader(io.StringIO(_csv(admin, "customer_service"), newline="")))
    unneutralised = [[c[1:] if c.startswith("'") else c for c in row] for row in csv_rows]
    assert xlsx_rows == unneutralised
    assert len(xlsx_rows) == manifest.rows + 1 == 7
    formulas = [row[1] for row in xlsx_rows if row[1].startswith("=")]
    assert formulas == ["=1+1"]  # kept as text, never a formula
    assert manifest.file_sha256 == hashlib.sha256(out.getvalue()).hexdigest()


def _csv(session: Session, purpose: str) -> str:
    out = io.BytesIO()
    session.export(purpose, out)
    return out.getvalue().decode("utf-8-sig")


def test_jsonl_export_and_tag_filter(admin: Session) -> None:
    a, _, c = people(admin, 3)
    admin.tag_customers([a, c], "vip", source="test")
    admin.tag_customers([c], "north", source="test")
    rows = export_rows(admin, "customer_service", fmt="jsonl", tags=["vip"], fields=["name"])
    assert rows == [{"customer_id": a, "name": "顾客0号"}, {"customer_id": c, "name": "顾客2号"}]
    assert [
        r["customer_id"] for r in export_rows(admin, "customer_service", tags=["vip", "north"])
    ] == [c]


def test_the_started_and_completed_events_index_every_exported_customer_and_carry_the_manifest(
    admin: Session, tmp_path: Path
) -> None:
    ids = people(admin, 150)  # more than an event names inline
    for cid in ids[::2]:
        admin.grant_consent(cid, "marketing_email", source="web-form")
    target = tmp_path / "out.csv"
    with target.open("wb") as handle:
        manifest = admin.export(
            "marketing_email", handle, batch_size=7, manifest_to=manifest_path(target)
        )
    started, event = admin.audit_query(AuditQuery(action="export", outcome="allowed"))
    assert (started["details"]["phase"], event["details"]["phase"]) == ("started", "completed")
    assert started["customers"] == event["customers"]
    written = manifest_path(target).read_bytes()
    assert event["details"]["manifest_sha256"] == hashlib.sha256(written).hexdigest()
    assert json.loads(written)["file_sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert event["customers"]["count"] == manifest.rows == 75
    assert event["customers"]["digest"] == manifest.customer_digest
    for cid in ids[::2][:3] + ids[::2][-2:]:
        seen = admin.audit_query(AuditQuery(customer=cid, action="export"))
        assert [e["seq"] for e in seen] == [started["seq"], event["seq"]]
    assert admin.audit_query(AuditQuery(customer=ids[1], action="export")) == []
    assert admin.audit_verify().ok


def test_cli_export_writes_the_file_and_its_manifest(
    home: Path, db_url: str, tmp_path: Path
) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    with vault:
        admin = vault.session(token, purpose="administration")
        a, _ = people(admin, 2)
        admin.grant_consent(a, "marketing_email", source="web-form")
    env = {"VAULT_TOKEN": token}
    target = tmp_path / "emails.csv"
    args = ["--home", str(home), "export", "--purpose", "marketing_email", "-o", str(target)]
    result = CliRunner().invoke(cli, [*args, "--fields", "email", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["rows"] == 1 and manifest["fields"] == ["customer_id", "email"]
    assert manifest_path(target).exists()
    assert target.read_text(encoding="utf-8-sig").splitlines()[1] == f"{a},c0@example.cn"
    complete = target.read_bytes()
    refused = CliRunner().invoke(cli, [*args, "--fields", "phone"], env=env)
    assert refused.exit_code == 1 and "phone" in refused.stderr
    assert target.read_bytes() == complete  # the refused export replaced nothing
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_segment_filter_composes_with_consent(admin: Session) -> None:
    buyer, browser, other_buyer = people(admin, 3)
    at = datetime.now(UTC) - timedelta(days=3)
    for n, cid in enumerate((buyer, other_buyer)):
        admin.record_order(
            Order(
                platform="youzan",
                shop="s",
                order_id=f"O{n}",
                status="completed",
                currency="CNY",
                total_amount=5000,
                created_at=at,
                paid_at=at,
                updated_at=at,
                customer_id=cid,
            ),
            source="test",
        )
    for cid in (buyer, browser):
        admin.grant_consent(cid, "marketing_sms", source="web-form")
    rows = export_rows(admin, "marketing_sms", segment="stage:first_purchase")
    assert [r["customer_id"] for r in rows] == [buyer]
    everyone = export_rows(admin, "customer_service", segment="stage:first_purchase")
    assert {r["customer_id"] for r in everyone} == {buyer, other_buyer}
