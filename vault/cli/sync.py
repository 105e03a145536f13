"""Connectors, syncs and imports: ``vault connectors``, ``vault sync``, ``vault import``, and
``vault customer duplicates|merge|unmerge``. Each command is one library call."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from vault.cli._base import (
    State,
    cli,
    emit_json,
    parse_assignments,
    pass_state,
    purpose_option,
)
from vault.cli._core import customer

if TYPE_CHECKING:
    from vault.sync.engine import Progress
    from vault.sync.report import ImportReport, SyncReport

STATUS = "status"  # `vault sync status`: no connector may take this name


@cli.group()
def connectors() -> None:
    """List connectors and configure their settings (stored encrypted)."""


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def connectors_list(state: State, as_json: bool) -> None:
    """Every connector found (built-in and third-party), and plugins that failed to load."""
    from vault.sync.catalogue import describe_connectors

    found = describe_connectors()
    if as_json:
        emit_json(found)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("name", no_wrap=True)  # the name users type: never broken across lines
    for heading in ("plugin", "platform", "region", "pulls", "pushes"):
        table.add_column(heading)
    for entry in found["connectors"]:
        table.add_row(
            entry["name"],
            entry["plugin"],
            entry["platform"],
            entry["region"],
            ", ".join(entry["pulls"]) or "-",
            ", ".join(entry["pushes"]) or "-",
        )
    console = Console()
    console.print(table)
    for plugin, error in found["load_errors"].items():
        console.print(f"[red]plugin {plugin} failed to load:[/red] {error}", markup=True)


@connectors.command("configure")
@click.argument("name")
@click.argument("settings", nargs=-1, metavar="KEY=VALUE...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def connectors_configure(state: State, name: str, settings: tuple[str, ...], as_json: bool) -> None:
    """Store settings of connector NAME (merged with what is stored). Prefer passing secrets
    as KEY=- and typing them at the prompt: arguments show in `ps` and shell history."""
    values = parse_assignments(settings, "SETTINGS")
    for key, value in values.items():
        if value == "-":
            values[key] = str(click.prompt(f"{key}", hide_input=True))
    shown = state.session().configure_connector(name, values)
    if as_json:
        emit_json({"connector": name, "settings": shown})
    else:
        for key, value in shown.items():
            click.echo(f"{key} = {value}")


@connectors.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def connectors_show(state: State, name: str, as_json: bool) -> None:
    """The settings of connector NAME, secrets redacted."""
    shown = state.session().connector_settings(name)
    if as_json:
        emit_json({"connector": name, "settings": shown})
    else:
        for key, value in shown.items():
            click.echo(f"{key} = {value}")


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[Progress], None] | None]:
    """A rich progress display on a terminal (stderr), nothing otherwise."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, SpinnerColumn, TextColumn
    from rich.progress import Progress as Bar

    with Bar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} records {task.fields[note]}"),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None, note="")

        def update(event: Progress) -> None:
            if event.waiting:
                bar.update(task, note=f"(waiting: {event.waiting})")
                return
            counts = event.counts
            bar.update(
                task,
                description=f"{label} {event.stream} batch {event.batches}",
                completed=counts.pulled,
                note=f"created {counts.created} updated {counts.updated} merged {counts.merged}"
                f" rejected {counts.rejected}",
            )

        yield update


def print_summary(report: SyncReport) -> None:
    data = report.as_dict()
    always = ("pulled", "created", "updated", "merged", "skipped", "rejected")
    sometimes = (
        "suppressed",
        "queued_for_review",
        "orders",
        "echoes",
        "pushed",
        "deleted",
        "failed",
    )
    shown = [k for k in always] + [k for k in sometimes if data[k]]
    line = ", ".join(f"{k.replace('_', ' ')} {data[k]}" for k in shown)
    prefix = "Dry run (nothing written): " if report.dry_run else ""
    click.echo(f"{prefix}{report.connector} as {report.principal}: {line}")
    if data["skipped_push"]:
        skipped = ", ".join(f"{reason} {n}" for reason, n in data["skipped_push"].items())
        click.echo(f"  not pushed: {skipped}")
    if report.retries or report.rate_limit_waits:
        click.echo(
            f"  retries {report.retries}, rate-limit waits {report.rate_limit_waits} "
            f"({report.waited_seconds:.1f}s)"
        )


