"""Who is asking and for what: the bearer token and the purpose, taken to the one door.

Every route that touches the vault depends on :func:`caller` (no I/O: it only reads the
headers) and runs its work with :meth:`Caller.run`, which, in one worker thread, hands the
token, the purpose and the request id to :meth:`vault.Vault.session` (it authenticates, and
audits a bad token, exactly as for the CLI), counts the request in the principal's rate-limit
bucket (:mod:`vault.service._ratelimit`) and then calls one method of that session. One
thread hop per request: the library is synchronous, and the event loop never waits on the
database. A missing token is presented as an empty one, so that it is refused and audited by the
same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vault.errors import AccessDenied
from vault.service._ratelimit import RateLimiter
from vault.session import Session
from vault.vault import Vault

T = TypeVar("T")

bearer = HTTPBearer(
    auto_error=False,
    description="A principal's token (`vault principal add`), as `Authorization: Bearer vt_…`.",
)

PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def vault_of(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


async def purpose_of(
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


class Caller:
    """The credentials and purpose of one request, not yet checked: :meth:`session` takes them
    to the door."""

    def __init__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None,
        purpose: str | None,
    ) -> None:
        self.request = request
        self.credentials = credentials
        self.purpose = purpose

    def session(self) -> Session:
        """Authenticate at the door (blocking: call it from a worker thread), then count the
        request in the principal's rate-limit bucket (a refused token: the client address's).
        Raises :class:`~vault.service._ratelimit.RateLimited` when that bucket is empty."""
        token = self.credentials.credentials if self.credentials is not None else ""
        vault = vault_of(self.request)
        try:
            opened = vault.session(
                token, purpose=self.purpose, request_id=self.request.state.request_id
            )
        except AccessDenied as refused:
            if self.credentials is None:  # audited by the door as "not a vault token"
                raise AccessDenied(
                    principal="<no token>",
                    action="authenticate",
                    reason="no bearer token: send Authorization: Bearer <token>",
                ) from refused
            client = self.request.client
            self._count(f"client:{client.host if client else '?'}")
            raise
        self._count(f"principal:{opened.principal.name}")
        self.request.state.principal = opened.principal.name
        return opened

    def _count(self, bucket: str) -> None:
        """Once per request (the gate counted requests without a credential)."""
        state = self.request.state
        if getattr(state, "rate_counted", False):
            return
        state.rate_counted = True
        limiter: RateLimiter = self.request.app.state.rate_limiter
        limiter.check(bucket)

    async def run(self, operation: Callable[[Session], T]) -> T:
        """Open the session and run ``operation`` on it, in one worker thread."""
        limiter = self.request.app.state.door_limiter
        return await anyio.to_thread.run_sync(lambda: operation(self.session()), limiter=limiter)


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    purpose: Annotated[str | None, Depends(purpose_of)],
) -> Caller:
    """The request's caller. A request without any token is refused (401, audited) here,
    before its body is even validated: an anonymous caller learns nothing about the API's
    inputs from a 422."""
    found = Caller(request, credentials, purpose)
    if credentials is None:
        limiter = request.app.state.door_limiter
        await anyio.to_thread.run_sync(found.session, limiter=limiter)  # raises AccessDenied
    return found


CallerDep = Annotated[Caller, Depends(caller)]
