"""Running the API with uvicorn: ``vault serve`` (one process or ``--workers N``) and an
in-process server on a free loopback port (``vault demo``, tests, benchmarks).

Graceful shutdown is uvicorn's: on SIGTERM or SIGINT it stops accepting connections, lets the
requests in flight finish (up to ``graceful_timeout`` seconds), then runs the application's
shutdown, which closes the vault.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from vault.errors import ConfigError
from vault.log import configure_logging
from vault.service.app import CONFIG_ENV, config_to_environment, create_app
from vault.service.config import ServiceConfig
from vault.vault import Vault

FACTORY = "vault.service.app:app_from_environment"
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
WORKER_HEALTHCHECK_SECONDS = 60


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, tls: bool) -> str | None:
    """What to tell the operator about where the API listens, if anything."""
    if is_loopback(host) or tls:
        return None
    return (
        f"WARNING: serving on {host} without TLS: tokens and customer data would cross the "
        "network in clear. Pass --ssl-certfile and --ssl-keyfile, or bind 127.0.0.1 behind a "
        "TLS-terminating reverse proxy."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 8200
    workers: int = 1
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    graceful_timeout: int = 30

    def uvicorn_options(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_keyfile_password": self.ssl_keyfile_password,
            "timeout_graceful_shutdown": self.graceful_timeout,
            # A worker answers the supervisor's health pings only once it has imported the
            # vault and opened it; uvicorn's 5 s default kills slow starters on a busy machine.
            "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
            "access_log": False,  # ours (vault.service.access) names no query string or body
            "server_header": False,
            "proxy_headers": False,
            "log_level": "info",
        }


def serve(
    *,
    home: str | None,
    db_url: str | None,
    passphrase: str | None,
    listen: Listen,
    config: ServiceConfig,
    echo: Callable[[str], None],
) -> None:
    """Serve until SIGTERM/SIGINT. Opens the vault first so that a wrong key or a database
    behind its migrations fails before the port is bound."""
    if (listen.ssl_certfile is None) != (listen.ssl_keyfile is None):
        raise ConfigError("TLS needs both --ssl-certfile and --ssl-keyfile")
    if listen.workers < 1:
        raise ConfigError("--workers must be at least 1")
    warning = exposure_warning(listen.host, listen.ssl_certfile is not None)
    if warning:
        echo(warning)
    level = os.environ.get("VAULT_LOG_LEVEL", "INFO")
    configure_logging(level=level)
    vault = Vault.open(home, passphrase=passphrase, db_url=db_url)
    scheme = "https" if listen.ssl_certfile else "http"
    echo(
        f"Serving the vault at {vault.location} ({vault.backend}) on "
        f"{scheme}://{listen.host}:{listen.port}/v1 with {listen.workers} worker(s)."
    )
    if listen.workers == 1:
        app = create_app(vault, config, owns_vault=True)
        uvicorn.run(app, **listen.uvicorn_options())
        return
    # Each worker process opens the vault itself, from the same home and database.
    vault.close()
    os.environ["VAULT_HOME"] = str(vault.location)
    os.environ["VAULT_LOG_LEVEL"] = level
    os.environ[CONFIG_ENV] = config_to_environment(config)
    if db_url:
        os.environ["VAULT_DB_URL"] = db_url
    if passphrase:
        os.environ["VAULT_PASSPHRASE"] = passphrase  # the workers inherit it, and only they
    uvicorn.run(FACTORY, factory=True, workers=listen.workers, **listen.uvicorn_options())


class RunningServer:
    """A uvicorn server in a thread of this process; ``url`` is where it listens."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        socket = server.servers[0].sockets[0]
        host, port = socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@contextmanager
def running(
    vault: Vault, config: ServiceConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningServer]:
    """Serve ``vault`` on ``host`` (a free port by default) while the block runs."""
    app = create_app(vault, config)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, access_log=False, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="vault-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the vault service did not start")
        time.sleep(0.01)
    handle = RunningServer(server, thread)
    try:
        yield handle
    finally:
        handle.stop()
