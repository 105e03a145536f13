"""``vault connectors decrypt`` and ``vault connectors decrypt-quota``: platform decryption.

Each is one call of :class:`vault.session.Session` (:mod:`vault.sync.decrypt`). The commands
attach to the ``connectors`` group when another module made it, or make it.
"""

from __future__ import annotations

import click

import vault.cli.sync  # noqa: F401  (it makes the `connectors` group these commands join)
from vault.cli._base import State, cli, emit_json, pass_state, purpose_option


def _connectors_group() -> click.Group:
    existing = cli.commands.get("connectors")
    if isinstance(existing, click.Group):
        return existing

    @cli.group("connectors")
    def connectors() -> None:
        """Connectors: settings, platform decryption and its quotas."""

    return connectors


connectors = _connectors_group()


@connectors.command("decrypt")
@click.argument("customer_id")
@click.argument("field")
@click.option("--connector", "connector_name", required=True, help="The configured connector.")
@click.option(
    "--scene",
    required=True,
    type=click.Choice(["shipping", "after_sales", "customer_service"]),
    help="Why: a scene your purpose allows (policies/purposes.toml).",
)
@purpose_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def decrypt(
    state: State,
    customer_id: str,
    field: str,
    connector_name: str,
    scene: str,
    purpose: str | None,
    as_json: bool,
) -> None:
    """Ask the platform to decrypt FIELD of CUSTOMER_ID; stored encrypted, audited."""
    value = state.session(purpose).decrypt_platform_field(
        customer_id, field, connector=connector_name, scene=scene, purpose=purpose
    )
    if as_json:
        emit_json({"customer_id": customer_id, "field": field, "value": value})
    else:
        click.echo(value if value is not None else "(the platform decrypted nothing)")


@connectors.command("decrypt-quota")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def decrypt_quota(state: State, as_json: bool) -> None:
    """Platform decryption used, per connector, scene and day."""
    usage = [u.as_dict() for u in state.session().decrypt_quota_status()]
    if as_json:
        emit_json(usage)
        return
    if not usage:
        click.echo("no platform decryption yet")
        return
    click.echo(f"{'day':<10}  {'connector':<12}  {'scene':<16}  calls  decrypted  denied")
    for u in usage:
        click.echo(
            f"{u['day']:<10}  {u['connector']:<12}  {u['scene']:<16}  {u['calls']:>5}  "
            f"{u['decrypted']:>9}  {u['denied']:>6}"
        )
