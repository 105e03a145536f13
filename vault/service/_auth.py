"""Who is asking and for what: the bearer token and the purpose, taken to the one door.

Every route that touches the vault depends on :func:`session`: it hands the token, the purpose
and the request id to :meth:`vault.Vault.session`, which authenticates (and audits a bad token)
exactly as for the CLI. A missing token is presented as an empty one, so that it is refused and
audited by the same code.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vault.errors import AccessDenied
from vault.session import Session
from vault.vault import Vault

bearer = HTTPBearer(
    auto_error=False,
    description="A principal's token (`vault principal add`), as `Authorization: Bearer vt_…`.",
)

PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def vault_of(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def purpose_of(
    x_vault_purpose: Annotated[
        str | None,
        Header(
            pattern=PURPOSE_PATTERN,
            description="Why you ask: a purpose from the vault's purposes.toml.",
        ),
    ] = None,
    purpose: Annotated[
        str | None,
        Query(
            pattern=PURPOSE_PATTERN,
            description="The purpose, when a header cannot be set (the header wins).",
        ),
    ] = None,
) -> str | None:
    return x_vault_purpose or purpose


def session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    purpose: Annotated[str | None, Depends(purpose_of)],
) -> Session:
    token = credentials.credentials if credentials is not None else ""
    vault = vault_of(request)
    try:
        opened = vault.session(token, purpose=purpose, request_id=request.state.request_id)
    except AccessDenied as refused:
        if credentials is None:  # audited by the door as "not a vault token"; say what is missing
            raise AccessDenied(
                principal="<no token>",
                action="authenticate",
                reason="no bearer token: send Authorization: Bearer <token>",
            ) from refused
        raise
    request.state.principal = opened.principal.name
    return opened


SessionDep = Annotated[Session, Depends(session)]
