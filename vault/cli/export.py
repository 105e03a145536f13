"""``vault export``: a consent-aware, minimised, masked, audited export with its manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from vault.cli._base import State, cli, emit_json, pass_state
from vault.cli._core import audit


@cli.command("export")
@click.option("--purpose", envvar="VAULT_PURPOSE", required=True, help="What the export is for.")
@click.option("--tag", "tags", multiple=True, help="Only customers with this tag (repeatable).")
@click.option(
    "--segment", help="Only the members of this segment (tier:, stage:, group:, tag: or a name)."
)
@click.option("--tier", help="Only customers in this value tier (policies/segments.toml).")
@click.option("--stage", help="Only customers in this lifecycle stage.")
@click.option("--group", help="Only the members of this rule-based group.")
@click.option("--fields", help="Comma-separated fields (default: all the purpose allows you).")
@click.option(
    "--format", "fmt", default="csv", show_default=True, help="csv, jsonl, xlsx (or a plugin's)."
)
@click.option(
    "--headers",
    type=click.Choice(["names", "en", "zh"]),
    default="names",
    show_default=True,
    help="Header row: field names, or the field catalogue's labels in English or Chinese.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON only.")
@pass_state
def export(
    state: State,
    purpose: str,
    tags: tuple[str, ...],
    segment: str | None,
    tier: str | None,
    stage: str | None,
    group: str | None,
    fields: str | None,
    fmt: str,
    headers: str,
    output: Path,
    as_json: bool,
) -> None:
    """Export the customers consented for PURPOSE; writes FILE and FILE.manifest.json.

    In CSV, a cell that a spreadsheet would run as a formula starts with `'`; a phone number,
    email address, ID number or date that has its field type's shape is written as it is. xlsx
    cells are always text; its columns are sized to the header and the first rows."""
    from vault.export.files import private_file
    from vault.export.manifest import manifest_path

    wanted = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    session = state.session(purpose)
    # A 0600 temporary file beside the target, renamed onto it once complete: an error, Ctrl-C
    # or kill -9 mid-way leaves no partial export under the target's name.
    with private_file(output) as handle:
        manifest = session.export(
            purpose,
            handle,
            fmt=fmt,
            fields=wanted,
            tags=tags,
            segment=segment,
            segments=[
                f"{kind}:{value}"
                for kind, value in (("tier", tier), ("stage", stage), ("group", group))
                if value
            ],
            headers=headers,
        )
    manifest.write(manifest_path(output))
    if as_json:
        emit_json({**manifest.to_json(), "manifest_sha256": manifest.sha256})
        return
    click.echo(
        f"Exported {manifest.rows} customers ({', '.join(manifest.fields)}) to {output}; "
        f"manifest {manifest_path(output)} (sha256 {manifest.sha256[:16]}…)."
    )


@audit.command("incomplete-exports")
@click.option("--since", type=click.DateTime(), help="Exports started from this time (UTC).")
@click.option("--until", type=click.DateTime(), help="Exports started before this time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def audit_incomplete_exports(
    state: State, since: datetime | None, until: datetime | None, as_json: bool
) -> None:
    """Exports that started but never completed: a stream cut short, a process killed, a
    failure mid-way. Data may have left for each; the customers are in the audit log's index
    (`vault audit query --customer ID`). Exits 0 either way; --json for scripts."""
    found = state.session().incomplete_exports(since=_utc(since), until=_utc(until))
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("Every export that started completed.")
        return
    for export in found:
        click.echo(
            f"{export['seq']:>8} {export['at']} {export['actor']:<16} "
            f"{export['purpose'] or '-':<18} customers={export['customers']['count']} "
            f"export={export['export_id']} request={export['request_id']} "
            f"{export['ended'] or 'no end recorded'}"
        )


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment
