"""``vault dsar export|correct|erase|erasure-status``: data-subject requests."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vault.cli._base import State, cli, emit_json, parse_assignments, pass_state, purpose_option
from vault.export.files import write_private


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


@dsar.command("erasure-status")
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def dsar_erasure_status(state: State, customer_id: str, as_json: bool) -> None:
    """Where the erasure of CUSTOMER_ID stands on each connected system asked to erase."""
    requests = state.session().erasure_status(customer_id)
    if as_json:
        emit_json(requests)
        return
    if not requests:
        click.echo(f"{customer_id}: no erasure requested from any connected system.")
    for request in requests:
        done = f", {request['done_at']:%Y-%m-%d %H:%M}" if request["done_at"] else ""
        detail = f" ({request['detail']})" if request["detail"] else ""
        click.echo(f"{request['system']:<12} {request['status']:<8}{done}{detail}")


@dsar.command("export")
@click.argument("customer_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@purpose_option
@pass_state
def dsar_export(state: State, customer_id: str, output: Path, purpose: str | None) -> None:
    """Write everything held on CUSTOMER_ID (fields, orders, consent, accesses, recipients) as
    JSON to FILE."""
    document = state.session(purpose).dsar_export(customer_id)
    text = json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n"
    write_private(output, text.encode("utf-8"))  # 0600, complete or absent
    click.echo(
        f"Wrote {output}: {len(document['customer']['fields'])} fields, "
        f"{len(document['orders'])} orders, {len(document['accesses'])} accesses, "
        f"{len(document['recipients'])} recipients.",
        err=True,
    )


@dsar.command("correct")
@click.argument("customer_id")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def dsar_correct(
    state: State, customer_id: str, assignments: tuple[str, ...], as_json: bool
) -> None:
    """Rectify fields of CUSTOMER_ID at their request (provenance: dsar)."""
    changed = state.session().dsar_correct(customer_id, parse_assignments(assignments, "FIELD"))
    if as_json:
        emit_json({"id": customer_id, "changed": changed})
    else:
        click.echo(f"Corrected: {', '.join(changed) if changed else 'nothing'}")


@cli.group()
def retention() -> None:
    """Apply the purposes' and the field catalogue's retention periods."""


@retention.command("run")
@click.option(
    "--dry-run/--apply", default=True, show_default=True, help="Report only (default), or act."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def retention_run(state: State, dry_run: bool, as_json: bool) -> None:
    """Erase customers no purpose holds any more and remove field values past their retention."""
    report = state.session().run_retention(dry_run=dry_run)
    if as_json:
        emit_json(report.to_json())
        return
    verb = "would erase" if dry_run else "erased"
    click.echo(
        f"Checked {report.checked} customers: {verb} "
        f"{len(report.expired) if dry_run else report.erased} past every purpose's retention."
    )
    for name, count in sorted(report.fields.items()):
        action = "would remove" if dry_run else "removed"
        click.echo(f"  field {name}: {action} {count} values past its retention")
    if dry_run:
        click.echo("Dry run: nothing changed. Run with --apply to act.", err=True)
