"""The export manifest: what was exported, for what, by whom, and the SHA-256 of the file.

Written beside the export as ``FILE.manifest.json``, in canonical JSON (sorted keys, no
spaces), so that the SHA-256 of the manifest file is exactly the ``manifest_sha256`` that the
export's audit event carries: ``sha256sum FILE.manifest.json`` checks one against the other, and
the file's own ``file_sha256`` checks the export.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vault.export.files import write_private

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1


def manifest_path(export_path: str | os.PathLike[str]) -> Path:
    path = Path(export_path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportManifest:
    purpose: str
    legal_basis: str
    actor: str
    roles: list[str]
    created_at: str
    format: str
    rows: int
    fields: list[str]
    file_sha256: str
    file_bytes: int
    customer_digest: str  # SHA-256 of the sorted exported customer ids, as in the audit event
    tags: list[str]
    segment: str | None
    request_id: str
    version: int = MANIFEST_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def canonical(self) -> bytes:
        return json.dumps(
            self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest to ``path`` (0600, complete or absent, as the export itself)."""
        return write_private(path, self.canonical())
