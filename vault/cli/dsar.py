"""``vault dsar export|correct|erase|erasure-status``: data-subject requests."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vault.cli._base import (
    State,
    cli,
    emit_json,
    format_time,
    parse_assignments,
    pass_state,
    purpose_option,
    to_json_text,
)


def on_terminal() -> bool:
    """Whether a person can answer a prompt (standard input is a terminal)."""
    return sys.stdin.isatty()


@cli.group()
def dsar() -> None:
    """Data-subject requests: access (export), correction, erasure."""


@dsar.command("erase")
@click.argument("customer_id")
@click.option("--reason", required=True, help="A reference for the request (never PII).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def dsar_erase(state: State, customer_id: str, reason: str, yes: bool, as_json: bool) -> None:
    """Erase CUSTOMER_ID: destroy the data key, remove index entries and identities, leave a
    suppression entry and an erasure request for every connected system. It cannot be undone:
    on a terminal it asks first; elsewhere it needs --yes."""
    if not yes:
        if not on_terminal():
            raise click.ClickException(
                "erasing cannot be undone: pass --yes to erase without a terminal to confirm on"
            )
        click.confirm(
            f"Erase {customer_id} for good (reason: {reason})? It cannot be undone",
            abort=True,
            err=True,
        )
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
        done = f", {format_time(request['done_at'])}" if request["done_at"] else ""
        detail = f" ({request['detail']})" if request["detail"] else ""
        click.echo(f"{request['system']:<12} {request['status']:<8}{done}{detail}")


@dsar.command("export")
@click.argument("customer_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    required=True,
    help="The JSON file (`-`: standard output).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON only.")
@purpose_option
@pass_state
def dsar_export(
    state: State, customer_id: str, output: Path, as_json: bool, purpose: str | None
) -> None:
    """Write everything held on CUSTOMER_ID (fields, orders, consent, accesses, recipients) as
    JSON to FILE, and a summary (on stderr, or as JSON on stdout with --json)."""
    document = state.session(purpose).dsar_export(customer_id)
    text = to_json_text(document) + "\n"
    summary = {
        "customer": customer_id,
        "output": str(output),
        "fields": len(document["customer"]["fields"]),
        "orders": len(document["orders"]),
        "accesses": len(document["accesses"]),
        "recipients": len(document["recipients"]),
    }
    if str(output) == "-":
        if as_json:
            raise click.UsageError("-o - writes the document to stdout: leave out --json")
        click.echo(text, nl=False)
    else:
        from vault.export.files import write_private

        write_private(output, text.encode("utf-8"))  # 0600, complete or absent
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"Wrote {output}: {summary['fields']} fields, {summary['orders']} orders, "
        f"{summary['accesses']} accesses, {summary['recipients']} recipients.",
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
