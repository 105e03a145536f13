"""``vault serve``: the HTTP API over the same vault (``VAULT_HOME``, or ``--db`` to share one
PostgreSQL between several API processes)."""

from __future__ import annotations

from pathlib import Path

import click

from vault.cli._base import State, cli, pass_state

# The defaults of vault.service.config, repeated so that loading the CLI does not import FastAPI
# (vault.service imports its app); tests/test_cli_startup.py checks they agree.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RATE = 200.0
DEFAULT_BURST = 400


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8200, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--db",
    "db_url",
    envvar="VAULT_DB_URL",
    help="Database URL overriding the home's settings (several API processes, one PostgreSQL).",
)
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="TLS cert.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS key.")
@click.option(
    "--ssl-keyfile-password", envvar="VAULT_SSL_KEYFILE_PASSWORD", help="If the key is encrypted."
)
@click.option(
    "--rate-limit",
    "rate",
    default=DEFAULT_RATE,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Requests per second per token, per process (0: no limit).",
)
@click.option("--burst", default=DEFAULT_BURST, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--max-body",
    "max_body",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body accepted, in bytes.",
)
@click.option(
    "--graceful-timeout",
    default=30,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds to let requests in flight finish on shutdown.",
)
@click.option(
    "--witness",
    "witness_dir",
    type=click.Path(file_okay=False),
    help="Write signed audit checkpoints here (a place the database's writers cannot write).",
)
@click.option("--witness-every-events", default=1000, show_default=True, type=click.IntRange(1))
@click.option(
    "--witness-every-seconds", default=60.0, show_default=True, type=click.FloatRange(min=0.1)
)
@pass_state
def serve(
    state: State,
    host: str,
    port: int,
    workers: int,
    db_url: str | None,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    ssl_keyfile_password: str | None,
    rate: float,
    burst: int,
    max_body: int,
    graceful_timeout: int,
    witness_dir: str | None,
    witness_every_events: int,
    witness_every_seconds: float,
) -> None:
    """Serve the vault's HTTP API (docs at /v1/docs, OpenAPI at /v1/openapi.json)."""
    from vault.config import VaultHome
    from vault.service.config import ServiceConfig
    from vault.service.server import Listen
    from vault.service.server import serve as run

    home = VaultHome.resolve(state.home)
    passphrase = None
    if home.exists() and home.read_settings().key_source == "passphrase":
        passphrase = state.passphrase()
    run(
        home=str(home.path),
        db_url=db_url,
        passphrase=passphrase,
        listen=Listen(
            host=host,
            port=port,
            workers=workers,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            ssl_keyfile_password=ssl_keyfile_password,
            graceful_timeout=graceful_timeout,
        ),
        config=ServiceConfig(
            max_body_bytes=max_body,
            rate=rate,
            burst=burst,
            witness_dir=str(Path(witness_dir).resolve()) if witness_dir else None,
            witness_every_events=witness_every_events,
            witness_every_seconds=witness_every_seconds,
        ),
        echo=lambda line: click.echo(line, err=True),
    )
