"""``vault sandbox NAME``: run a connector's platform emulator on loopback, in the foreground."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from vault.cli._base import cli

if TYPE_CHECKING:
    from vault.sandbox import Sandbox

__all__ = ["sandbox", "sandbox_class"]


def sandbox_class(name: str) -> type[Sandbox]:
    """The emulator class of connector ``name`` (:func:`vault.plugins.sandbox_class`), imported
    when a sandbox is asked for, not at ``vault --help``."""
    from vault.plugins import sandbox_class as find

    return find(name)


@cli.command()
@click.argument("name")
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1 (0: any free one).")
@click.option("--seed", default=0, show_default=True, help="Seed of the generated data.")
@click.option("--records", type=int, default=None, help="How many records to seed.")
def sandbox(name: str, port: int, seed: int, records: int | None) -> None:
    """Run the sandbox of connector NAME on loopback; print one JSON line (URLs, credentials)."""
    emulator = sandbox_class(name)(seed=seed, records=records)
    emulator.start(port)
    click.echo(json.dumps(emulator.announce(), ensure_ascii=False), nl=True)
    try:
        if emulator._thread is not None:
            while emulator._thread.is_alive():
                emulator._thread.join(timeout=1)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
