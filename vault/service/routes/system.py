"""``/v1/health``: no authentication; says only that the service is up and the database
answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vault.service._auth import vault_of
from vault.service._errors import error_body
from vault.service.models import ErrorAnswer, Health

router = APIRouter(prefix="/v1", tags=["service"])


@router.get(
    "/health",
    response_model=Health,
    summary="Is the service up and its database reachable?",
    responses={503: {"model": ErrorAnswer, "description": "The database does not answer."}},
)
def health(request: Request) -> Any:
    if vault_of(request).database_reachable():
        return {"status": "ok", "database": "reachable"}
    return JSONResponse(
        error_body("Unavailable", "the database is not reachable", request), status_code=503
    )
