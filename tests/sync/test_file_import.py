"""File import: encodings, Chinese headers, xlsx, mappings, reject reports without PII."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.file_import import detect_encoding
from vault.errors import ConfigError, ConnectorError
from vault.session import Session
from vault.store.schema import customers
from vault.vault import Vault

HEADER = ["序号", "姓名", "手机号码", "电子邮箱", "收货地址", "生日", "买家ID"]
GOOD = [
    [
        "1",
        "张伟",
        "138 0013 8000",
        "zhangwei@example.cn",
        "浙江省杭州市西湖区文三路 1 号",
        "1990/4/1",
        "tb_0001",
    ],
    [
        "2",
        "李娜",
        "+86 139-0000-1234",
        "lina@example.cn",
        "上海市浦东新区世纪大道 100 号",
        "1988年12月3日",
        "tb_0002",
    ],
    ["3", "王芳", "8613600001111", "", "北京市朝阳区建国路 8 号", "", ""],
]
BAD = [
    ["4", "赵敏", "138-abc-0000", "zm@example.cn", "广州市天河区", "", ""],  # invalid phone
    ["5", "钱多多", "13711112222", "qdd@example.cn", "深圳市南山区", "1990-13-45", ""],  # bad date
    ["6", "孙悟空", "13822223333", "swk@example.cn", "花果山", "", "", "多出来的列"],  # extra cell
    ["7", "周" * 300, "13933334444", "zhou@example.cn", "成都市", "", ""],  # over-long name
]


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def customer_count(vault: Vault) -> int:
    with vault._engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(customers)).scalar_one())


def snapshot(admin: Session) -> list[dict[str, str]]:
    seen = []
    for row in GOOD:
        (customer_id,) = admin.find_customers("phone", row[2], purpose="administration")
        customer = admin.get_customer(customer_id, purpose="administration")
        seen.append({name: value.value for name, value in customer.fields.items()})
    return seen


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "gbk", "utf-8"])
def test_gb18030_gbk_and_utf8_files_with_chinese_headers_import_the_same_rows(
    admin: Session, vault: Vault, tmp_path: Path, encoding: str
) -> None:
    path = write_csv(tmp_path / f"客户-{encoding}.csv", GOOD, encoding)
    assert (
        detect_encoding(path)
        in {
            "gb18030": ("gb18030",),
            "gbk": ("gb18030",),
            "utf-8-sig": ("utf-8-sig",),
            "utf-8": ("utf-8",),
        }[encoding]
    )
    report = admin.import_file(path)
    assert (report.created, report.rejected) == (3, 0)
    assert snapshot(admin) == [
        {
            "name": "张伟",
            "phone": "+8613800138000",
            "email": "zhangwei@example.cn",
            "address": "浙江省杭州市西湖区文三路 1 号",
            "birthday": "1990-04-01",
        },
        {
            "name": "李娜",
            "phone": "+8613900001234",
            "email": "lina@example.cn",
            "address": "上海市浦东新区世纪大道 100 号",
            "birthday": "1988-12-03",
        },
        {"name": "王芳", "phone": "+8613600001111", "address": "北京市朝阳区建国路 8 号"},
    ]
    assert admin.find_by_identity("taobao", "tb_0001") is not None
    assert report.principal == "connector-file_import"


def test_bad_rows_go_to_a_reject_report_with_row_and_reason_and_no_clear_pii(
    admin: Session, vault: Vault, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "mixed.csv", GOOD + BAD, "gb18030")
    report = admin.import_file(path)
    assert (report.created, report.rejected) == (3, 4)
    assert report.reject_report is not None
    text = Path(report.reject_report).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["row", "reason"]
    reasons = {int(r[0]): r[1] for r in rows[1:]}
    assert set(reasons) == {5, 6, 7, 8}  # the header is row 1
    assert "phone" in reasons[5] and "birthday" in reasons[6]
    assert "8 cells" in reasons[7] and "name" in reasons[8] and "longer" in reasons[8]
    for row in GOOD + BAD:
        for cell in row[1:]:
            if len(cell) > 1:
                assert cell not in text, "a cell value reached the reject report"
    for reject in report.rejects:
        for row in BAD:
            assert all(cell not in reject.reason for cell in row[1:] if len(cell) > 1)


def test_xlsx_with_numbers_and_dates_as_cells_imports_like_csv(
    admin: Session, tmp_path: Path
) -> None:
    from datetime import datetime

    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["姓名", "手机", "出生日期"])
    sheet.append(["张伟", 13800138000, datetime(1990, 4, 1)])
    sheet.append(["李娜", "139-0000-1234", "1988-12-03"])
    path = tmp_path / "客户.xlsx"
    workbook.save(path)
    report = admin.import_file(path)
    assert (report.created, report.rejected, report.encoding) == (2, 0, "xlsx")
    (customer_id,) = admin.find_customers("phone", "13800138000", purpose="administration")
    assert admin.get_customer(customer_id, purpose="administration").get("birthday") == "1990-04-01"


def test_a_mapping_file_maps_english_headers_and_unknown_headers_are_reported(
    admin: Session, tmp_path: Path
) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("Client,Cell,Shoe size\n张伟,13800138000,42\n", encoding="utf-8")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"Client" = "name"\n"Cell" = "phone"\n', encoding="utf-8")
    report = admin.import_file(path, mapping=mapping, source="old_crm")
    assert report.created == 1 and report.ignored_columns == ["Shoe size"]
    (customer_id,) = admin.find_customers("phone", "13800138000", purpose="administration")
    assert admin.get_customer(customer_id, purpose="administration").fields["name"].source == (
        "old_crm"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[columns]\n"Client" = "shoe"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'shoe'"):
        admin.import_file(path, mapping=bad)


def test_re_importing_a_file_changes_nothing_and_a_dry_run_writes_nothing(
    admin: Session, vault: Vault, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv", GOOD, "utf-8")
    dry = admin.import_file(path, dry_run=True)
    assert dry.created == 3 and customer_count(vault) == 0
    admin.import_file(path)
    again = admin.import_file(path)
    assert (again.created, again.updated, again.merged, again.skipped) == (0, 0, 0, 3)
    assert customer_count(vault) == 3


def test_a_file_in_no_known_encoding_or_with_no_mapped_column_is_a_clear_error(
    admin: Session, tmp_path: Path
) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"\xff\xfe\x00\x00garbage")
    with pytest.raises(ConnectorError):
        admin.import_file(path, encoding="utf-8")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ConnectorError, match="no column of the header maps"):
        admin.import_file(other)