@cli.command("sync")
@click.argument("name")
@click.option("--full", is_flag=True, help="Start every stream from the beginning.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--no-push", is_flag=True, help="Pull only.")
@click.option("--stream", "streams", multiple=True, help="Only these streams (repeatable).")
@click.option(
    "--reconcile",
    is_flag=True,
    help="Also list every id the platform holds and unbind those it deleted (Fenxiang).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def sync_command(
    state: State,
    name: str,
    full: bool,
    dry_run: bool,
    no_push: bool,
    streams: tuple[str, ...],
    reconcile: bool,
    as_json: bool,
) -> None:
    """Sync connector NAME (pull from its cursors, push what changed), or `vault sync status`.

    With --json both print the same shape per connector: `connector`, `principal`, `last_run`,
    `cursors`, `open_duplicates` and `report` (this run's counts; null in `sync status`)."""
    session = state.session()
    if name == STATUS:
        status = session.sync_status()
        if as_json:
            emit_json([{**entry, "report": None} for entry in status])
            return
        for entry in status:
            last = entry["last_run"] or {}
            click.echo(
                f"{entry['connector']}: {last.get('status', 'never run')}"
                f" {last.get('finished_at') or ''} {last.get('error') or ''}".rstrip()
            )
            for cursor in entry["cursors"]:
                done = "caught up" if cursor["complete"] else "in progress"
                click.echo(f"  {cursor['stream']}: {done}, {cursor['batches']} batches")
        return
    with progress_bar(f"sync {name}", not as_json and sys.stderr.isatty()) as on_progress:
        report = session.sync(
            name,
            full=full,
            dry_run=dry_run,
            push=not no_push,
            reconcile=reconcile,
            streams=list(streams) or None,
            on_progress=on_progress,
        )
    if as_json:
        # The shape of an entry of `vault sync status --json`, with this run's report.
        entries = [e for e in session.sync_status() if e["connector"] == name]
        mine: dict[str, Any] = (
            entries[0] if entries else {"connector": name, "last_run": None, "cursors": []}
        )
        emit_json({**mine, "report": report.as_dict()})
    else:
        print_summary(report)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False), help="MAP.toml")
@click.option("--source", help="Provenance of the values (default: import).")
@click.option("--encoding", help="The file's encoding (default: detected).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), help="Rows per batch.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def import_command(
    state: State,
    file: str,
    mapping: str | None,
    source: str | None,
    encoding: str | None,
    batch_size: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import customers from a CSV or xlsx FILE (UTF-8, UTF-8 BOM, GB18030/GBK).

    The file is read to its end before anything is written: a file past a limit (see
    vault.textfile and connectors.file_import.xlsx) or that stops decoding is refused in one
    line. Rows that cannot be taken (bad phone, email, ID number or date, a value too long,
    control characters, no key column with a value) go to FILE.rejects.csv with their number
    and reason, never their values. --dry-run writes nothing and counts what a real run would.
    """
    session = state.session()
    with progress_bar("import", not as_json and sys.stderr.isatty()) as on_progress:
        report: ImportReport = session.import_file(
            file,
            mapping=mapping,
            source=source,
            encoding=encoding,
            dry_run=dry_run,
            batch_size=batch_size,
            on_progress=on_progress,
        )
    if as_json:
        emit_json(report.as_dict())
        return
    print_summary(report)
    how = "detected; --encoding overrides" if report.encoding_detected else "given"
    xlsx = report.encoding == "xlsx"
    click.echo(f"  encoding {report.encoding}" + ("" if xlsx else f" ({how})"))
    if report.empty_rows:
        click.echo(f"  empty rows (skipped): {report.empty_rows}")
    if report.ignored_columns:
        click.echo(f"  columns not mapped (dropped): {', '.join(report.ignored_columns)}")
    if report.reject_report:
        click.echo(f"  rejected rows (row number and reason): {report.reject_report}")
    elif report.dry_run and report.rejects:
        for reject in report.rejects[:20]:
            click.echo(f"  would reject {reject.where}: {reject.reason}")
        if report.rejected > 20:
            click.echo(f"  ... and {report.rejected - 20} more (--json lists them)")


@customer.command("duplicates")
@click.option("--all", "include_resolved", is_flag=True, help="Also merged and dismissed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def customer_duplicates(
    state: State, include_resolved: bool, as_json: bool, purpose: str | None
) -> None:
    """Possible duplicates found by identity resolution, waiting for review."""
    pairs = state.session(purpose).duplicates(include_resolved=include_resolved)
    if as_json:
        emit_json(pairs)
        return
    if not pairs:
        click.echo("No possible duplicates.")
    for pair in pairs:
        click.echo(
            f"{pair['id']}: {pair['customer_a']} {pair['customer_b']} ({pair['reason']}; "
            f"{pair['source']}, {pair['status']})"
        )


@customer.command("merge")
@click.argument("survivor")
@click.argument("merged")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def customer_merge(state: State, survivor: str, merged: str, as_json: bool) -> None:
    """Merge customer MERGED into SURVIVOR (undo with `vault customer unmerge`)."""
    result = state.session().merge_customers(survivor, merged)
    data: dict[str, Any] = {
        "merge_id": result.merge_id,
        "survivor": result.survivor_id,
        "merged": result.merged_id,
        "fields_taken": result.fields_taken,
        "identities_moved": result.identities_moved,
        "orders_moved": result.orders_moved,
    }
    if as_json:
        emit_json(data)
    else:
        click.echo(
            f"Merged {merged} into {survivor} (merge {result.merge_id}): took "
            f"{', '.join(result.fields_taken) or 'no field'}; {result.identities_moved} "
            f"identities, {result.orders_moved} orders moved."
        )


@customer.command("unmerge")
@click.argument("merge")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def customer_unmerge(state: State, merge: str, as_json: bool) -> None:
    """Undo a merge: MERGE is its id, or the id the merged customer had."""
    result = state.session().unmerge(merge)
    if as_json:
        emit_json({"merge_id": result.merge_id, "restored": result.merged_id})
    else:
        click.echo(f"Undid merge {result.merge_id}: {result.merged_id} is back.")
