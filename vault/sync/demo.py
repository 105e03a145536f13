"""The file-import step of ``vault demo``: a GBK shop export with Chinese headers and one bad
row, imported through the file-import connector; one row joins an existing customer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vault.session import Session

ROWS = [
    ("买家昵称", "收货人", "手机号码", "收货地址", "生日"),
    ("茶友小林", "林晓", "139 1234 5678", "福建省泉州市安溪县城厢镇 12 号", "1992/7/9"),
    ("qing**", "周青", "+86 135-8888-0001", "浙江省杭州市西湖区龙井路 3 号", "1985年3月21日"),
    ("老顾客", "", "{existing}", "江苏省苏州市姑苏区平江路 88 号", ""),
    ("坏数据", "错号", "1380013", "上海市", "1990-02-30"),
]


def demo_file_import(
    admin: Session, folder: Path, existing_phone: str, echo: Callable[[str], None], *, step: str
) -> None:
    """Write the export, import it, and show what the merge kept and where each value came
    from."""
    written = f"{existing_phone[:3]} {existing_phone[3:7]} {existing_phone[7:]}"
    lines = [",".join(row).replace("{existing}", written) for row in ROWS]
    path = folder / "淘宝订单导出.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    echo(f"{step} Importing a shop export in GBK with Chinese headers ({path.name}), one bad row:")
    report = admin.import_file(path, source="taobao")
    echo(
        f"   encoding {report.encoding}: created {report.created}, merged {report.merged} "
        f"(by phone, written differently), rejected {report.rejected}"
    )
    for reject in report.rejects:
        echo(f"   rejected {reject.where}: {reject.reason}  (no value in the report)")
    (customer_id,) = admin.find_customers("phone", existing_phone)
    customer = admin.get_customer(customer_id)
    echo(f"   customer {customer_id} now holds, with provenance:")
    for name in ("name", "phone", "address", "nickname"):
        value = customer.fields.get(name)
        if value is not None:
            echo(f"     {name:<10} {value.value}   (from {value.source})")


def demo_shop_sync(admin: Session, echo: Callable[[str], None], *, step: str) -> None:
    """Run the Youzan sandbox on loopback, sync its customers and orders into the vault through
    the connector and the sync engine, then sync again (incremental: nothing new)."""
    from vault.plugins import sandbox_class

    youzan: Any = sandbox_class("youzan")  # through the plugin manager (tests/test_layers.py)
    with youzan(seed=7, records=200, span_days=2) as sandbox:
        echo(f"{step} A shop: the Youzan emulator on {sandbox.url} (its real protocol:")
        echo(
            "   tokens, envelopes, paging, masked and encrypted buyer fields), `vault sync youzan`:"
        )
        settings = {**sandbox.credentials(), "base_url": sandbox.url, "history_days": "3"}
        admin.configure_connector("youzan", settings)
        first = admin.sync("youzan")
        echo(
            f"   pulled {first.pulled}, created {first.created}, updated {first.updated}, "
            f"merged {first.merged}, as principal {first.principal} (its secrets sealed)"
        )
        again = admin.sync("youzan")
        echo(f"   and again, incrementally from the saved cursors: pulled {again.pulled}.")
