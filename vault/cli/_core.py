"""The core commands: init, migrate, customers, keys, principals, audit, demo."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from vault.cli._base import (
    CLI_SOURCE,
    F,
    State,
    cli,
    emit_json,
    format_time,
    parse_assignments,
    pass_state,
    purpose_option,
)
from vault.serialise import customer_to_json

if TYPE_CHECKING:
    from vault.audit import AuditQuery, Checkpoint, VerifyReport

# --- init, migrate -----------------------------------------------------------------------------


@cli.command()
@click.option(
    "--db", "db_url", envvar="VAULT_DB_URL", help="Database URL (default: SQLite file in the home)."
)
@click.option(
    "--key-source",
    type=click.Choice(["file", "passphrase", "env", "plugin"]),
    default="file",
    show_default=True,
    help="Where the master key comes from.",
)
@click.option(
    "--audit-key-source",
    type=click.Choice(["file", "env", "plugin"]),
    default="file",
    show_default=True,
    help="Where the audit signing key comes from (apart from the master key and the database).",
)
@click.option(
    "--audit-key-file",
    type=click.Path(dir_okay=False),
    help="Path of the audit signing key file (default: audit-signing.key in the home).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def init(
    state: State,
    db_url: str | None,
    key_source: str,
    audit_key_source: str,
    audit_key_file: str | None,
    as_json: bool,
) -> None:
    """Create a vault: database, master key, policies, and the first admin token."""
    from vault.audit.keys import custody_notes
    from vault.vault import Vault

    passphrase = None
    if key_source == "passphrase":
        passphrase = os.environ.get("VAULT_PASSPHRASE") or str(
            click.prompt("New vault passphrase", hide_input=True, confirmation_prompt=True)
        )
    vault, token = Vault.init(
        state.home,
        db_url=db_url,
        key_source=key_source,
        passphrase=passphrase,
        audit_key_source=audit_key_source,
        audit_key_file=str(Path(audit_key_file).resolve()) if audit_key_file else None,
    )
    with vault:
        if as_json:
            emit_json(
                {
                    "home": str(vault.location),
                    "db_url_backend": vault.backend,
                    "key_source": key_source,
                    "audit_key_source": audit_key_source,
                    "keys": custody_notes(vault.home, vault.settings),
                    "admin_token": token,
                }
            )
            return
        click.echo(
            f"Vault created at {vault.location} ({vault.backend}, key source: {key_source})."
        )
        for note in custody_notes(vault.home, vault.settings):
            click.echo(note)
        click.echo("Admin token (shown once; store it in a password manager):")
        click.echo(f"  {token}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def migrate(state: State, as_json: bool) -> None:
    """Upgrade the database schema to this version of the vault."""
    from vault.config import VaultHome
    from vault.store import migrate as migrations
    from vault.store.engine import make_engine

    settings = VaultHome.resolve(state.home).read_settings()
    engine = make_engine(settings.db_url)
    try:
        migrations.upgrade(engine)
        revision = migrations.current_revision(engine)
        if as_json:
            emit_json({"revision": revision})
        else:
            click.echo(f"Schema at revision {revision}.")
    finally:
        engine.dispose()


# --- customers ---------------------------------------------------------------------------------


@cli.group()
def customer() -> None:
    """Add, update, show, find and list customers."""


@customer.command("add")
@click.option("--name", help="Full name.")
@click.option("--phone", help="Mobile phone, any common format (+86 is the default region).")
@click.option("--email", help="Email address.")
@click.option(
    "--set", "assignments", multiple=True, metavar="FIELD=VALUE", help="Any catalogue field."
)
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="PLATFORM:ID",
    help="A platform identity, e.g. youzan:yz_open_id_value.",
)
@click.option("--source", default=CLI_SOURCE, show_default=True, help="Provenance of the values.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def customer_add(
    state: State,
    name: str | None,
    phone: str | None,
    email: str | None,
    assignments: tuple[str, ...],
    identities: tuple[str, ...],
    source: str,
    as_json: bool,
) -> None:
    """Add a customer and print its id."""
    fields = {k: v for k, v in {"name": name, "phone": phone, "email": email}.items() if v}
    fields.update(parse_assignments(assignments, "--set"))
    pairs = []
    for item in identities:
        platform, sep, external_id = item.partition(":")
        if not sep:
            raise click.BadParameter("expected PLATFORM:ID", param_hint="--identity")
        pairs.append((platform, external_id))
    if not fields and not pairs:
        raise click.UsageError(
            "give at least one field (--name, --phone, --email, --set) or --identity"
        )
    customer_id = state.session().add_customer(fields, source=source, identities=pairs)
    if as_json:
        emit_json({"id": customer_id})
    else:
        click.echo(customer_id)


@customer.command("update")
@click.argument("customer_id")
@click.option("--set", "assignments", multiple=True, required=True, metavar="FIELD=VALUE")
@click.option("--source", default=CLI_SOURCE, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def customer_update(
    state: State, customer_id: str, assignments: tuple[str, ...], source: str, as_json: bool
) -> None:
    """Set fields of a customer (a masked value never replaces a full one)."""
    changed = state.session().update_customer(
        customer_id, parse_assignments(assignments, "--set"), source=source
    )
    if as_json:
        emit_json({"id": customer_id, "changed": changed})
    else:
        click.echo(f"Changed: {', '.join(changed) if changed else 'nothing'}")


def _print_customer(data: dict[str, Any]) -> None:
    click.echo(f"Customer {data['id']}  (created {data['created_at']})")
    for name, value in data["fields"].items():
        flag = "  [masked]" if value["masked"] else ""
        click.echo(
            f"  {name:<18} {value['value']}{flag}   ← {value['source']}, {value['observed_at']}"
        )
    for identity in data["identities"]:
        click.echo(f"  identity           {identity['platform']}:{identity['external_id']}")
    if data["tags"]:
        click.echo(f"  tags               {', '.join(data['tags'])}")


@customer.command("show")
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def customer_show(state: State, customer_id: str, as_json: bool, purpose: str | None) -> None:
    """Show one customer, as your role may see it, with each field's provenance."""
    data = customer_to_json(state.session(purpose).get_customer(customer_id))
    if as_json:
        emit_json(data)
    else:
        _print_customer(data)


