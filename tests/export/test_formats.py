"""Export formats come from the ``vault_register_export_formats`` hook, built-ins included."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence

import pytest

from vault import InvalidValue, hookimpl
from vault.export import ExportWriter, export_formats
from vault.export.writers import Cell
from vault.plugins import get_plugin_manager
from vault.session import Session


class TsvWriter(ExportWriter):
    name = "tsv"
    extension = "tsv"
    media_type = "text/tab-separated-values"

    def __init__(self, out: object, columns: Sequence[str]) -> None:
        super().__init__(out, columns)  # type: ignore[arg-type]
        self.write_rows([list(columns)])

    def write_rows(self, rows: Iterable[Sequence[Cell]]) -> None:
        for row in rows:
            self.out.write(("\t".join(v or "" for v in row) + "\n").encode())


class TsvPlugin:
    @hookimpl
    def vault_register_export_formats(self) -> list[type[ExportWriter]]:
        return [TsvWriter]


@pytest.fixture
def tsv_plugin() -> Iterator[None]:
    manager = get_plugin_manager()
    plugin = TsvPlugin()
    manager.register(plugin, name="test-tsv")
    try:
        yield
    finally:
        manager.unregister(plugin)


def test_the_built_in_formats_register_through_the_hook() -> None:
    assert {"csv", "jsonl", "xlsx"} <= set(export_formats())
    assert "vault.export.formats" in {name for name, _ in get_plugin_manager().list_name_plugin()}


def test_a_plugin_format_exports_the_same_consented_rows(admin: Session, tsv_plugin: None) -> None:
    a = admin.add_customer({"name": "赵六", "email": "z6@example.cn"}, source="t")
    admin.add_customer({"name": "钱七", "email": "q7@example.cn"}, source="t")
    admin.grant_consent(a, "marketing_email", source="web-form")
    out = io.BytesIO()
    manifest = admin.export("marketing_email", out, fmt="tsv", fields=["email"])
    assert out.getvalue().decode().splitlines() == ["customer_id\temail", f"{a}\tz6@example.cn"]
    assert manifest.format == "tsv" and manifest.rows == 1


def test_an_unknown_format_is_refused_before_anything_is_written(admin: Session) -> None:
    out = io.BytesIO()
    with pytest.raises(InvalidValue, match="unknown export format"):
        admin.export("customer_service", out, fmt="pdf")
    assert out.getvalue() == b""
