"""Segment commands: ``vault segments recompute|show|list|members``, ``vault group add|list``,
``vault import-orders``. Each is one call of :class:`vault.segments.operations.SegmentOperations`;
none prints personal data (ids, names of segments, scores and amounts only).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vault.cli._base import State, cli, emit_json, pass_state, purpose_option

if TYPE_CHECKING:
    from vault.segments.operations import CustomerSegment, SegmentListing

# vault.segments.importer.FORMATS, without importing the segments package at start-up
ORDER_LOG_FORMATS = ("cdnow", "online-retail")


def _segment_json(segment: CustomerSegment) -> dict[str, Any]:
    history = segment.history
    return {
        "customer_id": segment.customer_id,
        "tier": segment.tier,
        "stage": segment.stage,
        "scores": {"r": segment.r, "f": segment.f, "m": segment.m},
        "as_of": segment.as_of.isoformat() if segment.as_of else None,
        "history": None
        if history is None
        else {
            "first_day": history.first_day.isoformat(),
            "last_day": history.last_day.isoformat(),
            "orders": history.orders,
            "purchase_days": history.purchase_days,
            "total_amount": history.total_amount,
            "first_day_amount": history.first_day_amount,
        },
        "groups": list(segment.groups),
        "tags": list(segment.tags),
    }


def _listing_json(listing: SegmentListing) -> dict[str, Any]:
    return {
        "counts": {kind: dict(values) for kind, values in listing.counts.items()},
        "total": listing.total,
        "customer_ids": list(listing.customer_ids),
        "next_after": listing.next_after,
    }


def _print_listing(listing: SegmentListing, *, ids: bool) -> None:
    for kind, values in listing.counts.items():
        if values:
            shown = ", ".join(f"{name} {count}" for name, count in values.items())
            click.echo(f"{kind + 's':<7} {shown}")
    if ids:
        click.echo(f"{listing.total} customers")
        for customer_id in listing.customer_ids:
            click.echo(customer_id)
        if listing.next_after:
            click.echo(f"(more: --after {listing.next_after})")


@cli.group()
def segments() -> None:
    """RFM scores, value tiers, lifecycle stages and groups (policies/segments.toml)."""


@segments.command("recompute")
@click.option(
    "--keep-cuts",
    is_flag=True,
    help="Score against the stored quantile cut points instead of taking them afresh.",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Measure recency to this day (YYYY-MM-DD); orders after it do not count. Default: "
    "today, or for a vault holding only logs from import-orders, the day after their last order.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def segments_recompute(state: State, keep_cuts: bool, as_of: Any, as_json: bool) -> None:
    """Rebuild every customer's segments from the orders (run it daily: recency moves), and
    every rule group over all live customers, with or without orders."""
    day: date | None = as_of.date() if as_of is not None else None
    report = state.session("administration").recompute_segments(rescore=not keep_cuts, as_of=day)
    data = asdict(report)
    data["cuts"] = {metric: list(points) for metric, points in report.cuts.items()}
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"{report.customers} customers with purchases from {report.qualifying_orders} of "
        f"{report.orders} orders, recency to {report.as_of.isoformat()}; "
        f"{report.memberships} group memberships"
        + ("; quantile cut points taken afresh" if report.rescored else "")
    )


@segments.command("show")
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def segments_show(state: State, customer_id: str, as_json: bool, purpose: str | None) -> None:
    """One customer's tier, stage, scores, purchase summary, groups and tags."""
    data = _segment_json(state.session(purpose).segment_of(customer_id))
    if as_json:
        emit_json(data)
        return
    click.echo(f"Customer {data['customer_id']}")
    click.echo(f"  tier    {data['tier'] or '-'}")
    click.echo(f"  stage   {data['stage'] or '-'}")
    scores = data["scores"]
    click.echo(f"  R F M   {scores['r'] or '-'} {scores['f'] or '-'} {scores['m'] or '-'}")
    history = data["history"]
    if history:
        click.echo(
            f"  bought  {history['orders']} orders on {history['purchase_days']} days, "
            f"{history['first_day']} to {history['last_day']}, "
            f"total {history['total_amount']} (minor units)"
        )
    click.echo(f"  groups  {', '.join(data['groups']) or '-'}")
    click.echo(f"  tags    {', '.join(data['tags']) or '-'}")


