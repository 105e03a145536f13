"""The export formats: the built-in ones and those plugins register."""

from __future__ import annotations

from typing import cast

from vault.errors import InvalidValue
from vault.export.writers import BUILTIN_WRITERS, ExportWriter
from vault.hookspecs import hookimpl


@hookimpl
def vault_register_export_formats() -> list[type[ExportWriter]]:
    return list(BUILTIN_WRITERS)


def export_formats() -> dict[str, type[ExportWriter]]:
    """Every export format, by name; the first plugin to contribute a name keeps it."""
    from vault.plugins import get_plugin_manager

    found: dict[str, type[ExportWriter]] = {}
    for contributed in get_plugin_manager().hook.vault_register_export_formats():
        for cls in cast("list[type[ExportWriter]]", contributed or []):
            if isinstance(cls, type) and issubclass(cls, ExportWriter):
                found.setdefault(cls.name, cls)
    return found


def writer_class(name: str) -> type[ExportWriter]:
    formats = export_formats()
    try:
        return formats[name]
    except KeyError:
        raise InvalidValue(
            field="format", reason=f"unknown export format (known: {', '.join(sorted(formats))})"
        ) from None
