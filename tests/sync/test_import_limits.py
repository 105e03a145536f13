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

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    "</Types>"
)
_WORKBOOK = (
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_RELS = (
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
_SHEET = (
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>手机</t></is></c></row>'
    '<row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    "</sheetData></worksheet>"
)


def hostile_xlsx(path: Path, *, shared: int = 0, shared_xml: str | None = None) -> Path:
    """A workbook whose shared-strings table holds ``shared`` empty strings (or ``shared_xml``):
    3 million of them compress to well under a megabyte."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _RELS)
        archive.writestr("xl/worksheets/sheet1.xml", _SHEET)
        if shared_xml is None:
            body = "<si><t/></si>" * shared
            shared_xml = f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{body}</sst>'
        archive.writestr("xl/sharedStrings.xml", shared_xml)
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
    with vault.engine.connect() as connection:
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
    with vault.engine.connect() as connection:
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
