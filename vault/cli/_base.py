"""What every command shares: the root group, the caller's state, options and output helpers.

Errors: a :class:`~vault.errors.VaultError` prints one line (and its hint) on stderr and exits
1; ``--debug`` adds the traceback. Every read command takes ``--json`` and then prints JSON only.

Start-up: the command modules import click and this module only; the store, the crypto, logging
(structlog pulls in rich) and the rest load when a command first needs them, so ``vault --help``
and a one-customer command stay quick (``tests/test_cli_startup.py`` pins what is imported).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import update_wrapper
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from vault.errors import AccessDenied, VaultError

if TYPE_CHECKING:
    from vault.session import Session
    from vault.vault import Vault

F = TypeVar("F", bound=Callable[..., Any])

CLI_SOURCE = "cli"


class State:
    """What every command shares: where the vault lives and how to open it."""

    def __init__(self, home: str | None, debug: bool, token: str | None) -> None:
        self.home = home
        self.debug = debug
        self.token = token
        self._vault: Vault | None = None
        self._logging = False

    def start_logging(self) -> None:
        """Configure logging (once) before the first library call that may log."""
        if not self._logging:
            from vault.log import configure_logging

            level = "DEBUG" if self.debug else os.environ.get("VAULT_LOG_LEVEL", "WARNING")
            configure_logging(level=level)
            self._logging = True

    def passphrase(self) -> str | None:
        if os.environ.get("VAULT_PASSPHRASE"):
            return os.environ["VAULT_PASSPHRASE"]
        if sys.stdin.isatty():
            return str(click.prompt("Vault passphrase", hide_input=True))
        return None

    def open(self) -> Vault:
        if self._vault is None:
            from vault.config import VaultHome
            from vault.vault import Vault

            self.start_logging()
            home = VaultHome.resolve(self.home)
            passphrase = None
            if home.exists() and home.read_settings().key_source == "passphrase":
                passphrase = self.passphrase()
            self._vault = Vault.open(self.home, passphrase=passphrase)
        return self._vault

    def session(self, purpose: str | None = None) -> Session:
        """The caller's session: the token of --token / VAULT_TOKEN, at the one door."""
        vault = self.open()
        if not self.token:
            raise AccessDenied(
                principal="<no token>",
                action="authenticate",
                reason="no token given: pass --token or set VAULT_TOKEN",
            )
        return vault.session(self.token, purpose=purpose)

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()


def format_time(moment: datetime | date | str | None) -> str | None:
    """The one time format of every command's output, text and JSON: RFC 3339 with an offset
    (``2026-11-01T02:00:00+00:00``), in UTC. A naive time is the store's UTC. (Audit events keep
    their own hashed ``at``, RFC 3339 with ``Z``.)"""
    if moment is None:
        return None
    if isinstance(moment, str):  # a time some layer already wrote out
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            return moment
        return format_time(parsed)
    if not isinstance(moment, datetime):
        return moment.isoformat()  # a date: 2026-11-01
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return format_time(value)
    return str(value)


def to_json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=_json_default)


def emit_json(data: Any) -> None:
    click.echo(to_json_text(data))


def parse_assignments(pairs: Sequence[str], option: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter("expected FIELD=VALUE", param_hint=option)
        values[name.strip()] = value
    return values


class VaultGroup(click.Group):
    """Turns any failure into one clear line on stderr and exit status 1: a ``VaultError`` as
    it is, anything else (a database error met outside the door, a bug) first mapped by
    :func:`vault.store._errors.as_vault_error`. ``--debug`` adds the traceback. Click's own
    exceptions (usage errors, ``--help``, aborts) are left to click."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except Exception as failure:
            state = ctx.obj if isinstance(ctx.obj, State) else None
            if state is not None and state.debug:
                traceback.print_exc()
            from vault.store._errors import as_vault_error

            fail(as_vault_error(failure, ctx.invoked_subcommand or "vault"))
        finally:
            if isinstance(ctx.obj, State):
                ctx.obj.close()


def fail(error: VaultError) -> NoReturn:
    click.echo(f"Error: {type(error).__name__}: {error}", err=True)
    if error.hint:
        click.echo(error.hint, err=True)
    sys.exit(1)


@click.group(cls=VaultGroup)
@click.option(
    "--home",
    envvar="VAULT_HOME",
    type=click.Path(file_okay=False),
    help="The vault home (default ./.vault, or VAULT_HOME).",
)
@click.option(
    "--token",
    envvar="VAULT_TOKEN",
    help="Your principal's token (or VAULT_TOKEN). Prefer the variable: arguments show in ps.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="customer-data-vault")
@click.pass_context
def cli(ctx: click.Context, home: str | None, token: str | None, debug: bool) -> None:
    """The customer data vault: encrypted customer PII, searchable without decrypting."""
    ctx.obj = State(home, debug, token)


def purpose_option(function: F) -> F:
    return click.option(
        "--purpose",
        envvar="VAULT_PURPOSE",
        help="Why you read this data: a purpose from policies/purposes.toml (or VAULT_PURPOSE).",
    )(function)


def pass_state(function: F) -> F:
    """Pass the caller's :class:`State` as first argument, with logging configured: the body of
    a command runs only when it is invoked (not for ``--help``), so logging loads only then."""

    @click.pass_context
    def new_function(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        state = ctx.find_object(State)
        if state is None:  # pragma: no cover - every command hangs below `cli`
            raise RuntimeError("the vault command group did not set up its state")
        state.start_logging()
        return ctx.invoke(function, state, *args, **kwargs)

    return update_wrapper(new_function, function)  # type: ignore[return-value]  # same signature
