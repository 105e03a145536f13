"""Exports people can use: phones, emails and ID numbers as they are (the formula guard hit
`+8619906480894`), xlsx columns sized to their content, Chinese headers on request."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from vault import Vault
from vault.cli import cli
from vault.export.writers import CsvWriter, XlsxWriter, cell_text, display_width
from vault.session import Session

ID_NUMBER = "11010519491231002X"


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_typed_values_export_as_they_are_and_free_text_keeps_the_guard(admin: Session) -> None:
    plain = admin.add_customer(
        {
            "phone": "+86 199 0648 0894",
            "email": "li@example.cn",
            "id_number": ID_NUMBER,
            "note": "+cmd|' /C calc'!A0",
            "address": "-2+3",
        },
        source="test",
    )
    odd = admin.add_customer({"email": "=1+1@example.cn", "name": "@SUM(A1)"}, source="test")
    out = io.BytesIO()
    admin.export(
        "administration", out, fields=["name", "phone", "email", "id_number", "address", "note"]
    )
    rows = {row["customer_id"]: row for row in csv_rows(out.getvalue())}
    assert rows[plain]["phone"] == "+8619906480894"
    assert rows[plain]["email"] == "li@example.cn"
    assert rows[plain]["id_number"] == ID_NUMBER
    assert rows[plain]["note"] == "'+cmd|' /C calc'!A0"  # free text: guarded
    assert rows[plain]["address"] == "'-2+3"
    assert rows[odd]["email"] == "'=1+1@example.cn"  # valid, but not an ordinary address
    assert rows[odd]["name"] == "'@SUM(A1)"


def test_cell_text_guards_by_shape_not_by_column_name() -> None:
    assert cell_text("+8613800138000", "phone") == "+8613800138000"
    assert cell_text("+86138****8000", "phone") == "+86138****8000"  # a platform's masked phone
    assert cell_text("+8613800138000", "text") == "'+8613800138000"
    assert cell_text("+1+cmd|' /C calc'!A0", "phone") == "'+1+cmd|' /C calc'!A0"
    assert cell_text("=A1", None) == "'=A1"


def test_xlsx_columns_are_sized_to_the_header_and_the_rows() -> None:
    out = io.BytesIO()
    writer = XlsxWriter(
        out, ["customer_id", "name", "address"], headers=["客户编号", "姓名", "地址"]
    )
    address = "浙江省杭州市西湖区文三路一百二十三号"
    writer.write_rows([["c-1", "张三", address], ["c-2", None, "x"]])
    writer.close()
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    assert sheet is not None
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABC"}
    assert widths["C"] == display_width(address) + 2 == 38
    assert widths["A"] == display_width("客户编号") + 2 == 10
    assert widths["B"] == XlsxWriter.MIN_WIDTH
    assert [c.value for c in sheet[1]] == ["客户编号", "姓名", "地址"]
    assert [c.value for c in sheet[2]] == ["c-1", "张三", address]


def test_an_empty_xlsx_still_has_its_header() -> None:
    out = io.BytesIO()
    writer = XlsxWriter(out, ["customer_id"])
    writer.close()
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    assert sheet is not None and [c.value for c in sheet[1]] == ["customer_id"]


def test_headers_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="one header per column"):
        CsvWriter(io.BytesIO(), ["customer_id", "name"], headers=["客户编号"])


def test_cli_export_with_chinese_headers(initialised: tuple[Vault, str], home: Path) -> None:
    vault, token = initialised
    vault.session(token).add_customer({"name": "张三", "phone": "13800138000"}, source="t")
    output = home.parent / "out.csv"
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(home),
            "export",
            "--purpose",
            "customer_service",
            "--fields",
            "name,phone",
            "--headers",
            "zh",
            "-o",
            str(output),
            "--json",
        ],
        env={"VAULT_TOKEN": token},
    )
    assert result.exit_code == 0, (result.output, result.stderr)
    (row,) = csv_rows(output.read_bytes())
    assert row == {"客户编号": row["客户编号"], "姓名": "张三", "手机号": "+8613800138000"}
    assert json.loads(result.stdout)["fields"] == ["customer_id", "name", "phone"]


def test_a_customer_held_only_as_platform_ciphertext_is_said_so(admin: Session) -> None:
    from sqlalchemy import insert

    from vault.store.engine import utcnow
    from vault.store.schema import platform_handles

    plain = admin.add_customer({"name": "张三", "phone": "13800138000"}, source="t")
    buyer = admin.add_customer({"name": "李**"}, source="taobao", identities=[("taobao", "o-1")])
    with admin._vault._transaction() as connection:  # what a Taobao sync keeps of a buyer
        connection.execute(
            insert(platform_handles),
            [
                {
                    "customer_id": buyer,
                    "field": f,
                    "platform": "taobao",
                    "handle": b"~sealed~",
                    "observed_at": utcnow(),
                }
                for f in ("phone", "address")
            ],
        )
    out = io.BytesIO()
    manifest = admin.export("customer_service", out, fields=["name", "phone", "address"])
    rows = {row["customer_id"]: row for row in csv_rows(out.getvalue())}
    assert rows[buyer]["platform_ciphertext"] == "taobao: address, phone"
    assert rows[buyer]["phone"] == "" and rows[buyer]["name"] == "李**"
    assert rows[plain]["platform_ciphertext"] == ""
    assert manifest.fields[-1] == "platform_ciphertext"
    out = io.BytesIO()
    admin.export("customer_service", out, fields=["name", "phone"], headers="zh")
    header = out.getvalue().decode("utf-8-sig").splitlines()[0]
    assert header == "客户编号,姓名,手机号,仅有平台密文的字段"


def test_no_ciphertext_column_when_no_platform_holds_any(admin: Session) -> None:
    admin.add_customer({"name": "张三"}, source="t")
    out = io.BytesIO()
    admin.export("customer_service", out, fields=["name"])
    assert out.getvalue().decode("utf-8-sig").splitlines()[0] == "customer_id,name"


def test_a_default_export_has_no_column_empty_in_every_row(admin: Session) -> None:
    admin.add_customer({"name": "张三", "phone": "13800138000"}, source="t")
    out = io.BytesIO()
    manifest = admin.export("customer_service", out)  # allows 7 fields; 2 have values
    assert manifest.fields == ["customer_id", "name", "phone"]
    out = io.BytesIO()
    admin.export("customer_service", out, fields=["name", "email"])  # asked for by name: kept
    assert out.getvalue().decode("utf-8-sig").splitlines()[0] == "customer_id,name,email"
