"""``/v1/exports``: a consent-aware export for a purpose, streamed as the response body, and its
manifest (rows, fields, SHA-256 of the body) once the stream has ended.

The export id is the request id (``X-Vault-Export-Id``, also ``X-Request-Id``); the manifest's
``manifest_sha256`` is the hash the export's ``completed`` audit event carries. Its ``started``
event is committed before the first byte (the status is decided by the first byte): when it
cannot be written, the answer is 503 and no data; a client that hangs up leaves it, and
``GET /v1/exports/incomplete`` lists the export. The process that streamed an
export keeps its manifest (for the principal who made it, a day, the last 1,000): fetch it on the
same connection (keep-alive), or run one worker per host behind sticky routing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException

from vault.export.manifest import ExportManifest
from vault.service._auth import CallerDep
from vault.service._stream import Stream
from vault.service.models import ExportIn, IncompleteExportOut, ManifestOut, Moment

router = APIRouter(prefix="/v1/exports", tags=["exports"])

MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
KEEP_MANIFESTS = 1000
KEEP_SECONDS = 24 * 3600
ExportId = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


class Manifests:
    """The manifests of this process's recent exports, each for its own principal only."""

    def __init__(self) -> None:
        self._held: OrderedDict[str, tuple[str, float, ExportManifest]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, manifest: ExportManifest) -> None:
        with self._lock:
            self._held[manifest.request_id] = (manifest.actor, time.monotonic(), manifest)
            while len(self._held) > KEEP_MANIFESTS:
                self._held.popitem(last=False)

    def get(self, export_id: str, principal: str) -> ExportManifest | None:
        with self._lock:
            held = self._held.get(export_id)
        if held is None or held[0] != principal or time.monotonic() - held[1] > KEEP_SECONDS:
            return None
        return held[2]


def manifests_of(request: Request) -> Manifests:
    held: Manifests = request.app.state.manifests
    return held


@router.post(
    "",
    response_class=StreamingResponse,
    summary="Export the customers consented for a purpose (streamed)",
    responses={
        200: {
            "description": "The export (CSV with a BOM, or JSON Lines); the manifest follows at "
            "GET /v1/exports/{X-Vault-Export-Id}/manifest.",
            "content": {"text/csv": {}, "application/x-ndjson": {}},
            "headers": {"X-Vault-Export-Id": {"schema": {"type": "string"}}},
        }
    },
)
async def export(body: ExportIn, caller: CallerDep, request: Request) -> Response:
    """Only customers whose consent for the purpose is active, only the fields the purpose
    allows, masked as your role requires; audited before the first byte (503 and nothing sent
    when it cannot be), and again at the end with the manifest's hash."""
    held = manifests_of(request)
    purpose = body.purpose or caller.purpose

    def write(out: IO[bytes]) -> ExportManifest:
        manifest = caller.session().export(
            purpose or "",
            out,
            fmt=body.format,
            fields=body.fields,
            tags=body.tags,
            segment=body.segment,
        )
        held.keep(manifest)
        return manifest

    stream: Stream[ExportManifest] = Stream(write)
    first = await stream.first()
    export_id = request.state.request_id
    return StreamingResponse(
        stream.body(first),
        media_type=MEDIA[body.format],
        headers={
            "X-Vault-Export-Id": export_id,
            "Content-Disposition": f'attachment; filename="export-{export_id}.{body.format}"',
        },
    )


@router.get(
    "/incomplete",
    response_model=list[IncompleteExportOut],
    summary="Exports that started and never completed",
)
async def incomplete(
    caller: CallerDep,
    since: Annotated[Moment | None, Query(description="Started from this time (RFC 3339).")] = None,
    until: Annotated[
        Moment | None, Query(description="Started before this time (RFC 3339).")
    ] = None,
) -> list[dict[str, Any]]:
    """A stream cut short, a process killed, a failure mid-way: each export whose ``started``
    audit event has no ``completed`` one, oldest first. Needs the ``audit`` action (audited)."""
    return await caller.run(lambda s: s.incomplete_exports(since=since, until=until))


@router.get(
    "/{export_id}/manifest",
    response_model=ManifestOut,
    summary="The manifest of an export you made",
    responses={404: {"description": "No such export of yours in this process."}},
)
async def manifest(export_id: ExportId, caller: CallerDep, request: Request) -> dict[str, Any]:
    principal = await caller.run(lambda s: s.principal.name)
    found = manifests_of(request).get(export_id, principal)
    if found is None:
        raise HTTPException(404, f"no export {export_id} of yours is held by this process")
    return {**found.to_json(), "manifest_sha256": found.sha256}
