"""Consent-aware exports: formats (:class:`ExportWriter`), the manifest, the registry."""

from vault.export.formats import export_formats
from vault.export.manifest import ExportManifest, manifest_path
from vault.export.writers import CsvWriter, ExportWriter, JsonlWriter, XlsxWriter
from vault.serialise import neutralise

__all__ = [
    "CsvWriter",
    "ExportManifest",
    "ExportWriter",
    "JsonlWriter",
    "XlsxWriter",
    "export_formats",
    "manifest_path",
    "neutralise",
]