@customer.command("find")
@click.option("--phone")
@click.option("--email")
@click.option("--id-number")
@click.option("--platform", help="With --external-id: a platform identity.")
@click.option("--external-id")
@click.option("--field", help="With --value: any searchable catalogue field.")
@click.option("--value")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def customer_find(
    state: State,
    phone: str | None,
    email: str | None,
    id_number: str | None,
    platform: str | None,
    external_id: str | None,
    field: str | None,
    value: str | None,
    as_json: bool,
    purpose: str | None,
) -> None:
    """Find customers by an exact value (matched through blind indexes, never by decrypting)."""
    criteria = [
        (f, v)
        for f, v in (("phone", phone), ("email", email), ("id_number", id_number), (field, value))
        if f and v is not None
    ]
    by_identity = platform is not None or external_id is not None
    if len(criteria) + int(by_identity) != 1:
        raise click.UsageError(
            "give exactly one of --phone, --email, --id-number, --platform with --external-id, "
            "or --field with --value"
        )
    session = state.session(purpose)
    if by_identity:
        if not (platform and external_id):
            raise click.UsageError("--platform and --external-id go together")
        found = session.find_by_identity(platform, external_id)
        ids = [found] if found else []
    else:
        ids = session.find_customers(*criteria[0])
    results = [customer_to_json(session.get_customer(cid)) for cid in ids]
    if as_json:
        emit_json(results)
        return
    if not results:
        click.echo("No customer found.")
    for data in results:
        _print_customer(data)