@segments.command("list")
@click.option("--tier")
@click.option("--stage")
@click.option("--group")
@click.option("--tag")
@click.option("--limit", default=1000, show_default=True)
@click.option("--after", help="Continue after this customer id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def segments_list(
    state: State,
    tier: str | None,
    stage: str | None,
    group: str | None,
    tag: str | None,
    limit: int,
    after: str | None,
    as_json: bool,
    purpose: str | None,
) -> None:
    """Counts per tier, stage and group; with filters, the ids of the customers in all."""
    listing = state.session(purpose).list_segments(
        tier=tier, stage=stage, group=group, tag=tag, limit=limit, after=after
    )
    if as_json:
        emit_json(_listing_json(listing))
    else:
        _print_listing(listing, ids=any(v is not None for v in (tier, stage, group, tag)))


@segments.command("members")
@click.argument("name")
@click.option("--limit", default=1000, show_default=True)
@click.option("--after", help="Continue after this customer id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def segments_members(
    state: State, name: str, limit: int, after: str | None, as_json: bool, purpose: str | None
) -> None:
    """Ids of a segment's members: a tier, stage or group name, or tier:/stage:/group:/tag:NAME."""
    listing = state.session(purpose).segment_members(name, limit=limit, after=after)
    if as_json:
        emit_json(_listing_json(listing))
    else:
        _print_listing(listing, ids=True)


GROUP_PURPOSE = "administration"  # what `group add` always used; `group list` now too


@cli.group()
def group() -> None:
    """Rule-based customer groups. A group can hold any live customer, with or without orders:
    a rule over scores (r, f, m) holds only for buyers, one over province, city or tags also
    for customers who never bought. Kept current as orders, addresses and tags change."""


@group.command("add")
@click.argument("name")
@click.option(
    "--rule", required=True, help='e.g. \'tier == "high_value" and province == "广东省"\''
)
@click.option("--description", default="")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def group_add(
    state: State, name: str, rule: str, description: str, as_json: bool, purpose: str | None
) -> None:
    """Define a group by a rule over tiers, stages, scores, categories, platforms, regions and
    tags ('vip' in tags), evaluated for every live customer: those without orders have no
    scores (r >= 4 is false for them) but do have a stage (prospect), region and tags
    (purpose: --purpose, default administration, as for `vault group list`)."""
    size = state.session(purpose or GROUP_PURPOSE).add_group(name, rule, description=description)
    if as_json:
        emit_json({"name": name, "members": size})
    else:
        click.echo(f"Group {name}: {size} members")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@purpose_option
@pass_state
def group_list(state: State, as_json: bool, purpose: str | None) -> None:
    """Every group with its rule and size (purpose: --purpose, default administration)."""
    groups = state.session(purpose or GROUP_PURPOSE).list_groups()
    if as_json:
        emit_json([asdict(g) for g in groups])
        return
    for info in groups:
        click.echo(f"{info.name:<24} {info.members:>8}  {info.rule or '(manual)'}")


@cli.command("import-orders")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(ORDER_LOG_FORMATS), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@pass_state
def import_orders(state: State, path: Path, fmt: str, as_json: bool) -> None:
    """Import the CDNOW or UCI Online Retail purchase log (customers: identity-only records).

    The log is closed: the day after its last order is recorded, and `segments recompute`
    measures recency to it while the vault holds no orders from another source."""
    report = state.session("administration").import_orders(path, fmt=fmt)
    if as_json:
        emit_json(asdict(report))
        return
    click.echo(
        f"{report.orders} orders from {report.lines} lines; customers: "
        f"{report.customers_created} created, {report.customers_found} found; "
        f"{report.orders_without_customer} orders without a customer"
        + (f"; recency measured to {report.as_of.isoformat()}" if report.as_of else "")
    )
