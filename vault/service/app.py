"""The ASGI application: FastAPI routes over the library, inside the :class:`~._gate.Gate`.

``create_app(vault)`` serves an open vault (tests, ``vault demo``, one-process ``vault serve``);
:func:`app_from_environment` is the factory each ``vault serve --workers N`` process calls, and
opens the vault itself from ``VAULT_HOME`` (and ``VAULT_DB_URL`` when set).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI

from vault.audit.witness import WitnessSchedule
from vault.log import configure_logging
from vault.service import _errors
from vault.service._gate import Gate
from vault.service._ratelimit import RateLimiter
from vault.service.config import ServiceConfig
from vault.service.models import ErrorAnswer
from vault.service.routes import audit, consent, customers, dsar, exports, system
from vault.vault import Vault

API_VERSION = "1"
CONFIG_ENV = "VAULT_SERVICE_CONFIG"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "Malformed JSON or a bad header."},
    401: {"model": ErrorAnswer, "description": "No token, or not a valid one (audited)."},
    403: {"model": ErrorAnswer, "description": "Refused by policy (audited); never data."},
    404: {"model": ErrorAnswer, "description": "No such customer (or it was erased)."},
    409: {"model": ErrorAnswer, "description": "A uniqueness rule (e.g. an identity in use)."},
    413: {"model": ErrorAnswer, "description": "The body is larger than the limit."},
    415: {"model": ErrorAnswer, "description": "The body is not JSON."},
    422: {"model": ErrorAnswer, "description": "Unknown fields or invalid values."},
    429: {
        "model": ErrorAnswer,
        "description": "Too many requests for this token.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    },
}

DESCRIPTION = """\
The customer data vault over HTTP: the same one door as the library and the CLI.

Every request but `GET /v1/health` carries `Authorization: Bearer <token>` (a principal's token
from `vault principal add`) and, to read customer data, a purpose in `X-Vault-Purpose` (or
`?purpose=`). Each request is checked against the principal's roles and the purpose, sees
fields only as its role may, and is on the audit log with its `X-Request-Id`.
"""


def create_app(
    vault: Vault, config: ServiceConfig | None = None, *, owns_vault: bool = False
) -> Gate:
    """The API over ``vault``. With ``owns_vault`` the vault is closed at shutdown."""
    config = config or ServiceConfig()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        witness = None
        if config.witness_dir:
            witness = WitnessSchedule(
                vault,
                Path(config.witness_dir),
                every_events=config.witness_every_events,
                every_seconds=config.witness_every_seconds,
            )
            witness.start()
        try:
            yield
        finally:
            if witness is not None:
                witness.stop()
            if owns_vault:
                vault.close()

    api = FastAPI(
        title="Customer data vault",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    api.state.vault = vault
    # Every audited call writes (its audit event). SQLite serialises writers with a lock that a
    # waiting thread polls with sleeps; one door call at a time per process avoids that wait
    # inside the process. PostgreSQL waits on the chain head's row lock instead: no limit
    # beyond the thread pool's.
    api.state.door_limiter = anyio.CapacityLimiter(1) if vault.backend == "sqlite" else None
    api.state.config = config
    # One set of buckets: the gate counts requests without a credential (by client address),
    # the door counts the others after authentication (by principal).
    api.state.rate_limiter = RateLimiter(config.rate, config.burst)
    api.state.manifests = exports.Manifests()
    _errors.install(api)
    api.include_router(system.router)
    for router in (
        customers.router,
        consent.router,
        exports.router,
        dsar.router,
        audit.router,
    ):
        api.include_router(router, responses=ERROR_RESPONSES)
    return Gate(api, config, api.state.rate_limiter)


def app_from_environment() -> Gate:
    """The factory of a ``vault serve`` worker: the vault of ``VAULT_HOME`` (``VAULT_DB_URL``,
    ``VAULT_PASSPHRASE`` when set) and the limits in ``VAULT_SERVICE_CONFIG``."""
    configure_logging(level=os.environ.get("VAULT_LOG_LEVEL", "INFO"))
    config = ServiceConfig(**json.loads(os.environ.get(CONFIG_ENV, "{}")))
    vault = Vault.open(
        os.environ.get("VAULT_HOME"),
        passphrase=os.environ.get("VAULT_PASSPHRASE"),
        db_url=os.environ.get("VAULT_DB_URL") or None,
    )
    return create_app(vault, config, owns_vault=True)


def config_to_environment(config: ServiceConfig) -> str:
    return json.dumps(asdict(config))