@customer.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--after", help="Continue after this customer id (from the previous page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def customer_list(
    state: State, limit: int, after: str | None, as_json: bool, purpose: str | None
) -> None:
    """List customer ids, a page at a time."""
    page = state.session(purpose).list_customers(limit=limit, after=after)
    if as_json:
        emit_json({"customer_ids": list(page.customer_ids), "next_after": page.next_after})
        return
    for customer_id in page.customer_ids:
        click.echo(customer_id)
    if page.next_after:
        click.echo(f"(more: --after {page.next_after})", err=True)


TAG_BATCH = 1000  # ids per transaction and audit event of `vault customer tag|untag`


def read_ids(customer_ids: tuple[str, ...], file: IO[str] | None) -> list[str]:
    """The ids given as arguments, then those of FILE: one per line; blank lines and lines
    starting with ``#`` are skipped. Duplicates count once."""
    ids = list(customer_ids)
    if file is not None:
        for line in file:
            text = line.strip()
            if text and not text.startswith("#"):
                ids.append(text)
    return list(dict.fromkeys(ids))


def _tagging(function: F) -> F:
    for option in reversed(
        [
            click.argument("customer_ids", nargs=-1, metavar="[CUSTOMER_ID]...", required=False),
            click.argument("tag"),
            click.option(
                "--file",
                "ids_file",
                type=click.File("r", encoding="utf-8"),
                help="Customer ids, one a line (`-`: standard input).",
            ),
            click.option(
                "--batch-size",
                default=TAG_BATCH,
                show_default=True,
                type=click.IntRange(1, 100_000),
                help="Ids per transaction and audit event.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON only."),
        ]
    ):
        function = option(function)
    return function


def _run_tagging(
    state: State,
    verb: str,
    tag: str,
    customer_ids: tuple[str, ...],
    ids_file: IO[str] | None,
    batch_size: int,
    as_json: bool,
) -> None:
    ids = read_ids(customer_ids, ids_file)
    if not ids:
        raise click.UsageError("give customer ids as arguments or with --file")
    session = state.session()
    changed = 0
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        if verb == "tag":
            changed += session.tag_customers(batch, tag, source=CLI_SOURCE)
        else:
            changed += session.untag_customers(batch, tag)
    key = "tagged" if verb == "tag" else "untagged"
    if as_json:
        emit_json(
            {"tag": tag, "customers": len(ids), key: changed, "unchanged": len(ids) - changed}
        )
    elif verb == "tag":
        click.echo(f"Tagged {changed} of {len(ids)} customers {tag} ({len(ids) - changed} had it).")
    else:
        click.echo(
            f"Removed {tag} from {changed} of {len(ids)} customers "
            f"({len(ids) - changed} did not have it)."
        )


@customer.command("tag")
@_tagging
@pass_state
def customer_tag(
    state: State,
    customer_ids: tuple[str, ...],
    tag: str,
    ids_file: IO[str] | None,
    batch_size: int,
    as_json: bool,
) -> None:
    """Tag customers: `vault customer tag ID... TAG`, or `--file ids.txt TAG`.

    Each batch of ids is one transaction and one audit event; an unknown id fails its batch
    (earlier batches stay tagged) and the command.
    """
    _run_tagging(state, "tag", tag, customer_ids, ids_file, batch_size, as_json)


@customer.command("untag")
@_tagging
@pass_state
def customer_untag(
    state: State,
    customer_ids: tuple[str, ...],
    tag: str,
    ids_file: IO[str] | None,
    batch_size: int,
    as_json: bool,
) -> None:
    """Remove a tag from customers: `vault customer untag ID... TAG`, or `--file ids.txt TAG`.

    Each batch of ids is one transaction and one audit event; an unknown id fails its batch
    (earlier batches stay untagged) and the command.
    """
    _run_tagging(state, "untag", tag, customer_ids, ids_file, batch_size, as_json)


# --- keys --------------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """Master key versions: status, rotation, retirement."""


@keys.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def keys_status(state: State, as_json: bool) -> None:
    """Show master key versions and how many data keys each wraps."""
    status = state.session().key_status()
    data = {
        "active_version": status.active_version,
        "rotation_in_progress": status.rotation_in_progress,
        "pending_rewrap": status.pending_rewrap,
        "versions": [
            {**asdict(v), "created_at": format_time(v.created_at)} for v in status.versions
        ],
    }
    if as_json:
        emit_json(data)
        return
    click.echo(f"Active master key version: {status.active_version}")
    if status.rotation_in_progress:
        click.echo(
            f"Rotation in progress: {status.pending_rewrap} keys still to rewrap "
            "(run `vault keys rotate` to finish)."
        )
    for v in status.versions:
        state_text = "retired" if v.retired else ("loaded" if v.loaded else "not available")
        click.echo(
            f"  v{v.version}  {v.source:<10} {state_text:<13} data keys: {v.data_keys:>9}"
            f"  system keys: {v.system_keys}  created {format_time(v.created_at)}"
        )


@keys.command("rotate")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def keys_rotate(state: State, batch_size: int, as_json: bool) -> None:
    """Add a master key version and rewrap every data key (resumes an interrupted rotation)."""
    session = state.session()
    pending = session.key_status().pending_rewrap
    if as_json or not sys.stderr.isatty():
        report = session.rotate_keys(batch_size=batch_size)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as progress:
            task = progress.add_task("Rewrapping data keys", total=pending or None)
            report = session.rotate_keys(
                batch_size=batch_size, on_batch=lambda n: progress.advance(task, n)
            )
    if as_json:
        emit_json(asdict(report))
        return
    verb = "Resumed rotation to" if report.resumed else "Rotated to"
    click.echo(f"{verb} master key version {report.to_version}: {report.rewrapped} keys rewrapped.")


@keys.command("retire")
@click.argument("version", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def keys_retire(state: State, version: int, as_json: bool) -> None:
    """Retire a master key version that no data key uses any more."""
    state.session().retire_key_version(version)
    if as_json:
        emit_json({"retired": version})
    else:
        click.echo(f"Master key version {version} retired.")


# --- principals --------------------------------------------------------------------------------


@cli.group()
def principal() -> None:
    """People and service accounts, their roles and tokens."""


def _parse_expiry(text: str | None) -> datetime | None:
    """``30d``, ``12h`` or an ISO date/time (UTC when no zone is given)."""
    if text is None:
        return None
    unit = text[-1:].lower()
    if unit in ("d", "h") and text[:-1].isdigit():
        amount = int(text[:-1])
        return datetime.now(UTC) + (
            timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            "use 30d, 12h or an ISO date such as 2027-01-31", param_hint="--expires"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@principal.command("add")
@click.argument("name")
@click.option(
    "--role", "roles", multiple=True, required=True, help="A role from policies/roles.toml."
)
@click.option("--service", is_flag=True, help="A service account (a connector, a program).")
@click.option("--expires", help="Token lifetime: 30d, 12h, or an ISO date.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def principal_add(
    state: State,
    name: str,
    roles: tuple[str, ...],
    service: bool,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a principal and print its token (shown once)."""
    expires_at = _parse_expiry(expires)
    token = state.session().add_principal(
        name, roles, kind="service" if service else "person", expires_at=expires_at
    )
    if as_json:
        emit_json(
            {
                "name": name,
                "roles": list(roles),
                "token": token,
                "expires_at": format_time(expires_at),
            }
        )
    else:
        click.echo(f"Token for {name} (shown once):")
        click.echo(f"  {token}")


@principal.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def principal_list(state: State, as_json: bool) -> None:
    """List principals with their roles and token state (never the tokens)."""
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "kind": p.kind,
            "roles": list(p.roles),
            "created_at": format_time(p.created_at),
            "expires_at": format_time(p.expires_at),
            "revoked_at": format_time(p.revoked_at),
        }
        for p in state.session().list_principals()
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        status = "revoked" if row["revoked_at"] else f"expires {row['expires_at'] or 'never'}"
        click.echo(f"{row['name']:<24} {row['kind']:<8} {','.join(row['roles']):<20} {status}")


@principal.command("revoke")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def principal_revoke(state: State, name: str, as_json: bool) -> None:
    """Revoke a principal's token at once."""
    state.session().revoke_principal(name)
    if as_json:
        emit_json({"revoked": name})
    else:
        click.echo(f"Revoked {name}.")


# --- audit -------------------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """The tamper-evident audit log: query, export, verify, checkpoints."""


# The policy's actions (vault.access.policy.ACTIONS, not imported at start-up), the token checks,
# and `push`: the sync events that sent data to a platform (action sync, operation push).
AUDIT_ACTIONS = (
    "read",
    "search",
    "write",
    "import",
    "sync",
    "decrypt",
    "export",
    "erase",
    "consent",
    "audit",
    "keys",
    "principals",
    "authenticate",
)
PUSH = "push"


def _audit_filters(function: F) -> F:
    for option in reversed(
        [
            click.option("--actor", help="A principal's name."),
            click.option("--customer", help="A customer id."),
            click.option(
                "--action",
                type=click.Choice([*AUDIT_ACTIONS, PUSH]),
                help="What was done; `push` = `--action sync --operation push` (data sent to a "
                "platform).",
            ),
            click.option(
                "--operation",
                help="The event's details.operation, e.g. push, pull, tag, untag, add, update, "
                "query, export, erase.",
            ),
            click.option("--purpose", "audit_purpose", help="Events made for this purpose."),
            click.option("--outcome", type=click.Choice(["allowed", "denied", "failed"])),
            click.option(
                "--since", type=click.DateTime(), help="From this time (UTC unless it has one)."
            ),
            click.option(
                "--until", type=click.DateTime(), help="Before this time (UTC unless it has one)."
            ),
        ]
    ):
        function = option(function)
    return function


def _audit_query(limit: int | None, **filters: Any) -> AuditQuery:
    from vault.audit import AuditQuery

    def utc(moment: datetime | None) -> datetime | None:
        return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment

    action, operation = filters["action"], filters["operation"]
    if action == PUSH:
        if operation not in (None, PUSH):
            raise click.BadParameter("--action push is --operation push", param_hint="--operation")
        action, operation = "sync", PUSH
    return AuditQuery(
        actor=filters["actor"],
        customer=filters["customer"],
        action=action,
        operation=operation,
        purpose=filters["audit_purpose"],
        outcome=filters["outcome"],
        since=utc(filters["since"]),
        until=utc(filters["until"]),
        limit=limit,
        after=filters.get("after"),
        before=filters.get("before"),
        newest_first=filters.get("newest_first", False),
    )


def _shown_fields(event: dict[str, Any]) -> str:
    """Field names, each with how it was shown when the event says (reads record it)."""
    masked = event["details"].get("masked")
    if not isinstance(masked, list):
        return ",".join(event["fields"]) or "-"
    return ",".join(f"{f}({'masked' if f in masked else 'clear'})" for f in event["fields"]) or "-"


@audit.command("query")
@_audit_filters
@click.option(
    "--after", type=click.IntRange(0), metavar="SEQ", help="Only events after this seq (paging)."
)
@click.option(
    "--before", type=click.IntRange(1), metavar="SEQ", help="Only events before this seq."
)
@click.option("--newest-first", is_flag=True, help="Newest first (default: oldest first).")
@click.option(
    "--limit",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Events per page; when more match, stderr says how to get the next page.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def audit_query(state: State, /, limit: int, as_json: bool, **filters: Any) -> None:
    """Find audit events, a page at a time (oldest first, or --newest-first).

    The table shows seq, time, actor (roles), action, outcome, purpose, the operation, how many
    customers, the fields (each marked clear or masked where the event records how it was
    shown) and the reason. When the page is full, stderr says how to get the next one:
    `(more: --after SEQ)` or, newest first, `(more: --before SEQ)`. With --json the page is
    `{"events": [...], "more": bool, "next_after": SEQ|null, "next_before": SEQ|null}`.

    Pushes to a platform are `--action push` (the same as `--action sync --operation push`).
    """
    page = state.session().audit_page(_audit_query(limit, **filters))
    if as_json:
        emit_json(
            {
                "events": page.events,
                "more": page.more,
                "next_after": page.next_after,
                "next_before": page.next_before,
            }
        )
    else:
        for e in page.events:
            who = f"{e['actor']}({','.join(e['roles'])})"
            operation = e["details"].get("operation") or "-"
            click.echo(
                f"{e['seq']:>8} {e['at']} {who:<24} {e['action']:<10} {e['outcome']:<8} "
                f"{e['purpose'] or '-':<18} {operation:<12} customers={e['customers']['count']} "
                f"fields={_shown_fields(e)} {e['reason']}".rstrip()
            )
    if page.more:
        cursor = (
            f"--before {page.next_before}" if page.newest_first else f"--after {page.next_after}"
        )
        click.echo(f"(more: {cursor})", err=True)


@audit.command("export")
@_audit_filters
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    required=True,
    help="The file (`-`: standard output).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON only.")
@pass_state
def audit_export(state: State, /, fmt: str, output: Path, as_json: bool, **filters: Any) -> None:
    """Export events (JSON Lines: then every checkpoint and the chain head).

    The file is written 0600 under a temporary name and renamed into place only once the
    export's audit event is committed: if the event cannot be written, no file appears."""
    from vault.audit.log import private_output

    session = state.session()
    if str(output) == "-":
        if as_json:
            raise click.UsageError("-o - writes the events to stdout: leave out --json")
        count = session.audit_export(_audit_query(None, **filters), sys.stdout, fmt)
    else:
        with private_output(output) as handle:
            count = session.audit_export(_audit_query(None, **filters), handle, fmt)
    if as_json:
        emit_json({"events": count, "output": str(output), "format": fmt})
    else:
        click.echo(f"Exported {count} events to {output}.", err=True)


def _read_checkpoints(files: tuple[Path, ...], witnesses: tuple[Path, ...]) -> list[Checkpoint]:
    from vault.audit.log import checkpoint_from_file, read_witness

    checkpoints = []
    for path in files:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
            checkpoints.append(checkpoint_from_file(text))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise click.BadParameter(
                f"{path} is not a checkpoint file", param_hint="--checkpoint"
            ) from None
    for directory in witnesses:
        checkpoints.extend(read_witness(directory))
    return checkpoints


def _print_report(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "events": report.events,
                "last_seq": report.last_seq,
                "head_hash": report.head_hash.hex(),
                "checkpoints": report.checkpoints,
                "problems": [
                    {"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in report.problems
                ],
            }
        )
    elif report.ok:
        click.echo(
            f"OK: {report.events} events, head {report.head_hash.hex()[:16]}…, "
            f"{report.checkpoints} checkpoints verified."
        )
    else:
        for problem in report.problems:
            click.echo(f"FAILED: {problem}", err=True)
    if not report.ok:
        sys.exit(1)


_checkpoint_option = click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path, allow_dash=True),
    help="A checkpoint saved earlier (`vault audit checkpoint -o FILE`; `-`: standard input).",
)
_witness_option = click.option(
    "--witness",
    "witnesses",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A witness directory: checkpoints kept where the database's writers cannot write.",
)


@audit.command("verify")
@_checkpoint_option
@_witness_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def audit_verify(
    state: State, checkpoint_files: tuple[Path, ...], witnesses: tuple[Path, ...], as_json: bool
) -> None:
    """Verify the hash chain, the chain head and the signed checkpoints; exit 1 on any problem."""
    external = _read_checkpoints(checkpoint_files, witnesses)
    _print_report(state.session().audit_verify(external), as_json)


@audit.command("verify-export")
@click.argument("export_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    required=True,
    help="A pinned checkpoint key (hex, `vault audit public-key`); repeat for earlier keys.",
)
@_checkpoint_option
@_witness_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def audit_verify_export(
    export_file: Path,
    public_keys: tuple[str, ...],
    checkpoint_files: tuple[Path, ...],
    witnesses: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Verify a JSON Lines export on its own (no vault, no token): chain, checkpoints, head."""
    from vault.audit.export import verify_export

    try:
        keys = [bytes.fromhex(key) for key in public_keys]
    except ValueError:
        raise click.BadParameter("not hex", param_hint="--public-key") from None
    external = _read_checkpoints(checkpoint_files, witnesses)
    with export_file.open(encoding="utf-8", errors="surrogateescape") as lines:
        report = verify_export(lines, keys, external)
    _print_report(report, as_json)


@audit.command("checkpoint")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save it to this file, for `vault audit verify --checkpoint`.",
)
@_witness_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON only (it always is).")
@pass_state
def audit_checkpoint(
    state: State, output: Path | None, witnesses: tuple[Path, ...], as_json: bool
) -> None:
    """Verify the chain from the last checkpoint, then sign its head and print the checkpoint.

    Refused (exit 1, audited) if the chain does not verify. Each --witness directory gets a
    copy (checkpoint-<seq>.json) and its checkpoints are checked before signing."""
    from vault.audit.log import write_private

    session = state.session()
    checkpoint = session.audit_checkpoint(witnesses)
    text = json.dumps(checkpoint.to_json(session.audit_public_key()), indent=2)
    if output is not None:
        write_private(output, text + "\n")
    click.echo(text)


@audit.command("rotate-signing-key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def audit_rotate_signing_key(state: State, as_json: bool) -> None:
    """Switch to a new audit signing key; the old public key stays valid for old checkpoints.

    Checkpoints with the old key first (verified), then with the new one. Stop the vault's
    other processes first and restart them after: they sign with the key they opened with."""
    old, new = state.session().audit_rotate_signing_key()
    if as_json:
        emit_json({"algorithm": "Ed25519", "old_public_key": old.hex(), "public_key": new.hex()})
        return
    click.echo(f"Old public key: {old.hex()} (kept for earlier checkpoints)")
    click.echo(f"New public key: {new.hex()}")


@audit.command("remove-stray")
@click.option(
    "--evidence",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to keep the removed rows (JSON Lines, 0600).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def audit_remove_stray(state: State, evidence: Path, as_json: bool) -> None:
    """Remove events stored beyond the chain head (written around the vault), keeping them."""
    from vault.audit.log import private_output

    session = state.session()
    with private_output(evidence) as handle:
        removed = session.audit_remove_stray()
        for row in removed:
            handle.write(json.dumps(row) + "\n")
    if as_json:
        emit_json(
            {
                "removed": [{"seq": r["seq"], "hash": r["hash"]} for r in removed],
                "evidence": str(evidence),
            }
        )
        return
    click.echo(f"Removed {len(removed)} stray events; kept in {evidence}.", err=True)


@audit.command("public-key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def audit_public_key(state: State, as_json: bool) -> None:
    """Print the Ed25519 key that verifies checkpoints (hex, raw 32 bytes)."""
    key = state.session().audit_public_key().hex()
    if as_json:
        emit_json({"algorithm": "Ed25519", "public_key": key})
    else:
        click.echo(key)


# --- demo --------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the demo vault (default: a new folder ./vault-demo-N).",
)
@click.option(
    "--customers", "count", default=300, show_default=True, type=click.IntRange(1, 1_000_000)
)
@click.option("--seed", default=2026, show_default=True)
def demo(directory: Path | None, count: int, seed: int) -> None:
    """Create a vault in a fresh folder, load synthetic customers and show the vault at work."""
    from vault.demo import run_demo

    run_demo(directory, count=count, seed=seed, echo=click.echo)
