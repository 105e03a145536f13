"""``vault dsar export|correct|erase``: data-subject requests."""

from __future__ import annotations

import click

from vault.cli._base import State, cli, emit_json, pass_state


@cli.group()
def dsar() -> None:
    """Data-subject requests: access (export), correction, erasure."""


@dsar.command("erase")
@click.argument("customer_id")
@click.option("--reason", required=True, help="A reference for the request (never PII).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def dsar_erase(state: State, customer_id: str, reason: str, as_json: bool) -> None:
    """Erase CUSTOMER_ID: destroy the data key, remove index entries and identities, leave a
    suppression entry and an erasure request for every connected system."""
    report = state.session().erase_customer(customer_id, reason=reason)
    if as_json:
        emit_json(report.to_json())
        return
    systems = ", ".join(report.erasure_requests) or "none"
    click.echo(
        f"Erased {customer_id}: data key destroyed, {report.fields} fields and "
        f"{report.identities} identities removed, {report.suppression_entries} suppression "
        f"entries; erasure requested from: {systems}."
    )
