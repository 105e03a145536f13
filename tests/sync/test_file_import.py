"""File import: encodings, Chinese headers, xlsx, mappings, reject reports without PII."""

from __future__ import annotations

import csv
import io
import os
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


# --- every kind of bad row is refused, with its reason (issue 19, item 3) ------------------------

KINDS_HEADER = ["姓名", "手机号码", "电子邮箱", "身份证号", "生日", "买家ID", "备注"]
KIND_ROWS = [
    ["好人", "13800138000", "good@example.cn", "", "", "tb_good", ""],
    ["短号", "12345", "", "", "", "", ""],  # row 3: a phone of no range in use
    ["坏邮件", "", "not-an-email", "", "", "", ""],  # row 4
    ["坏身份证", "", "", "110101199003071234", "", "", ""],  # row 5: check digit
    ["坏日期", "13700001111", "", "", "1990-02-30", "", ""],  # row 6
    ["长值", "13700002222", "", "", "", "", "x" * 20_000],  # row 7
    ["无键", "", "", "", "", "", "只有名字"],  # row 8: no key column has a value
    ["控制", "13700003333", "", "", "", "", "a\x07b\x1b[31m"],  # row 9
    [],  # row 10: empty
    ["后来", "13700004444", "", "", "", "", ""],  # row 11
]
KIND_REASONS = {
    3: "phone",
    4: "email",
    5: "id_number",
    6: "birthday",
    7: "note",
    8: "no key",
    9: "control characters",
}


def test_each_kind_of_bad_row_is_rejected_with_its_reason_and_empty_rows_are_counted(
    admin: Session, vault: Vault, tmp_path: Path
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([KINDS_HEADER, *KIND_ROWS])
    path = tmp_path / "kinds.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    report = admin.import_file(path)
    assert (report.created, report.rejected, report.empty_rows) == (2, 7, 1)
    assert report.reject_report is not None
    text = Path(report.reject_report).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [int(r[0]) for r in rows] == sorted(KIND_REASONS)
    for number, reason in rows:
        assert KIND_REASONS[int(number)] in reason
    for row in KIND_ROWS:
        for cell in row:
            if len(cell) > 1:
                assert cell not in text, "a cell value reached the reject report"
    assert customer_count(vault) == 2


def test_a_header_with_no_key_column_is_refused_before_anything_is_written(
    admin: Session, vault: Vault, tmp_path: Path
) -> None:
    path = tmp_path / "names.csv"
    path.write_text("姓名,收货地址\n张伟,杭州市\n", encoding="utf-8")
    with pytest.raises(ConnectorError, match="no column of the header is a key"):
        admin.import_file(path)
    assert customer_count(vault) == 0


def test_a_dry_run_predicts_the_real_run_exactly_and_writes_no_reject_report(
    admin: Session, vault: Vault, tmp_path: Path
) -> None:
    """Duplicates across batches (row 2 again as row 6, two batches of 3 rows) and a person
    erased before the import: the dry run counts them as the real run does."""
    rows = [*GOOD, BAD[0], GOOD[1], ["9", "新人", "13912345678", "", "", "", ""]]
    path = write_csv(tmp_path / "dupes.csv", rows, "utf-8")
    os.utime(path, (1_700_000_000, 1_700_000_000))  # its rows were observed before the erasure
    erased = write_csv(tmp_path / "erased.csv", [GOOD[2]], "utf-8")
    admin.import_file(erased)
    (gone,) = admin.find_customers("phone", GOOD[2][2], purpose="administration")
    admin.erase_customer(gone, reason="request")
    before = customer_count(vault)
    dry = admin.import_file(path, dry_run=True, batch_size=3)
    assert customer_count(vault) == before
    assert not (tmp_path / "dupes.csv.rejects.csv").exists(), "a dry run wrote the reject report"
    real = admin.import_file(path, batch_size=3)
    keys = ("pulled", "created", "updated", "merged", "skipped", "rejected", "suppressed")
    assert {k: dry.as_dict()[k] for k in keys} == {k: real.as_dict()[k] for k in keys}
    assert (real.created, real.rejected, real.suppressed) == (3, 1, 1)
    assert [r.where for r in dry.rejects] == [r.where for r in real.rejects]


# --- encodings (issue 14, observation 8) ---------------------------------------------------------


def _gbk_names_valid_as_utf8(count: int) -> list[str]:
    """Common hanzi (GB2312 level 1) whose GBK bytes are also a valid UTF-8 sequence."""
    names = []
    for lead in range(0xC2, 0xD8):
        for trail in range(0xA1, 0xC0):
            try:
                names.append(bytes([lead, trail]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return ["".join(names[i : i + 3]) for i in range(0, 3 * count, 3)]


def test_gbk_text_that_is_also_valid_utf8_is_read_as_gbk_and_the_encoding_is_reported(
    admin: Session, tmp_path: Path
) -> None:
    data = "name,phone\n史志伟,13800138000\n".encode("gbk")
    data.decode("utf-8")  # the trap: these bytes are valid UTF-8 (ʷ־ΰ)
    path = tmp_path / "gbk.csv"
    path.write_bytes(data)
    assert detect_encoding(path) == "gb18030"
    report = admin.import_file(path)
    assert (report.created, report.encoding, report.encoding_detected) == (1, "gb18030", True)
    (customer_id,) = admin.find_customers("phone", "13800138000", purpose="administration")
    assert admin.get_customer(customer_id, purpose="administration").get("name") == "史志伟"
    many = tmp_path / "many.csv"
    names = _gbk_names_valid_as_utf8(50)
    lines = [f"{n},139{i:08d}" for i, n in enumerate(names)]
    payload = ("name,phone\n" + "\n".join(lines) + "\n").encode("gbk")
    payload.decode("utf-8")
    many.write_bytes(payload)
    assert detect_encoding(many) == "gb18030"


@pytest.mark.parametrize(
    "text",
    [
        "name,phone\nJosé Müller,13800138000\n",
        "姓名,手机\n史志伟,13800138000\n",
        "name,phone\nΑλέξης (Alexis),13800138000\n张伟,13900001234\n",
        "name,phone\nZoë 😀,13800138000\n",
    ],
)
def test_utf8_text_stays_utf8(tmp_path: Path, text: str) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(text.encode("utf-8"))
    assert detect_encoding(path) == "utf-8"


def test_encoding_given_overrides_the_detection(admin: Session, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("name,phone\n史志伟,13800138000\n".encode("gbk"))
    report = admin.import_file(path, encoding="utf-8")
    assert (report.encoding, report.encoding_detected) == ("utf-8", False)
    (customer_id,) = admin.find_customers("phone", "13800138000", purpose="administration")
    assert admin.get_customer(customer_id, purpose="administration").get("name") == "ʷ־ΰ"
