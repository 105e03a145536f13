"""Bounded input: hostile files cost little memory and fail in one line, writing nothing.

Issue 14, observation 7: an xlsx of 776 KB holding 3 million shared strings took 712 MB; a
sparse CSV of 1 GB took 3.2 GB before its delimiter was guessed; a consent CSV with a 200 MB
cell printed a raw ``_csv.Error`` (a 500 over HTTP). The files here are made on the spot (a
sparse file costs no disk) and the memory is measured in a child process (peak RSS).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from connectors.file_import import xlsx
from vault import InvalidValue, Vault
from vault.cli import cli
from vault.errors import ConnectorError
from vault.session import Session
from vault.store.schema import consent_events, customers
from vault.textfile import MAX_CSV_CELL, MAX_LINE

ROOT = Path(__file__).resolve().parents[2]

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHARED_TYPE = (
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)
SHARED_REL = (
    '<Relationship Id="rIdShared" Target="sharedStrings.xml" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
)


def hostile_xlsx(path: Path, *, shared: int = 0, shared_xml: str | None = None) -> Path:
    """A workbook made by openpyxl (a header and one row), whose shared-strings table is then
    replaced by ``shared`` empty strings after its own (or by ``shared_xml``): 3 million of them
    compress to well under a megabyte."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["手机", "姓名"])
    sheet.append(["13800138000", "张伟"])
    plain = path.with_suffix(".plain.xlsx")
    workbook.save(plain)
    if shared_xml is None:
        own = "".join(f"<si><t>{text}</t></si>" for text in ("手机", "姓名", "13800138000", "张伟"))
        shared_xml = f'<sst xmlns="{MAIN}">{own}{"<si><t/></si>" * shared}</sst>'
    sheet_xml = (
        f'<worksheet xmlns="{MAIN}"><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
        "</sheetData></worksheet>"
    )
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", SHARED_TYPE.encode() + b"</Types>")
            elif item.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", SHARED_REL.encode() + b"</Relationships>")
            elif item.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml.encode()
            out.writestr(item, data)
        out.writestr("xl/sharedStrings.xml", shared_xml)
    plain.unlink()
    return path


