"""``vault sandbox NAME``: run a connector's platform emulator on loopback, in the foreground."""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING

import click

from vault.cli._base import cli
from vault.errors import ConfigError

if TYPE_CHECKING:
    from vault.sandbox import Sandbox


def sandbox_class(name: str) -> type[Sandbox]:
    """The emulator class of connector ``name`` (its ``sandbox`` attribute, ``module:Class``)."""
    from vault.plugins import connector_classes
    from vault.sandbox import Sandbox

    connectors = connector_classes()
    if name not in connectors:
        known = ", ".join(sorted(connectors)) or "none installed"
        raise ConfigError(f"no connector named {name!r} (connectors: {known})")
    target = connectors[name][0].sandbox
    if not target:
        raise ConfigError(f"connector {name!r} ships no sandbox")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Sandbox)):
        raise ConfigError(f"connector {name!r}: {target} is not a vault.sandbox.Sandbox")
    return cls


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
