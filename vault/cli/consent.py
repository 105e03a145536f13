"""``vault consent grant|withdraw|show|import``: the consent ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vault.cli._base import State, cli, emit_json, format_time, pass_state

if TYPE_CHECKING:
    from vault.consent.ledger import ConsentSummary


@cli.group()
def consent() -> None:
    """Consent per customer and purpose: an append-only ledger."""


def _at(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _change_options(function: Any) -> Any:
    for option in reversed(
        [
            click.argument("customer_id"),
            click.argument("purpose"),
            click.option(
                "--source",
                required=True,
                help="The channel: taobao, pinduoduo, youzan, web-form, phone, import …",
            ),
            click.option("--evidence", help="A reference to the proof (never a copy of PII)."),
            click.option("--at", type=click.DateTime(), help="When (UTC; default now)."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON only."),
        ]
    ):
        function = option(function)
    return function


@consent.command("grant")
@_change_options
@pass_state
def consent_grant(
    state: State,
    customer_id: str,
    purpose: str,
    source: str,
    evidence: str | None,
    at: datetime | None,
    as_json: bool,
) -> None:
    """Record that CUSTOMER_ID granted consent for PURPOSE."""
    event_id = state.session().grant_consent(
        customer_id, purpose, source=source, evidence=evidence, at=_at(at)
    )
    if as_json:
        emit_json({"ledger_id": event_id})
    else:
        click.echo(f"Consent for {purpose} granted (ledger entry {event_id}).")


@consent.command("withdraw")
@_change_options
@pass_state
def consent_withdraw(
    state: State,
    customer_id: str,
    purpose: str,
    source: str,
    evidence: str | None,
    at: datetime | None,
    as_json: bool,
) -> None:
    """Record that CUSTOMER_ID withdrew consent for PURPOSE (takes effect at once)."""
    event_id = state.session().withdraw_consent(
        customer_id, purpose, source=source, evidence=evidence, at=_at(at)
    )
    if as_json:
        emit_json({"ledger_id": event_id})
    else:
        click.echo(f"Consent for {purpose} withdrawn (ledger entry {event_id}).")


def summary_to_json(summary: ConsentSummary) -> dict[str, Any]:
    return {
        "customer_id": summary.customer_id,
        "purposes": {
            name: {
                "legal_basis": p.legal_basis,
                "needs_consent": p.needs_consent,
                "state": p.state,
                "active": p.active,
                "at": format_time(p.at),
                "policy_version": p.policy_version,
                "current_version": p.current_version,
                "needs_renewal": p.needs_renewal,
            }
            for name, p in summary.purposes.items()
        },
        "ledger": [
            {
                "id": r.id,
                "purpose": r.purpose,
                "state": r.state,
                "at": format_time(r.at),
                "recorded_at": format_time(r.recorded_at),
                "channel": r.channel,
                "policy_version": r.policy_version,
                "evidence": r.evidence,
                "recorded_by": r.recorded_by,
            }
            for r in summary.ledger
        ],
    }


@consent.command("show")
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def consent_show(state: State, customer_id: str, as_json: bool) -> None:
    """Show the current consent per purpose and the ledger of CUSTOMER_ID."""
    data = summary_to_json(state.session().consent_of(customer_id))
    if as_json:
        emit_json(data)
        return
    click.echo(f"Consent of customer {customer_id}")
    for name, p in data["purposes"].items():
        if not p["needs_consent"]:
            status = f"not needed ({p['legal_basis']})"
        else:
            status = p["state"] or "never asked"
            if p["needs_renewal"]:
                status += f" (needs renewal: v{p['policy_version']} < v{p['current_version']})"
        click.echo(f"  {name:<20} {status}")
    for r in data["ledger"]:
        click.echo(
            f"  #{r['id']:<6} {r['at']} {r['purpose']:<18} {r['state']:<10} via {r['channel']}"
        )


@consent.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def consent_import(state: State, file: Path, as_json: bool) -> None:
    """Record grants and withdrawals from a CSV (customer, purpose, state, at, source, ...)."""
    report = state.session().import_consent(file)
    data = {
        "rows": report.rows,
        "recorded": report.recorded,
        "granted": report.granted,
        "withdrawn": report.withdrawn,
        "unmatched": report.unmatched,
        "unmatched_lines": report.unmatched_lines,
        "encoding": report.encoding,
    }
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"Recorded {report.recorded} of {report.rows} rows "
        f"({report.granted} granted, {report.withdrawn} withdrawn; read as {report.encoding})."
    )
    if report.unmatched:
        lines = ", ".join(map(str, report.unmatched_lines[:20]))
        click.echo(f"{report.unmatched} rows matched no customer (lines {lines}).", err=True)
