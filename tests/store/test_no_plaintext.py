"""No plaintext of any encrypted field reaches the database or the logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from vault.log import configure_logging
from vault.session import Session
from vault.store.schema import metadata

CUSTOMERS = [
    {
        "name": "欧阳娜娜",
        "phone": "139 1234 5678",
        "email": "Nana.Ouyang@example.cn",
        "id_number": "11010519491231002X",
        "address": "广东省深圳市南山区粤海街道科技园路18号",
        "birthday": "1949-12-31",
        "nickname": "娜娜爱购物",
        "note": "prefers calls after 6pm 晚上联系",
    },
    {
        "name": "Zhang Wei",
        "phone": "+86 186-0000-1111",
        "email": "zhang.wei@qq.com",
        "address": "北京市东城区东华门街道南池子大街7号",
    },
]
UPDATE = {"phone": "13700007777", "address": "上海市浦东新区陆家嘴街道世纪大道100号"}
INTERACTION_TEXT = "退货投诉：包裹破损 damaged parcel"


def plaintexts(admin: Session) -> set[bytes]:
    """Every value in its given and its normalised form, and substrings long enough to matter."""
    values: set[str] = set()
    for record in [*CUSTOMERS, UPDATE]:
        for field, raw in record.items():
            values.add(raw)
            values.add(admin._vault.catalogue[field].normalise(raw).value)
    values.add(INTERACTION_TEXT)
    values.add("13912345678")
    values.add("欧阳娜娜")
    values.add("科技园路")
    return {v.encode() for v in values if len(v) >= 4}


def load(admin: Session) -> list[str]:
    ids = [admin.add_customer(record, source="test") for record in CUSTOMERS]
    admin.update_customer(ids[0], UPDATE, source="test")
    admin.add_identity(ids[1], "youzan", "yz_open_id_secret_42", source="test")
    admin.record_interaction(
        ids[0],
        kind="complaint",
        channel="taobao",
        occurred_at=datetime.now(UTC),
        text=INTERACTION_TEXT,
        source="test",
    )
    return ids


def database_bytes(admin: Session) -> bytes:
    if admin._vault._engine.dialect.name == "sqlite":
        path = Path(admin._vault._engine.url.database or "")
        return b"".join(
            p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
    chunks: list[bytes] = []
    with admin._vault._engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\x00".join(chunks)


def test_no_plaintext_of_encrypted_fields_in_the_database(admin: Session) -> None:
    ids = load(admin)
    assert admin.get_customer(ids[0]).get("name") == "欧阳娜娜"  # the data is really there
    stored = database_bytes(admin)
    assert len(stored) > 1000
    leaked = [v.decode() for v in plaintexts(admin) if v in stored]
    assert leaked == []
    assert b"yz_open_id_secret_42" not in stored


def test_no_plaintext_in_log_output(admin: Session, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="DEBUG", json=True)
    try:
        load(admin)
        admin.find_customers("phone", "139 1234 5678")
    finally:
        configure_logging(level="WARNING")
    output = capsys.readouterr()
    text = (output.out + output.err).encode()
    lines = [json.loads(line) for line in output.err.splitlines() if line.startswith("{")]
    writes = [
        line for line in lines if line["event"] == "audit_event" and line["action"] == "write"
    ]
    assert writes  # logging did happen
    assert [v.decode() for v in plaintexts(admin) if v in text] == []
