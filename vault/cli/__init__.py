"""The ``vault`` command: a thin layer over :class:`vault.Vault`; each command is one call.

Errors: a :class:`~vault.errors.VaultError` prints one line (and its hint) on stderr and exits
1; ``--debug`` adds the traceback. Every read command takes ``--json`` and then prints JSON only.

Each area's commands live in a module of this package and attach themselves to :data:`cli`
when imported here.
"""

from __future__ import annotations

# Each module attaches its commands to `cli` when imported (one line per area).
import vault.cli._core
import vault.cli.consent
import vault.cli.decrypt
import vault.cli.dsar
import vault.cli.export
import vault.cli.sandbox
import vault.cli.segments
import vault.cli.serve
import vault.cli.sync  # noqa: F401
from vault.cli._base import cli, fail
from vault.errors import VaultError

__all__ = ["cli", "main"]


def main() -> None:
    try:
        cli(prog_name="vault")
    except VaultError as error:  # raised outside a command's own handling, e.g. in callbacks
        fail(error)