def sparse_csv(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def peak_memory_of_reading(path: Path) -> tuple[int, str]:
    """Peak RSS growth (bytes) of a child process that opens ``path`` as the import does and
    reads it to its end (or its error), and the error's message."""
    script = f"""
import json, resource, sys
sys.path.insert(0, {str(ROOT)!r})
from connectors.file_import import FileImportConnector
from vault.errors import VaultError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
message = ""
try:
    FileImportConnector({{"path": {str(path)!r}}}).check()
except VaultError as error:
    message = str(error)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"grew": (after - before) * 1024, "message": message}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return int(result["grew"]), str(result["message"])


def customer_count(vault: Vault) -> int:
    with vault._engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(customers)).scalar_one())


# --- xlsx ----------------------------------------------------------------------------------------


def test_an_xlsx_of_three_million_shared_strings_is_refused_in_little_memory(
    tmp_path: Path,
) -> None:
    path = hostile_xlsx(tmp_path / "bomb.xlsx", shared=3_000_000)
    assert path.stat().st_size < 1_000_000
    grew, message = peak_memory_of_reading(path)
    assert "1,000,000 shared strings (the limit)" in message
    assert "\n" not in message
    assert grew < 64 * 1024 * 1024, f"reading the workbook grew the process by {grew:,} bytes"


def test_an_xlsx_past_a_limit_is_one_line_and_writes_nothing(
    admin: Session, vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "MAX_SHARED_STRINGS", 1_000)
    path = hostile_xlsx(tmp_path / "bomb.xlsx", shared=5_000)
    with pytest.raises(ConnectorError, match="shared strings") as caught:
        admin.import_file(path)
    assert "\n" not in str(caught.value)
    assert customer_count(vault) == 0
    assert not (tmp_path / "bomb.xlsx.rejects.csv").exists()


@pytest.mark.parametrize(
    ("shared_xml", "limit"),
    [
        ("<sst><si><t>" + "x" * 40_000 + "</t></si></sst>", "32,767 characters"),
        (
            '<!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa">]><sst><si><t>&a;</t></si></sst>',
            "document type",
        ),
        ("<sst><si><t>unclosed</sst>", "not well-formed"),
    ],
)
def test_an_xlsx_with_a_long_cell_a_dtd_or_broken_xml_names_what_is_wrong(
    tmp_path: Path, shared_xml: str, limit: str
) -> None:
    from connectors.file_import import FileImportConnector

    path = hostile_xlsx(tmp_path / "odd.xlsx", shared_xml=shared_xml)
    with pytest.raises(ConnectorError, match=limit):
        FileImportConnector({"path": str(path)}).check()


def test_an_xlsx_inflating_past_the_limit_is_refused_while_inflating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.file_import import FileImportConnector

    monkeypatch.setattr(xlsx, "MAX_PART_BYTES", 1024 * 1024)
    path = hostile_xlsx(tmp_path / "big.xlsx", shared=200_000)  # 2.6 MB of XML
    with pytest.raises(ConnectorError, match="inflates to more than 1 MiB"):
        FileImportConnector({"path": str(path)}).check()


# --- CSV -----------------------------------------------------------------------------------------


def test_a_sparse_gigabyte_csv_is_refused_in_little_memory(tmp_path: Path) -> None:
    path = sparse_csv(tmp_path / "sparse.csv", 1024**3)
    grew, message = peak_memory_of_reading(path)
    assert f"longer than {MAX_LINE:,} characters" in message
    assert grew < 64 * 1024 * 1024, f"reading the CSV grew the process by {grew:,} bytes"


def test_a_csv_cell_past_the_limit_is_one_line_naming_it_and_writes_nothing(
    admin: Session, vault: Vault, tmp_path: Path
) -> None:
    path = tmp_path / "big.csv"
    path.write_text(
        '手机,备注\n13800138000,ok\n13900001234,"' + "x" * (MAX_CSV_CELL + 10) + '"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConnectorError, match=f"row 3: a cell is longer than {MAX_CSV_CELL:,}"):
        admin.import_file(path)
    assert customer_count(vault) == 0, "the rows before the bad one went in"


def test_a_file_that_stops_decoding_late_is_refused_before_any_batch(
    admin: Session, vault: Vault, tmp_path: Path
) -> None:
    rows = "".join(f"1380013{n:04d}\n" for n in range(3000))
    path = tmp_path / "late.csv"
    path.write_bytes(b"phone\n" + rows.encode() + b"\xff\xfe\n")
    with pytest.raises(ConnectorError, match="does not decode as utf-8"):
        admin.import_file(path, encoding="utf-8", batch_size=100)
    assert customer_count(vault) == 0


# --- consent import ------------------------------------------------------------------------------

CONSENT_HEADER = "customer,purpose,state,at,source,evidence\n"


@pytest.mark.parametrize(
    ("cell", "limit"),
    [
        ("y" * (MAX_CSV_CELL + 10), f"line 3: a cell is longer than {MAX_CSV_CELL:,}"),
        ("y\n" * MAX_CSV_CELL, f"a cell is longer than {MAX_CSV_CELL:,}"),  # short lines
        ("y" * (2 * MAX_LINE), f"line 3 is longer than {MAX_LINE:,} characters"),
    ],
)
def test_a_consent_csv_with_a_huge_cell_is_one_invalid_value_and_records_nothing(
    admin: Session, vault: Vault, tmp_path: Path, cell: str, limit: str
) -> None:
    customer = admin.add_customer({"phone": "13800138000"}, source="t")
    path = tmp_path / "consent.csv"
    path.write_text(
        CONSENT_HEADER
        + f"{customer},marketing_sms,granted,2026-02-01T10:00:00Z,web,ref\n"
        + f'{customer},marketing_sms,granted,2026-02-01T10:00:00Z,web,"{cell}"\n',
        encoding="utf-8",
    )
    with pytest.raises(InvalidValue, match=limit) as caught:
        admin.import_consent(path)
    assert "\n" not in str(caught.value)
    with vault._engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(consent_events)).scalar() == 0


def test_cli_consent_import_of_a_hostile_file_prints_one_line(
    home: Path, db_url: str, tmp_path: Path
) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    vault.close()
    path = sparse_csv(tmp_path / "consent.csv", 64 * 1024 * 1024)
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "consent", "import", str(path)],
        env={"VAULT_TOKEN": token, "VAULT_PURPOSE": "administration"},
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "longer than" in lines[0] and "Traceback" not in result.output


def test_consent_import_reads_gbk_that_is_valid_utf8_as_gbk(admin: Session, tmp_path: Path) -> None:
    customer = admin.add_customer({"phone": "13800138000"}, source="t")
    path = tmp_path / "consent.csv"
    row = f"{customer},marketing_sms,granted,2026-02-01T10:00:00Z,史志伟,\n"
    path.write_bytes((CONSENT_HEADER + row).encode("gbk"))
    report = admin.import_consent(path)
    assert (report.recorded, report.encoding) == (1, "gb18030")
    assert admin.consent_of(customer).ledger[0].channel == "史志伟"


def test_the_streaming_xlsx_reader_reads_cells_as_openpyxl_does(tmp_path: Path) -> None:
    from datetime import date, datetime, time

    from openpyxl import Workbook, load_workbook

    from connectors.file_import.reader import cell_text

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["姓名", "手机", "生日", "金额", "是否", "时间", "备注"])
    sheet.append(["张伟", 13800138000, datetime(1990, 4, 1), 12.5, True, time(8, 30), None])
    sheet.append(["李娜", "139-0000-1234", date(1988, 12, 3), -3, False, None, "多行\n备注"])
    sheet.append([])
    sheet.append(["王芳", 1.38e10, datetime(2026, 1, 2, 15, 4, 5), 0, None, None, "=1+1"])
    sheet["F6"] = 7
    sheet["H6"] = "far"
    path = tmp_path / "types.xlsx"
    workbook.save(path)

    ours = xlsx.XlsxReader(path, cell_text)
    try:
        mine = [(number, cells) for number, cells in ours.rows()]
    finally:
        ours.close()
    for _, cells in mine:
        while cells and not cells[-1]:
            cells.pop()
    book = load_workbook(path, read_only=True, data_only=True)
    theirs = []
    for number, values in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
        cells = [cell_text(v) for v in values]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            theirs.append((number, cells))
    book.close()
    assert [(n, cells) for n, cells in mine if any(cells)] == theirs
    assert len(theirs) == 5


def test_cli_import_of_a_hostile_file_prints_one_line_and_writes_nothing(
    home: Path, db_url: str, tmp_path: Path
) -> None:
    vault, token = Vault.init(home, db_url=db_url)
    vault.close()
    path = sparse_csv(tmp_path / "customers.csv", 64 * 1024 * 1024)
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "import", str(path)],
        env={"VAULT_TOKEN": token, "VAULT_PURPOSE": "administration"},
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert f"longer than {MAX_LINE:,} characters" in lines[0]
    assert not (tmp_path / "customers.csv.rejects.csv").exists()
    with Vault.open(home, db_url=db_url) as reopened:
        assert customer_count(reopened) == 0
